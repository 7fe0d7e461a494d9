"""Adapters: `memory`, `sqlalchemy`, `smtp` and `prometheus`, each imported by its own path."""

__all__: list[str] = []
