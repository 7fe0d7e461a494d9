"""docs/operations.md and docs/migration.md stay true to the code they describe.

(Their Python samples are executed by tests/test_docs.py; this checks the prose and tables.)
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Final

import click
import pytest
from sqlalchemy import Engine, create_engine, inspect

from magiclink import Events, InvalidationReason, IssuePath, RefusalReason
from magiclink.adapters.prometheus import LABELS
from magiclink.adapters.sqlalchemy import (
    VERSION_TABLE,
    current_revision,
    upgrade_to,
)
from magiclink.cli import main
from magiclink.ports import COUNTERS, OBSERVATIONS

DOCS: Final = Path(__file__).resolve().parents[2] / "docs"
OPERATIONS: Final = (DOCS / "operations.md").read_text()
MIGRATION: Final = (DOCS / "migration.md").read_text()


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The rows of markdown tables whose first cell matches `first_cell` (a regex)."""
    rows = []
    for line in map(str.strip, text.splitlines()):
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if re.fullmatch(first_cell, cells[0]):
                rows.append(cells)
    return rows


def test_every_log_event_has_a_row() -> None:
    names = {v for k, v in vars(Events).items() if not k.startswith("_")}
    rows = table_rows(OPERATIONS, r"`[a-z_.]+`(, `[a-z_.]+`)?")
    documented = {name for row in rows for name in re.findall(r"`([a-z_.]+)`", row[0])}
    assert names <= documented, sorted(names - documented)


def test_every_metric_has_a_row_with_its_type_and_labels() -> None:
    rows = {row[0].strip("`"): row for row in table_rows(OPERATIONS, r"`magiclink_[a-z_]+`")}
    assert set(rows) == COUNTERS | OBSERVATIONS
    for name, row in rows.items():
        assert row[1] == ("counter" if name in COUNTERS else "histogram"), name
        # Label names are in backticks; their values follow in parentheses.
        named = set(re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", row[2])))
        assert named == set(LABELS[name]), name


def test_label_values_are_documented() -> None:
    verifications = next(r for r in table_rows(OPERATIONS, r"`magiclink_verifications_total`"))
    for outcome in ("accepted", "invalid", "reuse"):
        assert f"`{outcome}`" in verifications[3]
    for reason in RefusalReason:
        if reason is not RefusalReason.USED:  # counted as `reuse`
            assert f"`{reason}`" in verifications[3], reason
    issued = next(r for r in table_rows(OPERATIONS, r"`magiclink_tokens_issued_total`"))
    for path in IssuePath:
        assert f"`{path}`" in issued[2]


def test_support_playbook_explains_every_refusal_and_invalidation_reason() -> None:
    playbook = OPERATIONS.split("## Support", 1)[1]
    rows = {row[0].strip("`") for row in table_rows(playbook, r"`[a-z_]+`")}
    assert rows == set(RefusalReason)
    for reason in InvalidationReason:
        assert f"`{reason}`" in playbook, reason


def test_alerts_cover_the_four_signals() -> None:
    promql = "\n".join(fenced(OPERATIONS, "promql"))
    assert 'magiclink_invalidations_total{outcome="failed"}' in promql
    assert "histogram_quantile(0.99" in promql
    assert "magiclink_invalidation_duration_seconds_bucket" in promql
    assert 'outcome="reuse"' in promql
    assert 'outcome!="accepted"' in promql
    for metric in re.findall(r"\b(magiclink_[a-z_]+?)(?:_bucket|_count|_sum)?\b", promql):
        base = re.sub(r"_(bucket|count|sum)$", "", metric)
        assert base in COUNTERS | OBSERVATIONS, metric


def cli_lines(text: str) -> list[list[str]]:
    lines = []
    for block in fenced(text, "sh"):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command.startswith("magiclink "):
                lines.append(shlex.split(command)[1:])
    return lines


@pytest.mark.parametrize("words", cli_lines(OPERATIONS) + cli_lines(MIGRATION), ids=" ".join)
def test_every_documented_command_exists_with_its_options(words: list[str]) -> None:
    command: click.Command = main
    rest = list(words)
    while rest and isinstance(command, click.Group) and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    assert not isinstance(command, click.Group), f"incomplete command: {words}"
    options = {opt for param in command.params for opt in param.opts}
    for word in rest:
        if word.startswith("--"):
            assert word in options, f"{word} is not an option of {' '.join(words)}"


def _token_columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("magiclink_tokens")}


def test_migration_names_the_real_revisions_and_functions() -> None:
    """The revisions the page names are the real ones: `0001` is the original plan's schema
    (tokens without `booking_revision`), `0002` the one that adds it."""
    assert "| `0001` | the original plan's schema" in MIGRATION
    assert "| `0002` | adds `magiclink_tokens.booking_revision`" in MIGRATION
    engine = create_engine("sqlite://")
    try:
        upgrade_to(engine, "0001")
        assert current_revision(engine) == "0001"
        assert "booking_revision" not in _token_columns(engine)
        upgrade_to(engine, "0002")
        assert current_revision(engine) == "0002"
        assert "booking_revision" in _token_columns(engine)
    finally:
        engine.dispose()
    assert VERSION_TABLE in MIGRATION
    for name in ("upgrade_to_head", "current_revision", "alembic_config"):
        assert name in MIGRATION
    for requirement in ("R6.1", "R6.2", "R6.3", "R6.4", "R6.5", "R6.6"):
        assert f"| {requirement} |" in MIGRATION
