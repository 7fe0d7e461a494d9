"""§12 the whole journey in a real headless Chromium (Debian's chromium + chromium-driver),
against the Flask blueprint on a real server thread (werkzeug) on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from magiclink import BookingStatus
from magiclink.web import flask_blueprint
from tests.web.conftest import SECRET, World, make_world

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "guest-page.png"


def _browser_missing() -> str | None:
    for path in (CHROMIUM, DRIVER):
        if shutil.which(path) is None:
            return f"{path} is missing (run .ci/install-browser)"
    return None


class Quiet(WSGIRequestHandler):
    def log_request(self, *args: object) -> None:  # the access log would print raw tokens
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser is unavailable: {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=900,760"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def served(browser: object) -> Iterator[tuple[World, str]]:
    holder: dict[str, Flask] = {}

    def late_bound(environ, start_response):  # type: ignore[no-untyped-def]
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, late_bound, threaded=True, request_handler=Quiet)
    origin = f"http://127.0.0.1:{server.server_port}"
    world = make_world(f"{origin}/magic-link")
    app = Flask(__name__)
    app.register_blueprint(flask_blueprint(world.services, secret_key=SECRET))

    @app.get("/mail")
    def mail() -> str:  # a webmail on another site (localhost is not 127.0.0.1)
        return f'<a id="open" href="{world.link()}">Open your booking</a>'

    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    browser.delete_all_cookies()  # type: ignore[attr-defined]
    yield world, origin
    server.shutdown()


def open_from_mail(driver, origin: str) -> None:  # type: ignore[no-untyped-def]
    """Click the link in a page of another site, as in webmail: a cross-site navigation."""
    driver.get(origin.replace("127.0.0.1", "localhost") + "/mail")
    driver.find_element("id", "open").click()
    driver.find_element("css selector", ".booking")


def wait_for(driver, text: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda d: text in d.page_source)


def act(driver, label: str) -> None:  # type: ignore[no-untyped-def]
    driver.find_element("xpath", f"//button[normalize-space()='{label}']").click()


def test_12_scanner_prefetch_then_cancel_and_the_address_bar_is_clean(browser, served) -> None:  # type: ignore[no-untyped-def]
    world, origin = served
    import httpx

    for _ in range(5):  # Safe Links / previews: GET and HEAD, no cookies kept
        httpx.get(world.link())
        httpx.head(world.link())
    open_from_mail(browser, origin)
    assert "token" not in browser.current_url
    assert browser.current_url == f"{origin}/magic-link?booking={world.booking.id}"
    wait_for(browser, "Mentor #42")
    browser.save_screenshot(str(SCREENSHOT))
    act(browser, "Cancel session")
    browser.find_element("id", "reason").send_keys("Something came up")
    act(browser, "Confirm cancellation")
    wait_for(browser, "Your session is cancelled")
    assert world.current().status is BookingStatus.CANCELLED


def test_12_reschedule_journey(browser, served) -> None:  # type: ignore[no-untyped-def]
    world, origin = served
    open_from_mail(browser, origin)
    act(browser, "Reschedule")
    field = browser.find_element("id", "new_start")
    browser.execute_script("arguments[0].value = '2030-03-07T09:30'", field)
    act(browser, "Move the session")
    wait_for(browser, "A new link for it is on its way")
    assert world.current().start_time.isoformat() == "2030-03-07T09:30:00+00:00"


def test_12_rate_journey(browser, served) -> None:  # type: ignore[no-untyped-def]
    world, origin = served
    open_from_mail(browser, origin)
    act(browser, "Rate this session")
    browser.find_element("css selector", "input[name=rating][value='4']").click()
    browser.find_element("id", "feedback").send_keys("Very helpful <3")
    act(browser, "Send rating")
    wait_for(browser, "Your rating is saved")
    rating = world.services.ratings.get_rating(world.booking.id)
    assert rating is not None and (rating.rating, rating.feedback) == (4, "Very helpful <3")


def test_12_refused_report_keeps_the_link_then_report_works(browser, served) -> None:  # type: ignore[no-untyped-def]
    world, origin = served
    open_from_mail(browser, origin)
    act(browser, "Report a problem")
    area = browser.find_element("id", "description")
    browser.execute_script("arguments[0].value = 'x'.repeat(5001)", area)
    act(browser, "Send report")
    wait_for(browser, "your link still works")  # §8.2
    browser.find_element("link text", "Back to the session").click()
    act(browser, "Report a problem")
    browser.find_element("id", "description").send_keys("Mentor was 20 minutes late")
    act(browser, "Send report")
    wait_for(browser, "Report received")
    assert world.services.guests.tokens_for_booking(world.booking.id)[0].invalidated
