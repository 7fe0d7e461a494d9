"""Every ```python block of docs/*.md runs as-is (issue 6), in order, one namespace per file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_readme import python_blocks

DOCS = Path(__file__).resolve().parents[1] / "docs"
# docs/adapters.md has its own, stricter test (tests/contract/test_docs_adapters.py).
OWN_TESTS = {"adapters.md"}


@pytest.mark.parametrize(
    "doc", sorted(p.name for p in DOCS.glob("*.md") if p.name not in OWN_TESTS)
)
def test_doc_samples_run(doc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # samples that write files write them here
    namespace: dict[str, object] = {"__name__": f"docs.{doc}"}
    for block in python_blocks(DOCS / doc):
        exec(compile(block, str(DOCS / doc), "exec"), namespace)
