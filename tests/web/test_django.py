"""§12 the Django view of docs/web.md, run as written with Django's test client."""

from __future__ import annotations

import re
from pathlib import Path

import django
from django.conf import settings

from magiclink import BookingStatus
from tests.web.conftest import SECRET, World

DOC = Path(__file__).resolve().parents[2] / "docs" / "web.md"

if not settings.configured:
    settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"], SECRET_KEY="x" * 32,
                       MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"])  # fmt: skip
    django.setup()

urlpatterns: list[object] = []


def test_12_django_view_of_the_docs_runs_the_journey(world: World) -> None:
    from django.test import Client
    from django.urls import clear_url_caches, re_path

    [snippet] = re.findall(r"## Django.*?```python\n(.*?)```", DOC.read_text(), re.S)
    namespace: dict[str, object] = {
        "__name__": "docs_web",
        "services": world.services,
        "SECRET": SECRET,
    }
    exec(snippet, namespace)
    urlpatterns[:] = [re_path(r"^magic-link(?:/.*)?$", namespace["magic_link"])]
    clear_url_caches()
    client = Client()
    landing = client.get("/magic-link", {"token": world.raw})
    assert landing.status_code == 200 and landing["Cache-Control"] == "no-store"
    assert landing.cookies["magiclink_session"]["httponly"]
    page = client.get("/magic-link").content.decode()
    assert "Cancel session" in page
    form = client.get("/magic-link/cancel").content.decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    assert client.post("/magic-link/cancel", {"reason": "x"}).status_code == 403
    assert world.current().status is BookingStatus.SCHEDULED
    done = client.post("/magic-link/cancel", {"reason": "x", "csrf_token": token})
    assert done.status_code == 200
    assert world.current().status is BookingStatus.CANCELLED
