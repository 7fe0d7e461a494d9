"""The framework-free request and response of the guest's page, and what every response carries."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

import attrs

__all__ = [
    "SECURITY_HEADERS",
    "WebRequest",
    "WebResponse",
    "csrf_token",
    "session_cookie",
]

# §12: nothing is cached, nothing leaks through Referer, nothing runs but our own CSS.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Robots-Tag", "noindex, nofollow"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
)
HTML: Final = "text/html; charset=utf-8"


@attrs.frozen
class WebRequest:
    """What the flow needs of an HTTP request; a framework adapter fills it in a few lines.

    `path` is the URL path (no query), `query` and `form` the first value of each field,
    `cookies` the request's cookies, `secure` True when the page is served over https.
    """

    method: str
    path: str
    query: Mapping[str, str] = attrs.field(factory=dict)
    form: Mapping[str, str] = attrs.field(factory=dict)
    cookies: Mapping[str, str] = attrs.field(factory=dict)
    secure: bool = False


@attrs.frozen
class WebResponse:
    """What the flow answers: a status, headers (Set-Cookie included, in order) and a body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def session_cookie(name: str, value: str, *, path: str, max_age: int, secure: bool) -> str:
    """A `Set-Cookie` value the page's scripts cannot read and other sites never send (§12)."""
    flags = f"; Path={path}; Max-Age={max(max_age, 0)}; HttpOnly; SameSite=Strict"
    return f"{name}={value}{flags}{'; Secure' if secure else ''}"


def csrf_token(secret_key: bytes, cookie_value: str) -> str:
    """The CSRF token bound to one session cookie: an HMAC only the server can compute."""
    message = b"magiclink-web-csrf\x00" + cookie_value.encode("utf-8")
    return hmac.new(secret_key, message, hashlib.sha256).hexdigest()
