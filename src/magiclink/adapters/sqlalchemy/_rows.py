"""Rows to records and records to rows, by column name.

Every column a statement selects carries a label, `<record>_<column>` (`token_id`,
`guest_created_at`, `booking_status`): unique across the tables the token lookup joins, and
the same in every statement that selects that column. The `*_from_row` functions read a
row's values by those labels through `Row._mapping` (a view over the row, nothing copied),
never by position: a statement may list its columns in any order. Values are translated
explicitly into the frozen domain records (strings back to `StrEnum` members; times come back
timezone-aware UTC from `UTCDateTime`).

The `*_values` functions are the other way: a record's column values to insert, keyed by
column name (the id aside, which the database assigns). An `add` receives its record with
`UNSAVED_ID`, inserts that record's values and returns the record with the new id.

Each record's fields are named as its table's columns, so one name-based mapping serves
every table (`_reader`, `_writer`), with the few value conversions spelled out per table;
that the names match is checked once, at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar, cast

import attrs
from sqlalchemy import Column, Label, RowMapping, Table

from magiclink.adapters.sqlalchemy import _tables as tables
from magiclink.domain import _records as records
from magiclink.domain._enums import BookingStatus, IncidentType, InvalidationReason
from magiclink.ports._repositories import TokenStats

R = TypeVar("R")
Convert = Callable[[Any], Any]
Step = tuple[int, Convert | None]
Columns = Mapping[str, Step]
"""Where each labelled column sits in a fetched row, and the processor of its driver value."""


def _labelled(prefix: str, *columns: Column[Any]) -> tuple[Label[Any], ...]:
    """The columns labelled `<prefix>_<column name>`."""
    return tuple(column.label(f"{prefix}_{column.name}") for column in columns)


def _unchanged(value: Any) -> Any:
    return value


def _optional(convert: Convert) -> Convert:
    """`convert`, with None passed through (a nullable enum column)."""
    return lambda value: None if value is None else convert(value)


def _fields(record: type[Any], table: Table, *, with_id: bool = True) -> list[str]:
    """The record's field names, which must be exactly the table's column names (the id
    aside when `with_id` is False): a mismatch fails at import, not at the first read."""
    names = [field.name for field in attrs.fields(record) if with_id or field.name != "id"]
    columns = [column.name for column in table.columns if with_id or column.name != "id"]
    if sorted(names) != sorted(columns):
        raise TypeError(f"{record.__name__} fields {names} are not {table.name} {columns}")
    return names


class _Reader(Generic[R]):
    """The record in a row holding the table's columns labelled `<prefix>_<column>`, each
    value passed through `convert[<column>]` where one is given: read by label from a
    `RowMapping` (calling it), or from a plain row by position once `at(columns)` has
    compiled where each label sits (the fast path)."""

    def __init__(self, record: type[R], table: Table, prefix: str, **convert: Convert) -> None:
        self._record = record
        self._labels = [(name, f"{prefix}_{name}") for name in _fields(record, table)]
        self._convert = convert
        self._plain = [(name, label) for name, label in self._labels if name not in convert]
        self._converted = [
            (name, label, convert[name]) for name, label in self._labels if name in convert
        ]
        self.__doc__ = f"The `{record.__name__}` in a row of `{table.name}` labelled `{prefix}_*`."

    def __call__(self, row: RowMapping) -> R:
        values = {name: row[label] for name, label in self._plain}
        for name, label, to_field in self._converted:
            values[name] = to_field(row[label])
        return self._record(**values)

    def at(self, columns: Columns) -> Callable[[Sequence[Any]], R]:
        """The reader of plain rows whose labels sit where `columns` says (one pass)."""
        reads = [(columns[label], self._convert.get(name)) for name, label in self._labels]
        return _compiled(self._record, reads)


_Read = tuple[Step, Convert | None]
"""One value of a plain row: where it sits and its driver processor, then its conversion."""


def _compiled(
    make: Callable[..., R], reads: Sequence[_Read | Callable[[Sequence[Any]], Any]]
) -> Callable[[Sequence[Any]], R]:
    """`make(*values)` of a plain row as one generated function (as attrs generates
    `__init__`): each value `row[i]`, through its processor (None passed through) and its
    conversion, or a nested reader called with the whole row. The hot path reads a row with
    no loop, list or per-value call beyond the conversions themselves; the generated source
    holds only indexes and names of this namespace, never data."""
    namespace: dict[str, Any] = {"make": make}
    values = []
    for n, read in enumerate(reads):
        if callable(read):
            namespace[f"nested{n}"] = read
            values.append(f"nested{n}(row)")
            continue
        (index, process), convert = read
        value = f"row[{int(index)}]"
        if process is not None:
            namespace[f"process{n}"] = process
            value = f"(None if {value} is None else process{n}({value}))"
        if convert is not None:
            namespace[f"convert{n}"] = convert
            value = f"convert{n}({value})"
        values.append(value)
    source = f"def read(row):\n    return make({', '.join(values)})\n"
    exec(compile(source, f"<magiclink reader of {make.__name__}>", "exec"), namespace)
    return cast(Callable[[Sequence[Any]], R], namespace["read"])


def _writer(record: type[R], table: Table, **convert: Convert) -> Callable[[R], dict[str, Any]]:
    """A record's column values to insert, keyed by column name (the id aside, which the
    database assigns); each passed through `convert[<column>]` where one is given."""
    plan = [(name, convert.get(name, _unchanged)) for name in _fields(record, table, with_id=False)]

    def values(item: R) -> dict[str, Any]:
        return {name: to_column(getattr(item, name)) for name, to_column in plan}

    values.__doc__ = f"The columns of a new `{table.name}` row."
    return values


# --- Selected columns, labelled: every column of the table ---------------------------------

GUEST_COLUMNS: Final = _labelled("guest", *tables.guests.columns)
BOOKING_COLUMNS: Final = _labelled("booking", *tables.bookings.columns)
TOKEN_COLUMNS: Final = _labelled("token", *tables.tokens.columns)
# R7: the token, its guest, and its booking's state if the booking still exists.
LOOKUP_COLUMNS: Final = (
    *TOKEN_COLUMNS,
    *GUEST_COLUMNS,
    *_labelled(
        "booking",
        tables.bookings.c.status,
        tables.bookings.c.revision,
        tables.bookings.c.link_generation,
    ),
)
AUDIT_COLUMNS: Final = _labelled("audit", *tables.audit_log.columns)
RATING_COLUMNS: Final = _labelled("rating", *tables.ratings.columns)
INCIDENT_COLUMNS: Final = _labelled("incident", *tables.incidents.columns)


# --- Row -> record ------------------------------------------------------------------------
# Booleans through bool() (MariaDB returns 0/1), enumerations from their stored strings.

guest_from_row: Final = _Reader(records.Guest, tables.guests, "guest", blocked=bool)
booking_from_row: Final = _Reader(records.Booking, tables.bookings, "booking", status=BookingStatus)
token_from_row: Final = _Reader(
    records.MagicLinkToken,
    tables.tokens,
    "token",
    invalidated=bool,
    invalidation_reason=_optional(InvalidationReason),
)
audit_from_row: Final = _Reader(records.AuditEntry, tables.audit_log, "audit", success=bool)
rating_from_row: Final = _Reader(records.Rating, tables.ratings, "rating")
incident_from_row: Final = _Reader(
    records.Incident, tables.incidents, "incident", type=IncidentType
)


def lookup_from_row(row: RowMapping) -> records.TokenLookup:
    """The `TokenLookup` in a row holding `LOOKUP_COLUMNS` (booking state None: no booking)."""
    status = row["booking_status"]
    return records.TokenLookup(
        token=token_from_row(row),
        guest=guest_from_row(row),
        booking_status=None if status is None else BookingStatus(status),
        booking_revision=row["booking_revision"],
        booking_link_generation=row["booking_link_generation"],
    )


def lookup_reader(columns: Columns) -> Callable[[Sequence[Any]], records.TokenLookup]:
    """`lookup_from_row` for plain rows of `LOOKUP_COLUMNS` (the fast path), compiled from
    where each label sits in the row."""
    return _compiled(
        records.TokenLookup,
        [
            token_from_row.at(columns),
            guest_from_row.at(columns),
            (columns["booking_status"], _optional(BookingStatus)),
            (columns["booking_revision"], None),
            (columns["booking_link_generation"], None),
        ],
    )


def invalidation_from_rows(rows: Iterable[RowMapping]) -> records.InvalidationResult:
    """Newly invalidated tokens per guest, from rows of `guest_id` and their count `n`."""
    return records.InvalidationResult(per_guest={row["guest_id"]: int(row["n"]) for row in rows})


def stats_from_rows(totals: RowMapping, by_reason: Iterable[RowMapping]) -> TokenStats:
    """`TokenStats` from the row of `live`, `expired`, `used` and `invalidated` counts and
    the rows of `reason` and its count `n`."""
    return TokenStats(
        live=int(totals["live"]),
        expired=int(totals["expired"]),
        used=int(totals["used"]),
        invalidated=int(totals["invalidated"]),
        invalidated_by_reason={str(row["reason"]): int(row["n"]) for row in by_reason},
    )


# --- Record -> row values (insert parameters, keyed by column name) -----------------------


guest_values: Final = _writer(records.Guest, tables.guests)
booking_values: Final = _writer(records.Booking, tables.bookings, status=str)
token_values: Final = _writer(
    records.MagicLinkToken, tables.tokens, invalidation_reason=_optional(str)
)
audit_values: Final = _writer(records.NewAuditEntry, tables.audit_log, action=str, metadata=dict)
rating_values: Final = _writer(records.Rating, tables.ratings)
incident_values: Final = _writer(records.Incident, tables.incidents, type=str)


__all__ = [
    "AUDIT_COLUMNS",
    "BOOKING_COLUMNS",
    "GUEST_COLUMNS",
    "INCIDENT_COLUMNS",
    "LOOKUP_COLUMNS",
    "RATING_COLUMNS",
    "TOKEN_COLUMNS",
    "Columns",
    "audit_from_row",
    "audit_values",
    "booking_from_row",
    "booking_values",
    "guest_from_row",
    "guest_values",
    "incident_from_row",
    "incident_values",
    "invalidation_from_rows",
    "lookup_from_row",
    "lookup_reader",
    "rating_from_row",
    "rating_values",
    "stats_from_rows",
    "token_from_row",
    "token_values",
]
