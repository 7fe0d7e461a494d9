"""The guest's page as one framework-free flow: a `WebRequest` in, a `WebResponse` out (§12).

Routes, under the path of `Settings.link_base_url` (say `/magic-link`):

| request | does |
|---|---|
| `GET /magic-link?token=…` | verifies only (scanner-safe, §5.9), moves the token into an `HttpOnly`, `SameSite=Strict` cookie and sends the browser on to the clean URL |
| `GET /magic-link` | the booking and the buttons of the actions it allows |
| `GET /magic-link/<action>` | the small form of `cancel`, `reschedule`, `rate` or `report` |
| `POST /magic-link/<action>` | with the CSRF token bound to the cookie: the §8 atomic action |
| `POST /magic-link/new-link` | asks for a fresh link (§9.5: the same answer whatever happens) |

The move to the clean URL is an HTML page that refreshes at once, not a 30x: a link clicked
in webmail is a cross-site navigation, and a browser withholds `SameSite=Strict` cookies from
every request of that navigation, redirects included; the refresh is a same-site navigation
started by our own page, so the cookie goes with it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Final, TypedDict
from urllib.parse import urlsplit

import attrs

from magiclink._bootstrap import Services
from magiclink.domain._enums import BookingStatus
from magiclink.domain._errors import (
    AccessDenied,
    InvalidInput,
    InvalidToken,
    MagicLinkError,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.domain._policy import normalize_email
from magiclink.domain._records import Booking, LinkMessage, Settings, VerifiedToken
from magiclink.ports._notifier import Notifier
from magiclink.web._forms import SUCCESS, parse_command, parse_optional_id
from magiclink.web._http import (
    HTML,
    SECURITY_HEADERS,
    WebRequest,
    WebResponse,
    csrf_token,
    session_cookie,
)
from magiclink.web._views import ACTIONS, INCIDENT_LABELS, Action, describe, render, stylesheet

__all__ = ["COOKIE_NAME", "GuestPage", "PageOptions"]

COOKIE_NAME: Final = "magiclink_session"
_TOKEN: Final = "t."  # cookie value prefixes: a link's raw token, or an anonymous form nonce
_ANONYMOUS: Final = "a."
_ANONYMOUS_AGE: Final = 3600
_MIN_KEY_BYTES: Final = 16
# A refused *link*: unknown, malformed, dead or blocked all get the same page (no oracle).
_LINK_REFUSED: Final = (InvalidToken, TokenExpiredOrUsed, AccessDenied)
_ACTION_STATUS: Final = {"BAD_REQUEST": 400, "CONFLICT": 409, "NOT_FOUND": 409}
_logger = logging.getLogger("magiclink.web")


class PageOptions(TypedDict, total=False):
    """The optional keywords of `GuestPage`, which `create_asgi_app` and `flask_blueprint`
    pass on: see `GuestPage` for each one's meaning and default."""

    notifier: Notifier | None
    mentor_name: Callable[[Booking], str] | None
    timezone: tzinfo
    base_path: str | None


def _mentor_number(booking: Booking) -> str:
    return f"Mentor #{booking.mentor_id}"


class GuestPage:
    """The page behind a magic link; call `handle` from any web framework.

    `secret_key` (at least 16 bytes) signs the CSRF tokens. `notifier` mails fresh links
    (default: the one `services.bookings` mails through). `mentor_name(booking)` says who the
    mentor is (default `Mentor #<id>`); times are shown and read in `timezone` (default UTC).
    `base_path` defaults to the path of `Settings.link_base_url`.
    """

    def __init__(
        self,
        services: Services,
        *,
        secret_key: str | bytes,
        notifier: Notifier | None = None,
        mentor_name: Callable[[Booking], str] | None = None,
        timezone: tzinfo = UTC,
        base_path: str | None = None,
    ) -> None:
        key = secret_key.encode("utf-8") if isinstance(secret_key, str) else secret_key
        if not isinstance(key, bytes) or len(key) < _MIN_KEY_BYTES:
            raise InvalidInput(f"secret_key must be at least {_MIN_KEY_BYTES} bytes")
        self._services = services
        self._key = key
        self._notifier = notifier if notifier is not None else services.bookings.notifier
        self._mentor_name = mentor_name if mentor_name is not None else _mentor_number
        self._zone = timezone
        path = base_path if base_path is not None else urlsplit(self.settings.link_base_url).path
        self.base_path = "/" + path.strip("/")
        self._prefix = self.base_path.rstrip("/")

    @property
    def settings(self) -> Settings:
        """The settings of the guest service (link base URL, TTL)."""
        return self._services.guests.settings

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path this page answers (frameworks register these)."""
        subpaths = [*ACTIONS, "new-link", "static/page.css"]
        return (self.base_path, *(f"{self._prefix}/{name}" for name in subpaths))

    def handle(self, request: WebRequest) -> WebResponse:
        """Answer one request; every answer carries the §12 security headers."""
        head = request.method.upper() == "HEAD"
        method = "GET" if head else request.method.upper()
        try:
            response = self._route(request, method)
        except StorageError:
            _logger.exception("guest page: storage failed")
            response = self._outcome(503, "Please try again", "Something went wrong on our side.")
        return attrs.evolve(response, body=b"") if head else response

    def _route(self, request: WebRequest, method: str) -> WebResponse:
        path = request.path
        if path in {self.base_path, self._prefix + "/"}:
            if method != "GET":
                return self._outcome(405, "Not allowed", "This page only opens.")
            return self._land(request) if "token" in request.query else self._show(request)
        name = path[len(self._prefix) + 1 :] if path.startswith(self._prefix + "/") else ""
        if name == "static/page.css" and method == "GET":
            return self._respond(200, stylesheet(), content_type="text/css; charset=utf-8")
        if name in ACTIONS and method in {"GET", "POST"}:
            action = ACTIONS[name]
            return self._form(request, action) if method == "GET" else self._act(request, action)
        if name == "new-link" and method == "POST":
            return self._new_link(request)
        return self._outcome(404, "Page not found", "There is nothing at this address.")

    # ------------------------------------------------------------------ the journey

    def _land(self, request: WebRequest) -> WebResponse:
        """The mailed URL: verify only, then move the token out of the address bar."""
        raw = request.query.get("token", "")
        try:
            verified = self._services.guests.verify_token(raw)
        except _LINK_REFUSED:
            return self._dead(request)
        booking_id = verified.token.booking_id
        clean = self.base_path + ("" if booking_id is None else f"?booking={booking_id}")
        remaining = verified.token.expires_at - self._services.guests.clock.now()
        cookie = self._cookie(_TOKEN + raw, int(remaining.total_seconds()), request)
        body = render("landing.html", clean_url=clean, **self._common("Opening your session"))
        return self._respond(200, body, cookie=cookie)

    def _show(self, request: WebRequest) -> WebResponse:
        session = self._session(request)
        if session is None:
            return self._dead(request)
        verified, booking = session
        email = verified.guest.normalized_email
        context = self._common("Your session")
        if booking is None:
            return self._respond(200, render("booking.html", booking=None, email=email, **context))
        view = describe(booking, self._mentor_name, self._zone)
        actions = self._allowed(booking)
        body = render("booking.html", booking=view, actions=actions, email=email, **context)
        return self._respond(200, body)

    def _form(self, request: WebRequest, action: Action) -> WebResponse:
        session = self._session(request)
        if session is None:
            return self._dead(request)
        booking = session[1]
        if booking is None or action not in self._allowed(booking):
            return self._refused(409, "This session does not allow that any more.")
        body = render(
            "action.html",
            slug=action.slug,
            booking=describe(booking, self._mentor_name, self._zone),
            csrf=csrf_token(self._key, request.cookies[COOKIE_NAME]),
            zone=str(self._zone),
            incident_types=[(str(kind), label) for kind, label in INCIDENT_LABELS.items()],
            **self._common(action.title),
        )
        return self._respond(200, body)

    def _act(self, request: WebRequest, action: Action) -> WebResponse:
        """A posted form: CSRF first, then the §8 action; a refused action keeps the link."""
        if not self._csrf_ok(request):
            return self._outcome(403, "Form expired", "Please go back, reload and try again.")
        raw = self._raw_token(request)
        if raw is None:
            return self._dead(request)
        try:
            command = parse_command(action.slug, request.form, self._zone)
            command(self._services, raw)
        except _LINK_REFUSED:
            return self._dead(request)
        except StorageError:
            raise
        except MagicLinkError as error:
            return self._refused(_ACTION_STATUS.get(error.code, 400), error.message)
        title, message = SUCCESS[action.slug]
        spent = self._cookie(_ANONYMOUS + secrets.token_urlsafe(24), _ANONYMOUS_AGE, request)
        body = render(
            "outcome.html",
            tone="success",
            message=message,
            details=[],
            back=False,
            **self._common(title),
        )
        return self._respond(200, body, cookie=spent)

    def _new_link(self, request: WebRequest) -> WebResponse:
        """§9.5: one answer whether or not the address has a booking, is blocked or waits."""
        if not self._csrf_ok(request):
            return self._outcome(403, "Form expired", "Please go back, reload and try again.")
        email = request.form.get("email", "")
        booking_id = parse_optional_id(request.form.get("booking"))
        try:
            issued = self._services.guests.request_inbox_link(email, booking_id)
        except InvalidInput:
            return self._dead(request, problem="That does not look like an e-mail address.")
        except StorageError:
            raise
        except MagicLinkError:
            pass  # unknown, another's or closed booking, blocked, rate-limited: same answer
        else:
            self._mail(email, issued.raw, issued.booking_id)
        return self._outcome(
            200, "Check your inbox", "If this address has a booking, a new link is on its way."
        )

    # ------------------------------------------------------------------ helpers

    def _session(self, request: WebRequest) -> tuple[VerifiedToken, Booking | None] | None:
        """The cookie's live link and its booking, or None (no cookie, or a dead link)."""
        raw = self._raw_token(request)
        if raw is None:
            return None
        try:
            verified = self._services.guests.verify_token(raw)
        except _LINK_REFUSED:
            return None
        booking_id = verified.token.booking_id
        bookings = self._services.bookings
        return verified, None if booking_id is None else bookings.get_booking(booking_id)

    def _raw_token(self, request: WebRequest) -> str | None:
        value = request.cookies.get(COOKIE_NAME, "")
        return value[len(_TOKEN) :] if value.startswith(_TOKEN) else None

    def _csrf_ok(self, request: WebRequest) -> bool:
        cookie = request.cookies.get(COOKIE_NAME)
        given = request.form.get("csrf_token", "")
        expected = "" if cookie is None else csrf_token(self._key, cookie)
        return bool(cookie) and hmac.compare_digest(given.encode(), expected.encode())

    def _allowed(self, booking: Booking) -> list[Action]:
        """The actions the booking allows now, in the page's order (§8)."""
        if booking.is_closed:
            return []
        slugs = ["cancel", "reschedule"] if booking.status is BookingStatus.SCHEDULED else []
        if self._services.ratings.get_rating(booking.id) is None:
            slugs.append("rate")
        slugs.append("report")
        return [ACTIONS[slug] for slug in slugs]

    def _mail(self, email: str, raw: str, booking_id: int | None) -> None:
        url = self.settings.link_url(raw)
        message = LinkMessage(
            to=normalize_email(email), url=url, booking_id=booking_id, kind="inbox"
        )
        try:
            self._notifier.send(message)
        except Exception:  # the answer must not depend on delivery (§9.5)
            _logger.exception("guest page: mailing a fresh link failed")

    def _dead(self, request: WebRequest, problem: str | None = None) -> WebResponse:
        """The page of a link that does not work, with a form to ask for a fresh one."""
        nonce = _ANONYMOUS + secrets.token_urlsafe(24)
        body = render(
            "dead.html",
            csrf=csrf_token(self._key, nonce),
            booking_id=parse_optional_id(request.query.get("booking")),
            problem=problem,
            **self._common("This link no longer works"),
        )
        return self._respond(410, body, cookie=self._cookie(nonce, _ANONYMOUS_AGE, request))

    def _refused(self, status: int, message: str) -> WebResponse:
        body = render(
            "outcome.html",
            tone="refusal",
            message=message,
            back=True,
            details=["Nothing was changed, and your link still works."],
            **self._common("That did not work"),
        )
        return self._respond(status, body)

    def _outcome(self, status: int, title: str, message: str) -> WebResponse:
        body = render(
            "outcome.html", tone="", message=message, details=[], back=False, **self._common(title)
        )
        return self._respond(status, body)

    def _common(self, title: str) -> dict[str, str]:
        return {
            "title": title,
            "base": self._prefix,
            "static_url": f"{self._prefix}/static/page.css",
        }

    def _cookie(self, value: str, max_age: int, request: WebRequest) -> str:
        return session_cookie(
            COOKIE_NAME, value, path=self.base_path, max_age=max_age, secure=request.secure
        )

    def _respond(
        self, status: int, body: bytes, *, cookie: str | None = None, content_type: str = HTML
    ) -> WebResponse:
        headers = [*SECURITY_HEADERS, ("Content-Type", content_type)]
        if cookie is not None:
            headers.append(("Set-Cookie", cookie))
        return WebResponse(status=status, headers=tuple(headers), body=body)
