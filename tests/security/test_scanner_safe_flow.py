"""§5.9 The scanner-safe flow of examples/flask_scanner_safe (now a use of the §12 blueprint),
driven over HTTP: GETs of the mailed URL (what a mail scanner or a link preview does) change
nothing; only the page's CSRF-protected POST acts with the link."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from flask import Flask

from magiclink import BookingStatus, Services
from tests.web.conftest import SECRET, make_world

APP = Path(__file__).resolve().parents[2] / "examples" / "flask_scanner_safe" / "app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flask_scanner_safe", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


create_app: Callable[[Services, str], Flask] = load_example().create_app


def test_5_9_scanner_gets_change_nothing_then_the_guest_acts() -> None:
    world = make_world()
    client = create_app(world.services, SECRET).test_client()
    for _ in range(5):
        assert client.get(f"/magic-link?token={world.raw}").status_code == 200
        assert client.head(f"/magic-link?token={world.raw}").status_code == 200
    assert world.services.guests.verify_token(world.raw).token.used_at is None
    form = client.get("/magic-link/cancel").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert match is not None, form
    assert client.post("/magic-link/cancel", data={"reason": "ill"}).status_code == 403
    assert world.current().status is BookingStatus.SCHEDULED
    done = client.post("/magic-link/cancel", data={"reason": "ill", "csrf_token": match.group(1)})
    assert done.status_code == 200
    assert world.current().status is BookingStatus.CANCELLED
