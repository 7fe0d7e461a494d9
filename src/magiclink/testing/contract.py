"""The port contract suite (SPEC §5.5): what every storage adapter must do, tested.

`UnitOfWorkContract` gathers the contract of every port. A host proves its adapter by
subclassing it in a pytest module and saying how to get a unit of work on empty storage::

    from magiclink.testing.contract import UnitOfWorkContract

    class TestMyAdapter(UnitOfWorkContract):
        def make_uow(self):
            return MyUnitOfWork(...)

or, when the storage comes from a fixture, by overriding the `uow` fixture::

    class TestMyAdapterOnPostgres(UnitOfWorkContract):
        @pytest.fixture
        def uow(self, my_engine):
            return MyUnitOfWork(my_engine)

Each port's contract is also available alone (`GuestRepositoryContract`, ...). The suite
writes through the ports only; it needs storage that accepts a token whose booking id matches
no booking (a deleted booking, or one kept in the host's own table). See docs/adapters.md.
"""

from __future__ import annotations

from magiclink.testing.contract_bookings import BookingRepositoryContract
from magiclink.testing.contract_concurrency import ROUNDS, THREADS, ConcurrencyContract, race
from magiclink.testing.contract_guests import GuestRepositoryContract
from magiclink.testing.contract_records import (
    AuditLogContract,
    IncidentRepositoryContract,
    RatingRepositoryContract,
)
from magiclink.testing.contract_support import (
    MICRO,
    MISSING_ID,
    T0,
    TTL,
    ContractBase,
    new_email,
    new_hash,
    new_uid,
)
from magiclink.testing.contract_tokens import TokenRepositoryContract
from magiclink.testing.contract_transactions import TransactionContract


class UnitOfWorkContract(
    GuestRepositoryContract,
    BookingRepositoryContract,
    TokenRepositoryContract,
    RatingRepositoryContract,
    IncidentRepositoryContract,
    AuditLogContract,
    TransactionContract,
    ConcurrencyContract,
):
    """The whole contract: every port, transactions, and racing writers.

    Subclass it as `Test...` and implement `make_uow()` (or override the `uow` fixture).
    """


__all__ = [
    "MICRO",
    "MISSING_ID",
    "ROUNDS",
    "T0",
    "THREADS",
    "TTL",
    "AuditLogContract",
    "BookingRepositoryContract",
    "ConcurrencyContract",
    "ContractBase",
    "GuestRepositoryContract",
    "IncidentRepositoryContract",
    "RatingRepositoryContract",
    "TokenRepositoryContract",
    "TransactionContract",
    "UnitOfWorkContract",
    "new_email",
    "new_hash",
    "new_uid",
    "race",
]
