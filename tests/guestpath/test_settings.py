"""§9.8 `Settings.reuse_grace` is checked when the settings are built (§9.6: `InvalidInput`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from magiclink import InvalidInput, Settings


def test_the_default_grace_is_ten_seconds() -> None:
    assert Settings().reuse_grace == timedelta(seconds=10)


@pytest.mark.parametrize("value", [timedelta(0), timedelta(microseconds=1), timedelta(hours=2)])
def test_a_grace_of_zero_or_more_is_kept(value: timedelta) -> None:
    assert Settings(reuse_grace=value).reuse_grace == value


@pytest.mark.parametrize("value", [timedelta(microseconds=-1), timedelta(days=-1), 10, None, "10s"])
def test_a_negative_or_non_timedelta_grace_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="reuse_grace"):
        Settings(reuse_grace=value)  # type: ignore[arg-type]
