"""Fault injection for any `UnitOfWork`: make the k-th storage call fail, on purpose.

`FaultyUnitOfWork` wraps a unit of work (in-memory, SQLAlchemy, or a host's own) and counts
every storage call made through the transactions it opens: each repository method call
(named ``"<repository>.<method>"``, e.g. ``"tokens.invalidate_by_booking"``) and, when asked,
each ``"transaction"`` begin and each ``"commit"``. The calls numbered ``fail_at`` to
``fail_at + times - 1`` (1-based, counted across the whole wrapper and every thread) raise
instead of reaching the wrapped storage.

The usual test first runs an operation cleanly to learn the calls it makes, then replays it
once per call number, each time on fresh state, failing exactly that call::

    probe = FaultyUnitOfWork(InMemoryUnitOfWork())
    run(probe)                                   # learn the calls
    for k in range(1, len(probe.calls) + 1):
        faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), fail_at=k)
        ...                                      # assert what a failure of call k means

`match` narrows what is counted towards `fail_at` (every call is still logged in `calls`):
``FaultyUnitOfWork(uow, match="tokens.invalidate_by_booking", fail_at=1)`` fails the first
batch invalidation whatever ran before it. `arm` re-aims a wrapper after a clean set-up.

The proxies subclass the port ABCs (`Transaction`, `TokenRepository`, ...), so `isinstance`
checks hold and an adapter that grows a port method is proxied without change here.
"""

from __future__ import annotations

import functools
import threading
import typing
from collections.abc import Callable, Collection
from typing import Any, Final, TypeVar, cast

from magiclink.domain._errors import StorageError
from magiclink.ports._unit_of_work import ExcInfo, Transaction, UnitOfWork

__all__ = [
    "REPOSITORIES",
    "WRITE_CALLS",
    "FaultyTransaction",
    "FaultyUnitOfWork",
    "InjectedFault",
]

R = TypeVar("R")

ErrorFactory = Callable[[str], BaseException]
"""Builds the exception to raise from the name of the call that fails."""

# Read from the port's annotations, so a repository added to `Transaction` is proxied too.
REPOSITORIES: Final[dict[str, type[Any]]] = typing.get_type_hints(Transaction)
"""Transaction attribute -> the port ABC its repository implements."""

WRITE_CALLS: Final = frozenset(
    {
        "guests.get_or_create",
        "guests.claim_request_slot",
        "guests.set_blocked",
        "bookings.add",
        "bookings.update",
        "bookings.revoke_links",
        "tokens.add",
        "tokens.consume",
        "tokens.invalidate",
        "tokens.invalidate_by_booking",
        "tokens.invalidate_live",
        "tokens.invalidate_all_live",
        "tokens.purge_expired",
        "ratings.add",
        "incidents.add",
        "audit.add_many",
    }
)
"""The repository methods that may change storage (a test asserts none ran on a refusal)."""


class InjectedFault(RuntimeError):
    """A foreign (non-magiclink) exception, for proving that services wrap what adapters raise."""


class FaultyUnitOfWork(UnitOfWork):
    """A `UnitOfWork` that delegates to `inner` and fails chosen storage calls.

    Args:
        inner: the unit of work that does the real work.
        fail_at: the 1-based number of the first counted call to fail; None never fails.
        transient: the `transient` flag of the default `StorageError`.
        times: how many consecutive counted calls fail, starting at `fail_at`.
        error_factory: builds the exception from the failing call's name (default:
            `StorageError(transient=transient)`); return e.g. `InjectedFault(...)` to raise a
            foreign exception.
        match: when given, only calls with one of these names count towards `fail_at`.
        count_commits: also log (and count) each ``"commit"``.
        count_begins: also log (and count) each ``"transaction"`` begin.

    Attributes:
        calls: the name of every logged call, in order, the failed ones included.
        failures: the names of the calls that were made to fail.
    """

    def __init__(
        self,
        inner: UnitOfWork,
        *,
        fail_at: int | None = None,
        transient: bool = False,
        times: int = 1,
        error_factory: ErrorFactory | None = None,
        match: str | Collection[str] | None = None,
        count_commits: bool = False,
        count_begins: bool = False,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.count_commits = count_commits
        self.count_begins = count_begins
        self.calls: list[str] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._counted = 0
        self._fail_at: int | None = None
        self._times = 1
        self._transient = False
        self._error_factory: ErrorFactory | None = None
        self._match: frozenset[str] | None = None
        self.arm(
            fail_at,
            transient=transient,
            times=times,
            error_factory=error_factory,
            match=match,
        )

    def arm(
        self,
        fail_at: int | None,
        *,
        transient: bool = False,
        times: int = 1,
        error_factory: ErrorFactory | None = None,
        match: str | Collection[str] | None = None,
    ) -> None:
        """Aim the wrapper anew: counting restarts at zero (the `calls` log is kept)."""
        if fail_at is not None and fail_at < 1:
            raise ValueError("fail_at is 1-based")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._counted = 0
            self._fail_at = fail_at
            self._times = times
            self._transient = transient
            self._error_factory = error_factory
            self._match = frozenset({match} if isinstance(match, str) else match or ()) or None

    def disarm(self) -> None:
        """Stop failing calls (they are still logged)."""
        self.arm(None)

    def clear_calls(self) -> None:
        """Forget the logged calls and failures."""
        with self._lock:
            self.calls.clear()
            self.failures.clear()

    def before_call(self, name: str) -> None:
        """Log one storage call and raise if it is one of the calls chosen to fail."""
        with self._lock:
            self.calls.append(name)
            if self._match is not None and name not in self._match:
                return
            self._counted += 1
            if self._fail_at is None or not (
                self._fail_at <= self._counted < self._fail_at + self._times
            ):
                return
            self.failures.append(name)
            factory = self._error_factory
            transient = self._transient
            number = self._counted
        if factory is not None:
            raise factory(name)
        raise StorageError(f"Injected fault at call {number} ({name})", transient=transient)

    def transaction(self, *, readonly: bool = False) -> Transaction:
        """Begin a transaction on the wrapped unit of work, wrapped so its calls are counted."""
        if self.count_begins:
            self.before_call("transaction")
        return FaultyTransaction(self, self.inner.transaction(readonly=readonly))


class FaultyTransaction(Transaction):
    """A `Transaction` whose repositories count their calls on the owning `FaultyUnitOfWork`."""

    def __init__(self, owner: FaultyUnitOfWork, inner: Transaction) -> None:
        self._owner = owner
        self._inner = inner
        for name, port in REPOSITORIES.items():
            setattr(self, name, _proxy(port, name, getattr(inner, name), owner))

    def commit(self) -> None:
        """Commit the wrapped transaction (a counted call when `count_commits`)."""
        if self._owner.count_commits:
            self._owner.before_call("commit")
        self._inner.commit()

    def rollback(self) -> None:
        """Roll the wrapped transaction back (never fails on purpose)."""
        self._inner.rollback()

    def close(self) -> None:
        """Close the wrapped transaction (never fails on purpose)."""
        self._inner.close()

    def __exit__(self, *exc_info: *ExcInfo) -> None:
        self._inner.__exit__(*exc_info)


class _RepositoryProxy:
    """Base of the generated proxies: holds the wrapped repository and the counter."""

    def __init__(self, name: str, inner: object, owner: FaultyUnitOfWork) -> None:
        self._name = name
        self._inner = inner
        self._owner = owner

    def __getattr__(self, attribute: str) -> Any:
        # Adapter extras beyond the port (not counted: only port methods are storage calls).
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self._inner, attribute)


def _forwarder(method_name: str, port_method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(port_method)
    def forward(self: _RepositoryProxy, *args: Any, **kwargs: Any) -> Any:
        self._owner.before_call(f"{self._name}.{method_name}")
        return getattr(self._inner, method_name)(*args, **kwargs)

    forward.__isabstractmethod__ = False  # type: ignore[attr-defined]
    return forward


_PROXY_CLASSES: Final[dict[type[Any], type[_RepositoryProxy]]] = {}


def _proxy_class(port: type[Any]) -> type[_RepositoryProxy]:
    """A concrete subclass of `port` forwarding each abstract method through the counter."""
    cached = _PROXY_CLASSES.get(port)
    if cached is not None:
        return cached
    namespace: dict[str, Any] = {
        name: _forwarder(name, getattr(port, name)) for name in sorted(port.__abstractmethods__)
    }
    namespace["__doc__"] = f"Fault-injecting proxy of a `{port.__name__}`."
    namespace["__module__"] = __name__
    proxy = type(f"Faulty{port.__name__}", (_RepositoryProxy, port), namespace)
    _PROXY_CLASSES[port] = proxy
    return proxy


def _proxy(port: type[Any], name: str, inner: R, owner: FaultyUnitOfWork) -> R:
    """`inner` wrapped in the proxy of its `port` (itself an instance of `port`)."""
    return cast(R, _proxy_class(port)(name, inner, owner))
