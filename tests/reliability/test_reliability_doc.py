"""docs/reliability.md names a test for each guarantee: every name must exist, and the
soak figures it reports must be there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def references() -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in REFERENCE.finditer(DOC.read_text())]


def test_every_reliability_test_module_is_cited() -> None:
    cited = {path for path, _ in references()}
    modules = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests" / "reliability").glob("test_*.py")
        if p.name != Path(__file__).name
    }
    assert modules <= cited
    assert "tests/soak/run.py" in cited


def test_every_cited_test_exists() -> None:
    missing = []
    for path, name in references():
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name is not None and not re.search(
            rf"^\s*def {name}\(", source.read_text(), flags=re.MULTILINE
        ):
            missing.append(f"{path}::{name}")
    assert missing == []


def test_the_last_soak_run_is_recorded() -> None:
    text = DOC.read_text()
    section = text.split("### Last run on this machine", 1)[1]
    assert "2 cores" in section
    assert "0 violations" in section
    assert re.search(r"\*\*[\d,]+ operations/s\*\*", section)
    for operation in ("book", "issue", "verify", "consume", "cancel", "reschedule", "rate"):
        assert re.search(rf"^\| {operation} \|", section, flags=re.MULTILINE), operation
