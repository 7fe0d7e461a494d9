"""Tests and test tools that any adapter, ours or a host's, can run (SPEC §5.5).

* `magiclink.testing.contract` — the port contract suite: subclass `UnitOfWorkContract` in a
  pytest module and implement `make_uow()` (docs/adapters.md);
* `magiclink.testing.properties` and `magiclink.testing.strategies` — the SPEC §6 properties
  and the hypothesis strategies they draw from;
* `magiclink.testing.faults` — fault injection for any unit of work.

These modules import pytest or hypothesis (development dependencies); `import magiclink`
never imports this package. The contract classes are re-exported here lazily, so importing
`magiclink.testing.strategies` does not import pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from magiclink.testing.contract import (
        AuditLogContract,
        BookingRepositoryContract,
        ConcurrencyContract,
        GuestRepositoryContract,
        IncidentRepositoryContract,
        RatingRepositoryContract,
        TokenRepositoryContract,
        TransactionContract,
        UnitOfWorkContract,
    )

__all__ = [
    "AuditLogContract",
    "BookingRepositoryContract",
    "ConcurrencyContract",
    "GuestRepositoryContract",
    "IncidentRepositoryContract",
    "RatingRepositoryContract",
    "TokenRepositoryContract",
    "TransactionContract",
    "UnitOfWorkContract",
]


def __getattr__(name: str) -> object:
    """Import the contract suite on first use of one of its names."""
    if name in __all__:
        return getattr(importlib.import_module("magiclink.testing.contract"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
