"""One transaction as a value (`Operation`), and the one runner that commits it (R9.4).

An operation says everything about its transaction: the work, whether it only reads, how to
tell whether an ambiguous commit landed, and the labels of its retry log event. `run` is the
only place that opens, commits, retries and wraps; the sync services, the async services
(which run the same services on the greenlet bridge, SPEC §10) and the read path of every
adapter (a read-only operation may run without an explicit transaction, issue 15) all drive
these values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, Generic, TypeVar

import attrs

from magiclink.domain._errors import MagicLinkError, StorageError
from magiclink.domain._observability import Events, log_event
from magiclink.ports._unit_of_work import Transaction, UnitOfWork

T = TypeVar("T")

RETRIES_ON_TRANSIENT: Final = 1
_NO_FIELDS: Final[Mapping[str, object]] = MappingProxyType({})


def rerun(_tx: Transaction) -> None:
    """A `landed` check for idempotent work: nothing to look up, running it again is safe."""
    return None


@attrs.frozen
class Operation(Generic[T]):
    """One unit of work and what the runner must know about it.

    `landed` reads, in a new transaction after a commit whose outcome is unknown, whether
    this attempt's effect is stored — by a key the attempt wrote (its token hash, its
    operation id), never by a scan or a coincidence of times — and returns the attempt's
    result if so; None means it did not land (or, with `rerun`, that running again is safe).
    A write without `landed` is not retried after a failed commit. `log_fields` and
    `retried_event` label the retry event; `on_retry` is told of each retry (a metric).

    `one_write` declares work whose writes land at most once, through `Transaction`'s
    combined writes, each of whose own condition re-checks what any read decided: it runs
    in `UnitOfWork.one_write_transaction()`, where the adapter may let each statement
    commit by itself (PostgreSQL: the consume of a good link is one CTE, one round trip
    instead of four; a batch invalidation one CTE, issue 15). A failure anywhere in
    such work may then hide a write that landed, so the runner treats it as a failed
    commit: retried only through `landed`.
    """

    work: Callable[[Transaction], T]
    readonly: bool = False
    one_write: bool = False
    landed: Callable[[Transaction], T | None] | None = None
    retried_event: str = Events.STORAGE_RETRIED
    log_fields: Mapping[str, object] = _NO_FIELDS
    on_retry: Callable[[StorageError], None] | None = None


def read(work: Callable[[Transaction], T]) -> Operation[T]:
    """A read-only operation: it writes nothing, so any failure may simply be retried."""
    return Operation(work, readonly=True)


def run(uow: UnitOfWork, operation: Operation[T]) -> T:
    """Run `operation` in a fresh transaction and commit it; return what its work returned.

    Domain errors raised by the work roll back and propagate unchanged. A transient
    `StorageError` is retried exactly once (R9.4) in a new transaction. Any other exception
    from the ports (a host adapter's, a driver's) becomes `StorageError`, so nothing foreign
    reaches the caller; `uow.programming_errors` (the caller's bugs) pass unchanged.

    A transient failure *at commit* leaves the outcome unknown: a lost connection may hide a
    commit that landed, and running the work again would then apply it twice or refuse it
    (a cancellation answered `BookingClosed`). So a write is retried after a failed commit
    only through `operation.landed` (see `Operation`); so is a `one_write` operation after
    any transient failure, since its write may have committed by itself.
    """
    attempt = 0
    while True:
        committing = operation.one_write  # its write may commit by itself, in the work
        try:
            with _transaction(uow, operation) as tx:
                result = operation.work(tx)
                committing = True
                tx.commit()
                return result
        except StorageError as error:
            uncertain = committing and not operation.readonly
            if (
                not error.transient
                or attempt >= RETRIES_ON_TRANSIENT
                or (uncertain and operation.landed is None)
            ):
                raise
            attempt += 1
            _retried(operation, error)
            if uncertain and operation.landed is not None:
                earlier = _read(uow, operation.landed)
                if earlier is not None:
                    return earlier
        except MagicLinkError:
            raise
        except Exception as error:
            if isinstance(error, uow.programming_errors):
                raise  # the caller's bug, not an outage (e.g. MissingGreenlet)
            raise _wrapped(error) from error


def run_in_transaction(
    uow: UnitOfWork,
    work: Callable[[Transaction], T],
    *,
    readonly: bool = False,
    landed: Callable[[Transaction], T | None] | None = None,
) -> T:
    """`run(uow, Operation(work, readonly=..., landed=...))`: the shorthand of the test kit
    and of a host's own data migrations."""
    return run(uow, Operation(work, readonly=readonly, landed=landed))


def _transaction(uow: UnitOfWork, operation: Operation[T]) -> Transaction:
    if operation.one_write:
        return uow.one_write_transaction()
    return uow.transaction(readonly=operation.readonly)


def _retried(operation: Operation[T], error: StorageError) -> None:
    log_event(
        logging.WARNING,
        operation.retried_event,
        **operation.log_fields,
        error_type=type(error).__name__,
        error=str(error),
    )
    if operation.on_retry is not None:
        operation.on_retry(error)


def _wrapped(error: Exception) -> StorageError:
    """The `StorageError` a foreign exception becomes: it names only the exception's type."""
    return StorageError(f"Storage failed: {type(error).__name__}")


def _read(uow: UnitOfWork, check: Callable[[Transaction], T | None]) -> T | None:
    """Run a read-only check in its own transaction; failures become `StorageError`."""
    try:
        with uow.transaction(readonly=True) as tx:
            return check(tx)
    except MagicLinkError:
        raise
    except Exception as error:
        if isinstance(error, uow.programming_errors):
            raise
        raise _wrapped(error) from error


__all__ = ["Operation", "read", "rerun", "run", "run_in_transaction"]
