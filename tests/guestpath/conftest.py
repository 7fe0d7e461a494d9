"""Storage for the guest-path tests (§9.4, §9.5, §9.7): in-memory and SQLite for behaviour
(`uow`), SQLite and PostgreSQL (and MariaDB where SQL is new) for statement counts.

The fixtures come from `tests.databases`: each database gives a clean schema, skips when its
server is missing, and fails instead under `CI=true`.
"""

from __future__ import annotations

from tests.databases import any_engine, postgres_engine, sqlite_engine, uow

__all__ = ["any_engine", "postgres_engine", "sqlite_engine", "uow"]
