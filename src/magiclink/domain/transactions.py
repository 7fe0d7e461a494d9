"""Running one unit of work: commit, rollback, the single retry, and error wrapping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from magiclink.domain.errors import MagicLinkError, StorageError
from magiclink.domain.observability import log_event
from magiclink.ports.unit_of_work import Transaction, UnitOfWork

T = TypeVar("T")

RETRIES_ON_TRANSIENT = 1


def run_in_transaction(
    uow: UnitOfWork,
    work: Callable[[Transaction], T],
    *,
    readonly: bool = False,
    retried_event: str = "storage.retried",
    on_retry: Callable[[StorageError], None] | None = None,
    log_fields: Mapping[str, object] | None = None,
) -> T:
    """Run `work` in a fresh transaction and commit it; return what `work` returned.

    Domain errors raised by `work` roll back and propagate unchanged. A transient
    `StorageError` is retried exactly once (R9.4) in a new transaction. Any other exception
    from the ports (a host adapter's, a driver's) becomes `StorageError`, so nothing foreign
    reaches the caller. `log_fields` (booking id, reason…) are added to the retry event.
    """
    attempt = 0
    while True:
        try:
            with uow.transaction(readonly=readonly) as tx:
                result = work(tx)
                tx.commit()
                return result
        except StorageError as error:
            if not error.transient or attempt >= RETRIES_ON_TRANSIENT:
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
        except MagicLinkError:
            raise
        except Exception as error:
            raise StorageError(f"Storage failed: {type(error).__name__}") from error
