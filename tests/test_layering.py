"""The hexagon holds (non-negotiable 2): dependencies point inward only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "magiclink"

# What each layer may not import (prefix match on the absolute module name).
FORBIDDEN = {
    "domain": (
        "sqlalchemy",
        "alembic",
        "magiclink.adapters",
        "magiclink.cli",
        "magiclink.testing",
        "sqlite3",
        "psycopg",
        "pymysql",
        "socket",
        "urllib.request",
        "http",
        "click",
        "prometheus_client",
    ),
    "ports": (
        "sqlalchemy",
        "alembic",
        "magiclink.adapters",
        "magiclink.cli",
        "magiclink.testing",
        "sqlite3",
        "psycopg",
        "pymysql",
        "click",
        "prometheus_client",
    ),
    "adapters": ("magiclink.cli", "magiclink.testing"),
}


def _imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    module = "magiclink." + ".".join(path.relative_to(root).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield node.lineno, f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.lineno, node.module


def leaks(root: Path, layer: str) -> list[str]:
    """Every import in `root/layer` that the layer may not make."""
    return [
        f"{path.relative_to(root)}:{line} imports {name}"
        for path in sorted((root / layer).rglob("*.py"))
        for line, name in _imports(path, root)
        if name.startswith(FORBIDDEN[layer])
    ]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_outward(layer: str) -> None:
    """domain/ and ports/ import no adapter, SQLAlchemy or I/O module; adapters not the CLI."""
    assert leaks(PACKAGE, layer) == []


def test_domain_never_reads_the_wall_clock() -> None:
    """Time is an input (STYLE 8): no datetime.now()/utcnow()/time.time() in domain/."""
    calls = []
    for path in sorted((PACKAGE / "domain").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"now", "utcnow", "today", "time"}
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"datetime", "date", "time"}
            ):
                calls.append(f"{path.name}:{node.lineno}")
    assert calls == []


def test_the_import_checker_sees_a_leak(tmp_path: Path) -> None:
    """The checker itself can fail: planted absolute and relative leaks are reported."""
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "a.py").write_text("from sqlalchemy import select\n")
    (tmp_path / "domain" / "b.py").write_text("from ..adapters import memory\n")
    (tmp_path / "domain" / "c.py").write_text("from magiclink.domain import _records\n")
    assert leaks(tmp_path, "domain") == [
        "domain/a.py:1 imports sqlalchemy",
        "domain/b.py:1 imports magiclink.adapters",
    ]


def test_ports_are_abstract() -> None:
    """An incomplete adapter cannot be instantiated (STYLE 2)."""
    from magiclink.ports import (
        AuditLog,
        BookingRepository,
        GuestRepository,
        IncidentRepository,
        Metrics,
        Notifier,
        RatingRepository,
        TokenRepository,
        Transaction,
        UnitOfWork,
    )

    for port in (
        AuditLog,
        BookingRepository,
        GuestRepository,
        IncidentRepository,
        Metrics,
        Notifier,
        RatingRepository,
        TokenRepository,
        Transaction,
        UnitOfWork,
    ):
        with pytest.raises(TypeError):
            port()  # type: ignore[abstract]
