"""Storage for the reliability tests: the database fixtures of `tests.databases`.

Each gives a clean schema; a missing server skips, and fails instead under `CI=true`.
"""

from tests.databases import postgres_engine, sqlite_engine

__all__ = ["postgres_engine", "sqlite_engine"]
