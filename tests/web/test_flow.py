"""§12 the guest's page over HTTP, through the Starlette app and the Flask blueprint."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from magiclink import BookingStatus
from magiclink.web import create_asgi_app, flask_blueprint
from tests.web.conftest import SECRET, World

HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex, nofollow",
}


def asgi(world: World) -> TestClient:
    return TestClient(create_asgi_app(world.services, secret_key=SECRET),
                      base_url="http://127.0.0.1:8000")  # fmt: skip


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


def assert_secure(response) -> None:  # type: ignore[no-untyped-def]
    for name, value in HEADERS.items():
        assert response.headers[name] == value
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


def test_12_landing_verifies_only_sets_a_strict_cookie_and_leaves_the_url(world: World) -> None:
    client = asgi(world)
    for _ in range(5):  # a mail scanner: GETs and HEADs of the mailed URL
        assert client.get(f"/magic-link?token={world.raw}").status_code == 200
        assert client.head(f"/magic-link?token={world.raw}").status_code == 200
    landing = client.get(f"/magic-link?token={world.raw}")
    assert_secure(landing)
    cookie = landing.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/magic-link" in cookie
    assert "Secure" not in cookie  # http here; see the https test
    assert f'url=/magic-link?booking={world.booking.id}"' in landing.text
    assert world.services.guests.verify_token(world.raw).token.used_at is None
    page = client.get(f"/magic-link?booking={world.booking.id}")
    assert page.status_code == 200
    for label in ("Cancel session", "Reschedule", "Rate this session", "Report a problem"):
        assert f">{label}</button>" in page.text
    assert "Mentor #42" in page.text and "Tuesday 5 March 2030, 14:00 to 14:15 (UTC)" in page.text
    assert "Scheduled" in page.text


def test_12_https_cookie_is_secure(world: World) -> None:
    client = TestClient(create_asgi_app(world.services, secret_key=SECRET),
                        base_url="https://127.0.0.1")  # fmt: skip
    assert "; Secure" in client.get(f"/magic-link?token={world.raw}").headers["set-cookie"]


def test_12_cancel_with_csrf_and_a_wrong_csrf_is_403_changing_nothing(world: World) -> None:
    client = asgi(world)
    client.get(f"/magic-link?token={world.raw}")
    form = client.get("/magic-link/cancel")
    token = csrf(form.text)
    for bad in ({}, {"csrf_token": "0" * 64}):
        refused = client.post("/magic-link/cancel", data={"reason": "x", **bad})
        assert refused.status_code == 403
        assert_secure(refused)
    assert world.current().status is BookingStatus.SCHEDULED
    done = client.post("/magic-link/cancel", data={"reason": "ill", "csrf_token": token})
    assert done.status_code == 200 and "Session cancelled" in done.text
    assert world.current().status is BookingStatus.CANCELLED


def test_12_refused_action_keeps_the_link_usable_s8_2(world: World) -> None:
    client = asgi(world)
    client.get(f"/magic-link?token={world.raw}")
    token = csrf(client.get("/magic-link/report").text)
    too_long = client.post("/magic-link/report",
                           data={"type": "late", "description": "x" * 5001, "csrf_token": token})  # fmt: skip
    assert too_long.status_code == 400 and "your link still works" in too_long.text
    rated = client.post("/magic-link/rate", data={"rating": "5", "csrf_token": token})
    assert rated.status_code == 200
    assert world.services.ratings.get_rating(world.booking.id) is not None


def test_12_unknown_and_dead_links_get_the_same_page_s9_5(world: World) -> None:
    client = asgi(world)
    world.services.guests.consume_token(world.raw)
    pages = [client.get(f"/magic-link?token={t}") for t in (world.raw, "0" * 64, "<script>")]
    bodies = {re.sub(r'value="[^"]+"', "", p.text) for p in pages}
    assert len(bodies) == 1 and {p.status_code for p in pages} == {410}
    assert "<script>" not in pages[2].text
    token = csrf(pages[-1].text)  # bound to the cookie the last page set
    sent = len(world.notifier.sent)
    answers = [client.post("/magic-link/new-link", data={"email": email, "csrf_token": token})
               for email in ("ada@example.com", "nobody@example.org")]  # fmt: skip
    for answer in answers:
        assert "If this address has a booking, a new link is on its way." in answer.text
    assert answers[0].text == answers[1].text
    assert len(world.notifier.sent) == sent + 2


def test_12_the_page_escapes_what_it_shows(world: World) -> None:
    client = TestClient(create_asgi_app(world.services, secret_key=SECRET,
                                        mentor_name=lambda b: "<b>Grace</b>"))  # fmt: skip
    client.get(f"/magic-link?token={world.raw}")
    page = client.get("/magic-link").text
    assert "<b>Grace</b>" not in page and "&lt;b&gt;Grace&lt;/b&gt;" in page


def test_12_flask_blueprint_is_the_same_flow(world: World) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)
    app.register_blueprint(flask_blueprint(world.services, secret_key=SECRET))
    client = app.test_client()
    landing = client.get(f"/magic-link?token={world.raw}")
    assert landing.status_code == 200 and landing.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/magic-link")
    assert "Rate this session" in page.get_data(as_text=True)
    token = csrf(client.get("/magic-link/rate").get_data(as_text=True))
    done = client.post("/magic-link/rate", data={"rating": "4", "csrf_token": token})
    assert done.status_code == 200
    rating = world.services.ratings.get_rating(world.booking.id)
    assert rating is not None and rating.rating == 4


def test_12_fastapi_mounts_the_asgi_app(world: World) -> None:
    from fastapi import FastAPI

    host = FastAPI()
    host.mount("/", create_asgi_app(world.services, secret_key=SECRET))
    client = TestClient(host)
    assert client.get(f"/magic-link?token={world.raw}").status_code == 200
    page = client.get("/magic-link")
    assert page.status_code == 200 and "Report a problem" in page.text
    assert client.get("/magic-link/static/page.css").headers["content-type"].startswith("text/css")
