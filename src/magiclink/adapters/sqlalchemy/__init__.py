"""The SQLAlchemy 2.x adapter: every port over SQLite, PostgreSQL or MariaDB/MySQL.

```
engine = sqlalchemy.create_engine("postgresql+psycopg://...")
upgrade_to_head(engine)          # or create_schema(engine) for a brand-new database
uow = SqlAlchemyUnitOfWork(engine)
```

Public for a host's own code next to the adapter: `metadata` holds the `magiclink_*` tables,
and `VERSION_TABLE` names the table of magiclink's migration history, for a host whose own
Alembic manages (or must leave alone) them; `missing_from_head()` (a health check: what the
database lacks of the head schema), `revision_shapes()` (each revision's tables, columns and
indexes) and `SchemaMismatch` (what `upgrade_to_head` raises on a half-built schema) let a
host's deploy check the schema before it serves; `translate_errors()` gives a host's own
SQLAlchemy repositories magiclink's error translation (driver errors become `StorageError`,
transient when a retry may succeed, R9.4), docs/adapters.md.
"""

from magiclink.adapters.sqlalchemy._errors import translate_errors
from magiclink.adapters.sqlalchemy._migrate import (
    VERSION_TABLE,
    SchemaMismatch,
    alembic_config,
    create_schema,
    current_revision,
    missing_from_head,
    revision_shapes,
    upgrade_to,
    upgrade_to_head,
)
from magiclink.adapters.sqlalchemy._outbox import SqlAlchemyOutbox
from magiclink.adapters.sqlalchemy._repositories import (
    SqlAlchemyAuditLog,
    SqlAlchemyBookingRepository,
    SqlAlchemyGuestRepository,
    SqlAlchemyIncidentRepository,
    SqlAlchemyRatingRepository,
    SqlAlchemyTokenRepository,
)
from magiclink.adapters.sqlalchemy._tables import metadata
from magiclink.adapters.sqlalchemy._unit_of_work import SqlAlchemyTransaction, SqlAlchemyUnitOfWork

__all__ = [
    "VERSION_TABLE",
    "SchemaMismatch",
    "SqlAlchemyAuditLog",
    "SqlAlchemyBookingRepository",
    "SqlAlchemyGuestRepository",
    "SqlAlchemyIncidentRepository",
    "SqlAlchemyOutbox",
    "SqlAlchemyRatingRepository",
    "SqlAlchemyTokenRepository",
    "SqlAlchemyTransaction",
    "SqlAlchemyUnitOfWork",
    "alembic_config",
    "create_schema",
    "current_revision",
    "metadata",
    "missing_from_head",
    "revision_shapes",
    "translate_errors",
    "upgrade_to",
    "upgrade_to_head",
]
