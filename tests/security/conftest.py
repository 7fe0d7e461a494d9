"""Storage for the security tests: the in-memory adapter and SQLite (`uow`), PostgreSQL for
races.

The fixtures come from `tests.databases`: each database gives a clean schema, skips when its
server is missing, and fails instead under `CI=true`.
"""

from __future__ import annotations

from tests.databases import postgres_engine, sqlite_engine, uow

__all__ = ["postgres_engine", "sqlite_engine", "uow"]
