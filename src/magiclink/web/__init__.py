"""The guest's page behind a magic link (SPEC §12), for any Python web framework.

Install `magiclink[web]`. One framework-free flow, `GuestPage.handle(WebRequest) -> WebResponse`,
does the whole journey; thin shells mount it:

* `create_asgi_app(services, *, secret_key, ...)` — a Starlette app (`fastapi_app.mount("/",
  create_asgi_app(...))`, or route it under any prefix: it answers the path of
  `Settings.link_base_url`);
* `flask_blueprint(services, *, secret_key, ...)` — `flask_app.register_blueprint(...)`;
* Django: a view of a few lines around `GuestPage` (see docs/web.md, run by the tests).

`services` is `magiclink.build_services(...)`. Options (keyword-only) of all three
(`PageOptions`, besides `secret_key`):
`secret_key` (≥ 16 bytes, signs the CSRF tokens), `notifier` (mails fresh links; default the
booking service's), `mentor_name(booking) -> str`, `timezone` (a `tzinfo`, default UTC),
`base_path` (default: the path of `Settings.link_base_url`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

from magiclink._bootstrap import Services
from magiclink.web._flow import COOKIE_NAME, GuestPage, PageOptions
from magiclink.web._http import WebRequest, WebResponse

if TYPE_CHECKING:
    from flask import Blueprint
    from starlette.applications import Starlette

__all__ = [
    "COOKIE_NAME",
    "GuestPage",
    "PageOptions",
    "WebRequest",
    "WebResponse",
    "create_asgi_app",
    "flask_blueprint",
]


def create_asgi_app(
    services: Services, *, secret_key: str | bytes, **options: Unpack[PageOptions]
) -> Starlette:
    """The guest's page as a Starlette application (mountable in FastAPI)."""
    from magiclink.web._asgi import asgi_app

    return asgi_app(GuestPage(services, secret_key=secret_key, **options))


def flask_blueprint(
    services: Services,
    *,
    secret_key: str | bytes,
    name: str = "magiclink_web",
    **options: Unpack[PageOptions],
) -> Blueprint:
    """The guest's page as a Flask blueprint (Flask itself is the host's dependency)."""
    from magiclink.web._flask import blueprint

    return blueprint(GuestPage(services, secret_key=secret_key, **options), name)
