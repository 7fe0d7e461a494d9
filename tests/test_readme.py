"""The README's examples run (STYLE 13): first on InMemoryUnitOfWork, then on SQLite."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(path: Path) -> list[str]:
    """Every ```python fenced block of a Markdown file, in order."""
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_readme_examples_run_in_order(capsys: object) -> None:
    """The first-success example prints the refusal; the SQLite variant consumes once."""
    blocks = python_blocks(README)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "Token expired or used" in out
