"""Tests and test tools that any adapter, ours or a host's, can run (SPEC §5.5).

* `magiclink.testing.contract` — the port contract suite: subclass `UnitOfWorkContract` in a
  pytest module and implement `make_uow()` (docs/adapters.md);
* `magiclink.testing.properties` and `magiclink.testing.strategies` — the SPEC §6 properties
  and the hypothesis strategies they draw from;
* `magiclink.testing.faults` — fault injection for any unit of work;
* `magiclink.testing.world` — `World`, the one test world (storage, manual clock, recorders
  and the four services from `magiclink.build_services`), with `Link`, `hash_token` and
  `raw_from_url`; re-exported here.

These modules import pytest or hypothesis (development dependencies); `import magiclink`
never imports this package. The contract classes are re-exported here lazily, so importing
`magiclink.testing.strategies` does not import pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

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

from magiclink.testing.world import EPOCH, MENTOR_ID, Link, World, hash_token, raw_from_url

__all__ = [
    "EPOCH",
    "MENTOR_ID",
    "AuditLogContract",
    "BookingRepositoryContract",
    "ConcurrencyContract",
    "GuestRepositoryContract",
    "IncidentRepositoryContract",
    "Link",
    "RatingRepositoryContract",
    "TokenRepositoryContract",
    "TransactionContract",
    "UnitOfWorkContract",
    "World",
    "hash_token",
    "raw_from_url",
]


# Every name of `__all__` that ends so comes from the contract suite (imported lazily).
_CONTRACTS: Final = frozenset(name for name in __all__ if name.endswith("Contract"))


def __getattr__(name: str) -> object:
    """Import the contract suite on first use of one of its names."""
    if name in _CONTRACTS:
        return getattr(importlib.import_module("magiclink.testing.contract"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
