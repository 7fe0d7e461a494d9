"""The SQLAlchemy 2.x adapter: every port over SQLite, PostgreSQL or MariaDB/MySQL.

```
engine = sqlalchemy.create_engine("postgresql+psycopg://...")
upgrade_to_head(engine)          # or create_schema(engine) for a brand-new database
uow = SqlAlchemyUnitOfWork(engine)
```

`metadata` holds the `magiclink_*` tables, for a host whose own Alembic manages them.
"""

from magiclink.adapters.sqlalchemy._migrate import (
    alembic_config,
    create_schema,
    current_revision,
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
from magiclink.adapters.sqlalchemy._unit_of_work import (
    SqlAlchemyTransaction,
    SqlAlchemyUnitOfWork,
)

__all__ = [
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
    "upgrade_to",
    "upgrade_to_head",
]
