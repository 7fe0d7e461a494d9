"""Tests, docs, benchmarks and examples use public names only (issue 12.4, STYLE 11).

A host can only do what its code shows; if our own tests and samples reach into an
underscore module, nothing tells us when a host would have to. This scans `tests/`,
`bench/`, `examples/` (their Python, parsed) and `docs/` plus README.md (their text) for:

* `import magiclink.<package>.<_module>` and `from magiclink.<package>.<_module> import name`;
* `from magiclink.<package> import <_name>` (a private module or a private name);
* a dotted path through an underscore module in a string or in prose (a `monkeypatch`
  target, `importlib.import_module(...)`, a docstring or a page naming an internal module).

What a host legitimately needs is exported on purpose instead (see `magiclink.__doc__`,
`magiclink.ports.__doc__`, `magiclink.adapters.sqlalchemy.__doc__`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[1]

PRIVATE_PATH: Final = re.compile(r"\bmagiclink(?:\.[A-Za-z0-9_]+)*\._[A-Za-z][A-Za-z0-9_]*")
"""A dotted path that goes through an underscore-named module of magiclink."""

PRIVATE_FROM_IMPORT: Final = re.compile(
    r"^\s*from\s+magiclink(?:\.[A-Za-z0-9_]+)*\s+import\s+\(?[^#\n]*\b_[A-Za-z]", re.MULTILINE
)
"""`from magiclink.x import _y` in a page's code sample."""

ALLOWED: Final[dict[str, str]] = {
    # This file names private modules on purpose: it checks that each one is underscore-named.
    "tests/test_exported_members.py": "checks the private modules themselves",
    # A white-box test of the in-memory store's undo log (issue 15.2): it counts undo entries
    # and index copies, which no public name shows.
    "tests/unit/test_memory_history.py": "the in-memory store's undo log and index lists",
    # White-box test of which drivers take the SQL adapter's DBAPI fast path (issue 15.1).
    "tests/integration/test_sqlalchemy_fastpath.py": "fast_path_for: which drivers take it",
}
"""Files allowed a private import, each with the reason; the list should only shrink."""


def python_findings(source: str) -> list[str]:
    """Each private import or private dotted path in Python `source`, as `line: text`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(
                f"{node.lineno}: import {alias.name}"
                for alias in node.names
                if PRIVATE_PATH.match(alias.name)
            )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if not (module == "magiclink" or module.startswith("magiclink.")):
                continue
            if PRIVATE_PATH.match(module):
                found.append(f"{node.lineno}: from {module} import ...")
            found.extend(
                f"{node.lineno}: from {module} import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_")
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.extend(f"{node.lineno}: {m}" for m in PRIVATE_PATH.findall(node.value))
    return sorted(set(found), key=lambda item: (int(item.split(":", 1)[0]), item))


def text_findings(text: str) -> list[str]:
    """Each private dotted path or private `from ... import _x` in a page, as `line: text`."""
    found = [(match.start(), match.group()) for match in PRIVATE_PATH.finditer(text)]
    found += [(m.start(), m.group().strip()) for m in PRIVATE_FROM_IMPORT.finditer(text)]
    return [f"{text.count(chr(10), 0, start) + 1}: {what}" for start, what in sorted(found)]


def scanned_files() -> Iterator[Path]:
    for folder in ("tests", "bench", "examples"):
        yield from sorted((ROOT / folder).rglob("*.py"))
    yield from sorted((ROOT / "docs").rglob("*.md"))
    yield ROOT / "README.md"


def findings(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return python_findings(text) if path.suffix == ".py" else text_findings(text)


def test_the_scan_reaches_every_kind_of_file() -> None:
    """Not vacuous: tests, benchmarks, examples, docs and the README are all read."""
    relative = {path.relative_to(ROOT).as_posix() for path in scanned_files()}
    for expected in ("tests/conftest.py", "bench/storages.py", "docs/migration.md", "README.md"):
        assert expected in relative
    assert any(name.startswith("examples/") for name in relative)


@pytest.mark.parametrize(
    "source",
    [
        "import magiclink.domain." + "_policy as policy\n",
        "from magiclink.adapters.sqlalchemy." + "_tables import guests\n",
        "from magiclink.domain import " + "_errors\n",
        'monkeypatch.setattr("magiclink.domain.' + '_policy.secrets.token_hex", f)\n',
        '"""Runs through `magiclink.asyncio.' + '_bridge.run`."""\n',
    ],
)
def test_the_scan_finds_each_kind_of_private_use(source: str) -> None:
    """The checker can fail: each form a private use takes is found."""
    assert python_findings(source) != []
    assert text_findings(f"```python\n{source}```\n") != []


@pytest.mark.parametrize(
    "source",
    [
        "from magiclink import hash_token\n",
        "from magiclink.adapters.sqlalchemy import VERSION_TABLE, metadata\n",
        "import magiclink.testing.faults\n",
        '"""The `_policy` rules, reached through `magiclink.hash_token`."""\n',
    ],
)
def test_the_scan_lets_public_names_pass(source: str) -> None:
    assert python_findings(source) == []
    assert text_findings(source) == []


def test_tests_docs_and_benchmarks_use_public_names_only() -> None:
    """Issue 12.4: no file outside `ALLOWED` imports or names an underscore module."""
    offenders = {
        name: found
        for path in scanned_files()
        if (name := path.relative_to(ROOT).as_posix()) not in ALLOWED and (found := findings(path))
    }
    assert offenders == {}, "private magiclink modules used (export the name on purpose):\n" + (
        "\n".join(f"  {name}:{item}" for name, items in offenders.items() for item in items)
    )


def test_every_exception_names_a_file_that_exists() -> None:
    """An exception for a deleted or renamed file would hide nothing and mislead."""
    missing = [name for name in ALLOWED if not (ROOT / name).is_file()]
    assert missing == []
