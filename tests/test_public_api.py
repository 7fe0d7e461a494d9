"""The public API is explicit (STYLE 11) and matches SPEC §4."""

from __future__ import annotations

import importlib
from pathlib import Path

import magiclink

SPEC_NAMES = {
    "GuestService",
    "BookingService",
    "RatingService",
    "QualityRepository",
    "Settings",
    "Requester",
    "IssuedToken",
    "VerifiedToken",
    "BookingOutcome",
    "RescheduleOutcome",
    "Guest",
    "Booking",
    "MagicLinkToken",
    "AuditEntry",
    "Rating",
    "Incident",
    "InvalidationReason",
    "BookingStatus",
    "IncidentType",
    "MagicLinkError",
    "InvalidToken",
    "TokenExpiredOrUsed",
    "AccessDenied",
    "RateLimited",
    "BookingNotFound",
    "BookingClosed",
    "DuplicateRating",
    "InvalidInput",
    "StorageError",
}
EXTRA_NAMES = {
    "AuditAction",
    "LinkMessage",
    "RefusalReason",
    "Services",
    "build_services",
    "DeliveryReport",
    "OutboxWorker",
    # Public on purpose (issue 12.4): what hosts need outside a service call.
    "Events",
    "IssuePath",
    "generate_raw_token",
    "hash_token",
    "normalize_email",
    "rerun",
    "run_in_transaction",
}


def test_all_is_pinned() -> None:
    """`magiclink.__all__` is exactly the SPEC §4 names plus the documented extras."""
    assert set(magiclink.__all__) == SPEC_NAMES | EXTRA_NAMES
    assert len(magiclink.__all__) == len(set(magiclink.__all__))
    for name in magiclink.__all__:
        assert getattr(magiclink, name) is not None


def test_port_and_adapter_import_paths() -> None:
    """The import paths of SPEC §4 resolve."""
    memory = importlib.import_module("magiclink.adapters.memory")
    for name in ("InMemoryUnitOfWork", "ManualClock", "InMemoryNotifier", "InMemoryMetrics"):
        assert hasattr(memory, name)
    ports = importlib.import_module("magiclink.ports")
    for name in ("Clock", "UnitOfWork", "Notifier", "Metrics"):
        assert hasattr(ports, name)


def test_every_error_has_code_and_message() -> None:
    """Every error subclasses MagicLinkError, with a stable code and str(error) == message."""
    codes = {
        "InvalidToken": "UNAUTHORIZED",
        "TokenExpiredOrUsed": "UNAUTHORIZED",
        "AccessDenied": "FORBIDDEN",
        "RateLimited": "TOO_MANY_REQUESTS",
        "BookingNotFound": "NOT_FOUND",
        "BookingClosed": "CONFLICT",
        "DuplicateRating": "CONFLICT",
        "InvalidInput": "BAD_REQUEST",
        "StorageError": "INTERNAL",
    }
    for name, code in codes.items():
        error = getattr(magiclink, name)()
        assert isinstance(error, magiclink.MagicLinkError)
        assert error.code == code
        assert str(error) == error.message and error.message
        assert "\n" not in error.message
    assert str(magiclink.TokenExpiredOrUsed()) == "Token expired or used"
    assert str(magiclink.InvalidToken()) == "Invalid token"
    assert str(magiclink.AccessDenied()) == "Access denied"
    assert magiclink.StorageError(transient=True).transient is True


def test_enum_values_are_lowercased_names() -> None:
    """SPEC §2: each member's name is its value upper-cased."""
    for enum in (magiclink.InvalidationReason, magiclink.BookingStatus, magiclink.IncidentType):
        for member in enum:
            assert member.name == member.value.upper()
    reason: str = magiclink.InvalidationReason.BOOKING_CANCELLED  # a StrEnum is a str
    assert reason == "booking_cancelled"


def test_package_ships_py_typed() -> None:
    """mypy users get our annotations."""
    assert (Path(magiclink.__file__).parent / "py.typed").is_file()


def test_importing_magiclink_loads_no_adapter_or_test_tooling() -> None:
    """`import magiclink` stays light: no SQLAlchemy, no pytest, no hypothesis."""
    import subprocess
    import sys

    code = (
        "import sys, magiclink; "
        "print(sorted(m for m in ('sqlalchemy', 'pytest', 'hypothesis', 'magiclink.adapters')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_build_services_wires_one_guest_service() -> None:
    """The composition root: every lifecycle service invalidates through the one guest service
    it was given (R5.1), on the one unit of work, with the settings passed."""
    from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork

    settings = magiclink.Settings(revoke_on_reuse=True)
    services = magiclink.build_services(
        InMemoryUnitOfWork(), notifier=InMemoryNotifier(), settings=settings
    )
    assert services.guests.settings is settings
    for lifecycle in (services.bookings, services.ratings, services.quality):
        assert lifecycle._guests is services.guests
        assert lifecycle._uow is services.guests._uow
