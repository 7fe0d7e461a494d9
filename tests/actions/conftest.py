from tests.databases import any_engine, mariadb_engine, postgres_engine, sqlite_engine

__all__ = ["any_engine", "mariadb_engine", "postgres_engine", "sqlite_engine"]
