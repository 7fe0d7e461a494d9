"""Audit metadata is accepted exactly when every storage can hold it (R8, §9.6).

The service checks a host's metadata once, up front: a mapping with string keys that
`json.dumps` encodes as valid UTF-8 with no NUL (PostgreSQL's JSONB refuses NUL). Flat
mappings of plain values take a shortcut that encodes nothing; these properties pin that the
shortcut and the full rule agree, value for value, including the hard characters (NUL, lone
surrogates, backslashes, control characters).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from magiclink import GuestService, InvalidInput
from magiclink.testing import World

HARD = st.sampled_from(["\x00", "\ud800", "\udfff", "\\", "\\u0000", "\n", "\t", "é", "日"])
TEXT = st.lists(st.one_of(st.text(max_size=3), HARD), max_size=4).map("".join)
PLAIN = st.one_of(TEXT, st.integers(), st.booleans(), st.none())
FLAT = st.dictionaries(TEXT, PLAIN, max_size=4)


def storable(metadata: dict[str, Any]) -> bool:
    """The rule, stated independently of the code: JSON text that is valid UTF-8, no NUL."""
    try:
        text = json.dumps(metadata, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError):
        return False
    return "\\u0000" not in text


def _guests() -> GuestService:
    return World.build().services.guests


@given(metadata=FLAT)
def test_log_access_accepts_flat_metadata_exactly_when_it_is_storable_r8(
    metadata: dict[str, Any],
) -> None:
    """Accepted metadata is stored as given; refused metadata is `InvalidInput`, nothing
    written."""
    guests = _guests()
    if storable(metadata):
        guests.log_access(7, "endpoint", "ACTION", metadata=metadata)
        [entry] = guests.audit_trail(guest_id=7)
        assert dict(entry.metadata) == metadata
    else:
        with pytest.raises(InvalidInput, match="metadata"):
            guests.log_access(7, "endpoint", "ACTION", metadata=metadata)
        assert guests.audit_trail(guest_id=7) == []


@given(metadata=FLAT)
def test_batch_invalidation_metadata_follows_the_same_rule_r5(metadata: dict[str, Any]) -> None:
    """The lifecycle entry point checks its metadata by the same rule (0 tokens: nothing to
    invalidate, so only the check decides)."""
    guests = _guests()
    if storable(metadata):
        assert (
            guests.invalidate_tokens_by_booking_id(1, "manual_revocation", metadata=metadata) == 0
        )
    else:
        with pytest.raises(InvalidInput, match="metadata"):
            guests.invalidate_tokens_by_booking_id(1, "manual_revocation", metadata=metadata)


def test_metadata_that_is_not_flat_still_takes_the_full_rule() -> None:
    """Nested values, floats and non-string keys are checked by encoding them."""
    guests = _guests()
    guests.log_access(7, "e", "A", metadata={"nested": {"list": [1, 2.5, None]}})
    bad_ones: list[Any] = [{"x": float("nan")}, {"x": {"y": "\x00"}}, {1: "key"}, {"x": object()}]
    for bad in bad_ones:
        with pytest.raises(InvalidInput, match="metadata"):
            guests.log_access(7, "e", "A", metadata=bad)
    assert len(guests.audit_trail(guest_id=7)) == 1
