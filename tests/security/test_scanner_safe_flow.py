"""§5.9 The scanner-safe flow of examples/flask_scanner_safe, driven over HTTP: a GET (what a
mail scanner or a link preview does) changes nothing; only the page's POST spends the link."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask
from flask.testing import FlaskClient

from magiclink import AuditAction, GuestService
from magiclink.adapters.memory import InMemoryUnitOfWork
from tests.security.harness import Link, World

APP = Path(__file__).resolve().parents[2] / "examples" / "flask_scanner_safe" / "app.py"
ADA = "ada@example.com"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flask_scanner_safe", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


create_app: Callable[[GuestService], Flask] = load_example().create_app


@pytest.fixture
def world() -> World:
    return World.over(InMemoryUnitOfWork())


@pytest.fixture
def client(world: World) -> FlaskClient:
    return create_app(world.guests).test_client()


@pytest.fixture
def link(world: World) -> Link:
    return world.book_link(ADA)[1]


def hidden_token(page: str) -> str:
    match = re.search(r'<input type="hidden" name="token" value="([0-9a-f]{64})">', page)
    assert match is not None, page
    return match.group(1)


def test_opening_the_link_renders_a_form_and_changes_nothing(
    world: World, client: FlaskClient, link: Link
) -> None:
    before = world.stored(link)

    scanner = client.get("/magic-link", query_string={"token": link.raw})
    guest = client.get("/magic-link", query_string={"token": link.raw})

    for response in (scanner, guest):
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert hidden_token(page) == link.raw
        assert 'method="post" action="/magic-link"' in page
        assert ADA in page
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
    assert world.stored(link) == before  # still unused, not invalidated
    assert world.guests.verify_token(link.raw).token.used_at is None
    assert world.entries(AuditAction.VERIFY_TOKEN) == []
    assert world.metrics.count("magiclink_verifications_total", operation="consume") == 0


def test_the_form_post_consumes_the_link_exactly_once(
    world: World, client: FlaskClient, link: Link
) -> None:
    page = client.get("/magic-link", query_string={"token": link.raw}).get_data(as_text=True)

    first = client.post("/magic-link", data={"token": hidden_token(page)})
    second = client.post("/magic-link", data={"token": link.raw})

    assert first.status_code == 200
    assert f"Signed in as {ADA}." in first.get_data(as_text=True)
    assert world.stored(link).used_at == world.clock.now()
    assert second.status_code == 401
    assert "Token expired or used" in second.get_data(as_text=True)
    assert world.metrics.count("magiclink_verifications_total", outcome="accepted") == 2
    assert world.reuse_count("consume") == 1


def test_a_reuse_after_consumption_is_audited(
    world: World, client: FlaskClient, link: Link
) -> None:
    client.post("/magic-link", data={"token": link.raw})

    again = client.get("/magic-link", query_string={"token": link.raw})

    assert again.status_code == 401
    assert "Token expired or used" in again.get_data(as_text=True)
    [entry] = world.entries(AuditAction.VERIFY_TOKEN)
    assert entry.success is False
    assert entry.metadata["reason"] == "used"
    assert entry.metadata["token_id"] == link.token_id
    assert world.reuse_count("verify") == 1


@pytest.mark.parametrize("token", ["", "not-a-token", "A" * 64, "0" * 63, "<script>"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_malformed_token_is_401_invalid_token(
    world: World, client: FlaskClient, method: str, token: str
) -> None:
    if method == "GET":
        response = client.get("/magic-link", query_string={"token": token})
    else:
        response = client.post("/magic-link", data={"token": token})

    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "Invalid token" in page
    assert "<script>" not in page
    assert world.metrics.count("magiclink_verifications_total", outcome="invalid") == 1


def test_an_unknown_token_is_401_invalid_token(client: FlaskClient) -> None:
    for response in (
        client.get("/magic-link", query_string={"token": "0" * 64}),
        client.post("/magic-link", data={"token": "0" * 64}),
        client.get("/magic-link"),
    ):
        assert response.status_code == 401
        assert "Invalid token" in response.get_data(as_text=True)


def test_a_blocked_guest_is_403_access_denied(
    world: World, client: FlaskClient, link: Link
) -> None:
    world.guests.block_guest(ADA)

    for response in (
        client.get("/magic-link", query_string={"token": link.raw}),
        client.post("/magic-link", data={"token": link.raw}),
    ):
        assert response.status_code == 403
        assert "Access denied" in response.get_data(as_text=True)
    assert world.stored(link).used_at is None


def test_the_page_escapes_what_it_shows(world: World, client: FlaskClient) -> None:
    email = "<b>ada</b>@example.com"
    _, link = world.book_link(email)

    page = client.get("/magic-link", query_string={"token": link.raw}).get_data(as_text=True)

    assert "<b>" not in page
    assert "&lt;b&gt;ada&lt;/b&gt;@example.com" in page
