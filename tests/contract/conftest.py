"""Databases for the contract suite: clean magiclink tables per test (tests/databases.py)."""

from __future__ import annotations

from tests.databases import mariadb_engine, postgres_engine, sqlite_engine  # noqa: F401
