"""Running one unit of work: commit, rollback, the single retry, and error wrapping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from magiclink.domain._errors import MagicLinkError, StorageError
from magiclink.domain._observability import Events, log_event
from magiclink.ports._unit_of_work import Transaction, UnitOfWork

T = TypeVar("T")

RETRIES_ON_TRANSIENT: Final = 1


def rerun(_tx: Transaction) -> None:
    """A `landed` check for idempotent work: nothing to look up, running it again is safe."""
    return None


def run_in_transaction(
    uow: UnitOfWork,
    work: Callable[[Transaction], T],
    *,
    readonly: bool = False,
    landed: Callable[[Transaction], T | None] | None = None,
    retried_event: str = Events.STORAGE_RETRIED,
    on_retry: Callable[[StorageError], None] | None = None,
    log_fields: Mapping[str, object] | None = None,
) -> T:
    """Run `work` in a fresh transaction and commit it; return what `work` returned.

    Domain errors raised by `work` roll back and propagate unchanged. A transient
    `StorageError` is retried exactly once (R9.4) in a new transaction. Any other exception
    from the ports (a host adapter's, a driver's) becomes `StorageError`, so nothing foreign
    reaches the caller. `log_fields` (booking id, reason…) are added to the retry event.

    A transient failure *at commit* leaves the outcome unknown: a lost connection may hide a
    commit that landed, and running the work again would then apply it twice or refuse it
    (a cancellation answered `BookingClosed`). So a write is retried after a failed commit
    only through `landed`: it reads, in a new transaction, whether the first attempt's
    effect is there and returns that attempt's result if so; None means it did not land (or
    the work is idempotent, see `rerun`) and the work runs again. Without `landed`, a
    failed commit of a write is raised.
    """
    attempt = 0
    while True:
        committing = False
        try:
            with uow.transaction(readonly=readonly) as tx:
                result = work(tx)
                committing = True
                tx.commit()
                return result
        except StorageError as error:
            uncertain = committing and not readonly
            if (
                not error.transient
                or attempt >= RETRIES_ON_TRANSIENT
                or (uncertain and landed is None)
            ):
                raise
            attempt += 1
            log_event(
                logging.WARNING,
                retried_event,
                **(log_fields or {}),
                error_type=type(error).__name__,
                error=str(error),
            )
            if on_retry is not None:
                on_retry(error)
            if uncertain and landed is not None:
                earlier = _read(uow, landed)
                if earlier is not None:
                    return earlier
        except MagicLinkError:
            raise
        except Exception as error:
            if isinstance(error, uow.programming_errors):
                raise  # the caller's bug, not an outage (e.g. MissingGreenlet)
            raise StorageError(f"Storage failed: {type(error).__name__}") from error


def _read(uow: UnitOfWork, read: Callable[[Transaction], T | None]) -> T | None:
    """Run a read-only check in its own transaction; failures become `StorageError`."""
    try:
        with uow.transaction(readonly=True) as tx:
            return read(tx)
    except MagicLinkError:
        raise
    except Exception as error:
        if isinstance(error, uow.programming_errors):
            raise
        raise StorageError(f"Storage failed: {type(error).__name__}") from error
