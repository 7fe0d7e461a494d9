"""The tables of the SQL adapter, as SQLAlchemy Core metadata.

Every table is prefixed `magiclink_` so that it can live in a host's database next to the
host's own tables; every constraint and index has a deterministic name (the naming convention
below) so that Alembic compares and migrates them by name on every dialect.

Enumerations are stored as their string values (no native ENUM types: adding a member then
needs no migration). Times go through `UTCDateTime`, which stores UTC and always reads back
timezone-aware UTC datetimes, with microseconds, on SQLite, PostgreSQL and MariaDB/MySQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata: Final = MetaData(naming_convention=NAMING_CONVENTION)
"""The metadata holding every magiclink table; a host's Alembic `target_metadata` may include it."""

# Names of the unique constraints whose violation means a domain conflict (see errors.py).
UQ_RATING_BOOKING: Final = "uq_magiclink_ratings_booking_id"
UQ_BOOKING_UID: Final = "uq_magiclink_bookings_uid"
UQ_GUEST_EMAIL: Final = "uq_magiclink_guests_normalized_email"

# 64-bit ids everywhere, except on SQLite where only "INTEGER PRIMARY KEY" is the rowid alias
# that autoincrements (a BIGINT primary key would not).
Id: Final[TypeEngine[int]] = BigInteger().with_variant(Integer(), "sqlite")

# MySQL/MariaDB: always utf8mb4 (whatever the database's default charset), compared byte for
# byte. The usual default collation (utf8mb4_general_ci) says "josé" = "jose" and "ABC" =
# "abc": two people would share one guest row, two bookings one uid. Note that utf8mb4_bin
# still ignores trailing spaces in comparisons (PAD SPACE), which no stored identifier has
# (e-mails are stripped; ids are digits or hex).
MYSQL_TABLE_OPTIONS: Final[dict[str, Any]] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

EMAIL_LENGTH: Final = 254
TEXT_ID_LENGTH: Final = 255


SQLITE_DEFAULT_DATETIME_FORMAT: Final = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)
"""SQLAlchemy's storage format of a SQLite DATETIME (text, compared as text)."""


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused (`ValueError`)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime given to a timezone-aware column")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as a timezone-aware UTC datetime.

    PostgreSQL stores `timestamptz`; SQLite and MariaDB/MySQL store naive UTC (MariaDB as
    `DATETIME(6)`, so microseconds survive). A naive datetime is refused on the way in: the
    library never guesses a time zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Pick the column type per dialect (microsecond precision everywhere)."""
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        if dialect.name == "sqlite":
            return dialect.type_descriptor(DateTime(timezone=False))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """UTC on the way in; naive for the dialects whose column has no time zone."""
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware UTC on the way out, whatever the driver returned."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact); the generic JSON type elsewhere.
JsonObject: Final[TypeEngine[Any]] = JSON().with_variant(postgresql.JSONB(), "postgresql")


def _table(name: str, *parts: SchemaItem) -> Table:
    """A magiclink table in `metadata`: its 64-bit `id` primary key first, then `parts`
    (columns, constraints, indexes), utf8mb4 compared byte for byte on MariaDB/MySQL."""
    return Table(
        name,
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        *parts,
        **MYSQL_TABLE_OPTIONS,
    )


def _created_at() -> Column[datetime]:
    return Column("created_at", UTCDateTime, nullable=False)


def _operation_id() -> Column[str]:
    """The service call that wrote the row (revisions 0006, 0007): its exact `landed` key."""
    return Column("operation_id", String(32), nullable=True)


def _indexes(*columns: str) -> tuple[Index, ...]:
    """One index on each of `columns`, named by `NAMING_CONVENTION`."""
    return tuple(Index(None, column) for column in columns)


guests: Final = _table(
    "magiclink_guests",
    Column("normalized_email", String(EMAIL_LENGTH), nullable=False),
    Column("blocked", Boolean, nullable=False),
    Column("last_request_at", UTCDateTime, nullable=True),
    _created_at(),
    UniqueConstraint("normalized_email"),
)

bookings: Final = _table(
    "magiclink_bookings",
    Column("uid", String(TEXT_ID_LENGTH), nullable=False),
    Column("mentor_id", BigInteger, nullable=False),
    Column("guest_email", String(EMAIL_LENGTH), nullable=False),
    Column("start_time", UTCDateTime, nullable=False),
    Column("end_time", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("revision", Integer, nullable=False),
    # §8.4: advanced by every event of the booking; a link of an older generation is dead.
    Column("link_generation", Integer, nullable=False, server_default="0"),
    _operation_id(),  # the call that last added or changed the row (revision 0007)
    UniqueConstraint("uid"),
)

tokens: Final = _table(
    "magiclink_tokens",
    Column("token_hash", String(64), nullable=False),
    Column("guest_id", Id, ForeignKey("magiclink_guests.id"), nullable=False),
    # No foreign key on purpose: a host may delete a booking (or keep bookings in its own
    # table); verification then refuses the token as "booking_missing" (§5.4).
    Column("booking_id", BigInteger, nullable=True),
    # NULL for tokens issued before revisions existed: they skip the revision check (R6.6).
    Column("booking_revision", Integer, nullable=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("invalidated", Boolean, nullable=False),
    Column("invalidation_reason", String(32), nullable=True),
    _created_at(),
    # §8.4: the booking's link generation when the link was issued (0 for inbox links).
    Column("link_generation", Integer, nullable=False, server_default="0"),
    UniqueConstraint("token_hash"),
    # R10.1: by booking (batch invalidation), by guest (supersede, inbox links), by expiry
    # (purge); the hash is indexed by its unique constraint.
    *_indexes("booking_id", "guest_id", "expires_at"),
)

audit_log: Final = _table(
    "magiclink_audit_log",
    # No foreign key: `log_access` accepts any guest id a host passes, as the in-memory log does.
    Column("guest_id", BigInteger, nullable=True),
    Column("endpoint", String(TEXT_ID_LENGTH), nullable=False),
    Column("action", String(TEXT_ID_LENGTH), nullable=False),
    Column("resource_id", String(TEXT_ID_LENGTH), nullable=True),
    Column("success", Boolean, nullable=False),
    Column("metadata", JsonObject, nullable=False),
    _created_at(),
    _operation_id(),
    *_indexes("resource_id", "guest_id", "operation_id"),
)

ratings: Final = _table(
    "magiclink_ratings",
    # No foreign key: the booking table may be the host's own (docs/adapters.md).
    Column("booking_id", BigInteger, nullable=False),
    Column("student_profile_id", String(TEXT_ID_LENGTH), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("feedback", Text, nullable=True),
    _created_at(),
    _operation_id(),
    UniqueConstraint("booking_id"),
)

incidents: Final = _table(
    "magiclink_incidents",
    Column("booking_uid", String(TEXT_ID_LENGTH), nullable=False),
    Column("booking_id", BigInteger, nullable=True),
    Column("student_profile_id", String(TEXT_ID_LENGTH), nullable=False),
    Column("type", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("reported_by_user_id", BigInteger, nullable=True),
    _created_at(),
    _operation_id(),
    *_indexes("booking_uid"),
)

__all__ = [
    "MYSQL_TABLE_OPTIONS",
    "NAMING_CONVENTION",
    "SQLITE_DEFAULT_DATETIME_FORMAT",
    "UQ_BOOKING_UID",
    "UQ_GUEST_EMAIL",
    "UQ_RATING_BOOKING",
    "Id",
    "JsonObject",
    "UTCDateTime",
    "as_utc",
    "audit_log",
    "bookings",
    "guests",
    "incidents",
    "metadata",
    "ratings",
    "tokens",
]
