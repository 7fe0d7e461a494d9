"""The house stays livable (issue 12.6): no function in `src/` over 50 lines of code, no module
outside `magiclink.testing` over 400 lines.

Lines of code of a function: its body's lines after the docstring, blank lines and comment
lines left out. A module's lines: all of them, as an editor shows them.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

PACKAGE: Final = Path(__file__).resolve().parents[1] / "src" / "magiclink"
MAX_FUNCTION_LINES: Final = 50
MAX_MODULE_LINES: Final = 400


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def function_sizes(source: str) -> dict[str, int]:
    """Each function's (or method's) lines of code, by `name:line`."""
    lines = source.splitlines()
    sizes: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0]
        docstring = (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        )
        start = (first.end_lineno or first.lineno) + 1 if docstring else first.lineno
        body = lines[start - 1 : node.end_lineno]
        code = [line for line in body if line.strip() and not line.strip().startswith("#")]
        sizes[f"{node.name}:{node.lineno}"] = len(code)
    return sizes


def test_the_counter_sees_code_and_skips_docstrings_and_comments() -> None:
    source = 'def f():\n    """Doc.\n\n    More."""\n    # note\n\n    a = 1\n    return a\n'
    assert function_sizes(source) == {"f:1": 2}


def test_no_function_in_src_is_over_50_lines_of_code() -> None:
    over = {
        f"{path.relative_to(PACKAGE)}:{name}": size
        for path in _modules()
        for name, size in function_sizes(path.read_text()).items()
        if size > MAX_FUNCTION_LINES
    }
    assert over == {}


def test_no_module_outside_testing_is_over_400_lines() -> None:
    over = {
        str(path.relative_to(PACKAGE)): lines
        for path in _modules()
        if "testing" not in path.relative_to(PACKAGE).parts
        and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}
