"""`replacer`: a compiled `attrs.evolve` for the few changes the in-memory adapter makes.

`attrs.evolve` looks up the class's fields and reads them one by one on every call; in the
in-memory adapter that was the largest single cost of a consume and of each invalidated
token. A replacer reads every field at once (`operator.attrgetter`), overwrites the changed
positions and calls the class positionally, so a field the domain adds later is carried over
unchanged, as `evolve` would, and the class's own `__init__` (validators, converters) runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

R = TypeVar("R", bound=attrs.AttrsInstance)


def _positional(cls: type[Any]) -> bool:
    """Whether `cls(*values)`, the values in field order, builds the same record (and the
    fields are more than one: `attrgetter` of one name returns the bare value)."""
    fields = attrs.fields(cls)
    return len(fields) > 1 and all(field.init and not field.kw_only for field in fields)


def replacer(cls: type[R], *names: str) -> Callable[..., R]:
    """A function `(record, *values) -> record` that replaces the fields `names` by `values`.

    `replacer(MagicLinkToken, "used_at")(token, now)` equals
    `attrs.evolve(token, used_at=now)`.
    """
    fields = [field.name for field in attrs.fields(cls)]
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}")
    if not _positional(cls):

        def evolve(record: R, *values: Any) -> R:
            changes = dict(zip(names, values, strict=True))
            return cast(R, attrs.evolve(cast(Any, record), **changes))

        return evolve
    read = operator.attrgetter(*fields)
    positions = tuple(fields.index(name) for name in names)
    if len(positions) == 1:
        (position,) = positions

        def replace_one(record: R, value: Any) -> R:
            row = list(read(record))
            row[position] = value
            return cls(*row)

        return replace_one

    def replace(record: R, *values: Any) -> R:
        row = list(read(record))
        for position, value in zip(positions, values, strict=True):
            row[position] = value
        return cls(*row)

    return replace


__all__ = ["replacer"]
