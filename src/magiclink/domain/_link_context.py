"""What a link action (§8.1) needs of the guest service whose link it consumes."""

from __future__ import annotations

import attrs

from magiclink.domain._instruments import Instruments
from magiclink.domain._verification import Verification
from magiclink.ports._clock import Clock
from magiclink.ports._unit_of_work import UnitOfWork


@attrs.frozen
class LinkActionContext:
    """The guest service's unit of work, clock, verification and instruments, handed to
    `run_link_action` explicitly (`link_context(guest_service)` builds it)."""

    uow: UnitOfWork
    clock: Clock
    verification: Verification
    instruments: Instruments


__all__ = ["LinkActionContext"]
