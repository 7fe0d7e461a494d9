"""§9.6: `Settings` are checked when built, with `InvalidInput`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from magiclink import InvalidInput, Settings


@pytest.mark.parametrize(
    "ttl",
    [
        timedelta(0),
        timedelta(seconds=-1),
        timedelta(hours=24, microseconds=1),
        timedelta(days=365),
        900,
    ],
)
def test_s9_6_token_ttl_outside_zero_to_24h_is_refused(ttl: object) -> None:
    with pytest.raises(InvalidInput, match="token_ttl"):
        Settings(token_ttl=ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ttl", [timedelta(microseconds=1), timedelta(minutes=15), timedelta(hours=24)]
)
def test_s9_6_token_ttl_bounds_are_accepted(ttl: timedelta) -> None:
    assert Settings(token_ttl=ttl).token_ttl == ttl


@pytest.mark.parametrize(
    "interval", [timedelta(seconds=-1), timedelta(days=1, microseconds=1), timedelta(days=30), 60]
)
def test_s9_6_request_interval_outside_zero_to_a_day_is_refused(interval: object) -> None:
    with pytest.raises(InvalidInput, match="request_interval"):
        Settings(request_interval=interval)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [timedelta(0), timedelta(seconds=60), timedelta(days=1)])
def test_s9_6_request_interval_bounds_are_accepted(interval: timedelta) -> None:
    assert Settings(request_interval=interval).request_interval == interval


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://app.example/link",
        "//app.example/link",
        "/magic-link",
        "app.example/link",
        "",
        "http://app.example/link",
        "http://localhost.evil.com/link",
        "http://127.0.0.2/link",
        "https://user:pass@app.example/link",
        "https://user@app.example/link",
        "https://app.example/link#frag",
        "https://app.example/link#",
        "https://app.example/link?token=x",
        "https://app.example/link?a=1&token=",
        "https://app.example/li nk",
        "https://app.example/link\n",
        "https://app.example:99999/link",
        "https:///link",
        42,
    ],
)
def test_s9_6_bad_link_base_urls_are_refused(url: object) -> None:
    with pytest.raises(InvalidInput, match="link_base_url"):
        Settings(link_base_url=url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example/magic-link",
        "HTTPS://app.example/v?lang=fr",
        "https://app.example:8443/v?tokens=1",
        "http://localhost:8000/magic-link",
        "http://127.0.0.1:8000/magic-link",
        "http://[::1]:8000/magic-link",
    ],
)
def test_s9_6_good_link_base_urls_are_accepted(url: str) -> None:
    assert Settings(link_base_url=url).link_url("abc").endswith("token=abc")


def test_s9_6_defaults_are_valid() -> None:
    settings = Settings()
    assert settings.token_ttl == timedelta(minutes=15)
    assert settings.link_base_url == "http://localhost:8000/magic-link"
