"""Storage for the hardening tests (§9): the in-memory adapter and SQLite (`uow`).

The fixtures come from `tests.databases`.
"""

from __future__ import annotations

from tests.databases import sqlite_engine, uow

__all__ = ["sqlite_engine", "uow"]
