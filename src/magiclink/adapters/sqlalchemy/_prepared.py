"""One statement compiled once for one dialect, and the readers of its rows (issue 15).

`PreparedStatement` holds the SQL string, parameter order and type processors SQLAlchemy
itself would send for a statement, so `_fastpath` can run it with `cursor.execute(sql,
params)`. Its rows are read by column name: the result's column names are matched to the
statement's labels once, on its first result (the SQL is fixed, so its result columns are
too), and each value goes through the result processor of its labelled column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar, cast

from sqlalchemy import RowMapping
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.expression import Select, UpdateBase
from sqlalchemy.types import TypeEngine

from magiclink.adapters.sqlalchemy._tables import (
    SQLITE_DEFAULT_DATETIME_FORMAT,
    UTCDateTime,
    as_utc,
)

Processor = Callable[[Any], Any]
R = TypeVar("R")
Factory = Callable[[Mapping[str, tuple[int, Processor | None]]], Callable[[Any], R]]
"""Compiles a record reader from where each label sits in a row, and its processor."""


class PreparedStatement:
    """One statement compiled for one dialect: its SQL, and how to bind and read it."""

    __slots__ = ("_binders", "_compiled", "_constants", "_layout", "_order", "_readers", "sql")

    def __init__(
        self,
        statement: Select[Any] | UpdateBase,
        dialect: Dialect,
        sample: Mapping[str, Any],
        *,
        column_keys: list[str] | None = None,
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if any(bind.expanding for name, bind in compiled.binds.items() if name in sample):
            # Its SQL would depend on each call's list length: Core's job, not a constant's.
            raise ValueError("a prepared statement takes no expanding (IN list) parameter")
        # The final SQL, with the IN lists of constants expanded, as SQLAlchemy sends it.
        state = compiled.construct_expanded_state(dict(sample))
        self.sql: str = state.statement
        self._order: tuple[str, ...] | None = (
            tuple(state.positiontup) if dialect.positional and state.positiontup else None
        )

        def binder(name: str) -> Processor | None:
            bind = compiled.binds.get(name)
            if bind is not None and isinstance(bind.type, UTCDateTime):
                return timestamp_binder(bind.type, dialect)  # one call instead of two
            found = state.processors.get(name)
            if found is not None:
                return found
            return None if bind is None else bind.type.dialect_impl(dialect).bind_processor(dialect)

        self._binders: dict[str, Processor | None] = {name: binder(name) for name in sample}
        constants: dict[str, Any] = {}
        for name, value in state.parameters.items():
            if name in sample:
                continue
            process = binder(name)
            constants[name] = value if process is None else process(value)
        self._constants = constants
        columns = statement.exported_columns  # the SELECT's columns, or what it RETURNs
        self._readers: dict[str, Processor | None] = {
            str(column.key): _result_processor(column.type, dialect) for column in columns
        }
        # (label, processor) per result column, matched by name on the first result.
        self._layout: tuple[tuple[str, Processor | None], ...] | None = None
        # The record readers `_rows` compiled for that layout, by the factory that made them.
        self._compiled: dict[object, Callable[[Any], Any]] = {}

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The DBAPI parameters for `values` (a tuple or a dict, per the paramstyle)."""
        bound = dict(self._constants)
        for name, process in self._binders.items():
            value = values[name]
            bound[name] = value if process is None else process(value)
        order = self._order
        return bound if order is None else tuple([bound[name] for name in order])

    def mapping(self, names: Callable[[], tuple[Any, ...]], row: Any) -> RowMapping:
        """A fetched row as a mapping by column label, each value through its processor.

        `names()` gives the result's column names as the driver reports them (str, or bytes
        from psycopg's result), in the row's order: asked for on the first result only.
        """
        layout = self._layout_for(names, row)
        out: dict[str, Any] = {}
        for (label, read), value in zip(layout, row, strict=True):
            out[label] = value if read is None or value is None else read(value)
        # `_rows` reads only `row[label]`, which a dict answers as a RowMapping does.
        return cast(RowMapping, out)

    def record(self, names: Callable[[], tuple[Any, ...]], row: Any, factory: Factory[R]) -> R:
        """The record `factory`'s reader makes of a fetched row: one pass over the row, each
        value through its column's processor and the record's conversion (`_rows`). The
        reader is compiled once per statement, from where each label sits in the row."""
        layout = self._layout_for(names, row)
        reader = self._compiled.get(factory)
        if reader is None:
            columns = {label: (index, read) for index, (label, read) in enumerate(layout)}
            reader = self._compiled[factory] = factory(columns)
        return cast(R, reader(row))

    def _layout_for(
        self, names: Callable[[], tuple[Any, ...]], row: Any
    ) -> tuple[tuple[str, Processor | None], ...]:
        layout = self._layout
        if layout is None or len(layout) != len(row):
            layout = self._layout = self._matched(names())
            self._compiled.clear()
        return layout

    def _matched(self, names: tuple[Any, ...]) -> tuple[tuple[str, Processor | None], ...]:
        labels = [name.decode() if isinstance(name, bytes) else str(name) for name in names]
        unknown = [label for label in labels if label not in self._readers]
        if unknown:
            raise sa_exc.InvalidRequestError(f"Unexpected result columns {unknown}")
        return tuple((label, self._readers[label]) for label in labels)


def _result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """The column's result processor, for values that are not None (the readers pass None
    through): a timestamp's in one call (`timestamp_reader`), others as Core's."""
    if isinstance(type_, UTCDateTime):
        return timestamp_reader(type_, dialect)
    return type_.dialect_impl(dialect).result_processor(dialect, None)


_SQLITE_TEXT_LENGTH: Final = len("2000-01-01 00:00:00.000000")


def _sqlite_text(type_: UTCDateTime, dialect: Dialect) -> bool:
    """True when the column is stored as SQLAlchemy's default SQLite DATETIME text."""
    impl = type_.load_dialect_impl(dialect)
    return getattr(impl, "_storage_format", None) == SQLITE_DEFAULT_DATETIME_FORMAT and not (
        getattr(impl, "_reg", None)
    )


def timestamp_binder(type_: UTCDateTime, dialect: Dialect) -> Processor:
    """`UTCDateTime`'s bind processor as one call: on SQLite's default text, the UTC text
    straight from `isoformat` (the same text as the dialect's `%`-format, compared as text
    in SQL: `test_fast_path_timestamps` pins it); elsewhere `process_bind_param`, then the
    dialect's own processor."""
    if _sqlite_text(type_, dialect):

        def as_text(value: datetime | None) -> str | None:
            # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" without its offset.
            return None if value is None else as_utc(value).isoformat(" ", "microseconds")[:-6]

        return as_text
    process = type_.process_bind_param
    native = type_.load_dialect_impl(dialect).bind_processor(dialect)
    if native is None:
        return lambda value: process(value, dialect)
    return lambda value: native(process(value, dialect))


def timestamp_reader(type_: UTCDateTime, dialect: Dialect) -> Processor:
    """`UTCDateTime`'s result processor as one call, for values that are not None: SQLite's
    text parsed as UTC by `fromisoformat` (anything else it stored, by Core's parser), and
    a driver's datetime made aware UTC."""
    parse = type_.load_dialect_impl(dialect).result_processor(dialect, None)
    process = type_.process_result_value

    def aware(value: Any) -> Any:
        return process(value if parse is None else parse(value), dialect)

    if not _sqlite_text(type_, dialect):
        return aware

    def from_text(value: Any) -> Any:
        # Exactly the form SQLAlchemy writes ("YYYY-MM-DD HH:MM:SS.ffffff"); any other text
        # goes to Core's parser, which reads some forms differently from `fromisoformat`.
        if isinstance(value, str) and len(value) == _SQLITE_TEXT_LENGTH:
            try:
                return datetime.fromisoformat(value + "+00:00")
            except ValueError:
                pass
        return aware(value)

    return from_text


def description_names(cursor: Any) -> tuple[Any, ...]:
    return tuple([column[0] for column in cursor.description])


def psycopg_names(cursor: Any) -> tuple[Any, ...]:
    result = cursor.pgresult
    return tuple(map(result.fname, range(result.nfields)))


__all__ = [
    "Factory",
    "PreparedStatement",
    "Processor",
    "description_names",
    "psycopg_names",
    "timestamp_binder",
    "timestamp_reader",
]
