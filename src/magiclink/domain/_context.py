"""What the guest-link collaborators share: the unit of work, the clock, the settings and
the instruments of one `GuestService`."""

from __future__ import annotations

import attrs

from magiclink.domain._instruments import Instruments
from magiclink.domain._records import Settings
from magiclink.ports._clock import Clock
from magiclink.ports._unit_of_work import UnitOfWork


@attrs.define
class GuestContext:
    """One service's configuration, shared (not copied) by its collaborators, so a change
    of `GuestService.settings` is seen by all of them."""

    uow: UnitOfWork
    clock: Clock
    settings: Settings
    instruments: Instruments


__all__ = ["GuestContext"]
