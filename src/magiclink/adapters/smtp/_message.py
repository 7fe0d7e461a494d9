"""The SMTP notifier and the renderer of its messages (see the package docstring)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Final

import jinja2

from magiclink.domain._errors import MagicLinkError
from magiclink.domain._observability import redact
from magiclink.domain._records import LinkMessage
from magiclink.ports._notifier import Notifier

DEFAULT_SUBJECTS: Final[Mapping[str, str]] = {
    "booking": "Your session link",
    "reschedule": "Your session has moved: your new link",
}
_PURPOSES: Final[Mapping[str, str]] = {
    "booking": "Your session is booked. This link opens it.",
    "reschedule": "Your session was rescheduled. Earlier links no longer work; this one does.",
}
_DEFAULT_PURPOSE: Final = "This link opens your session."
_DEFAULT_VALID_FOR: Final = timedelta(minutes=15)
TEXT_TEMPLATE: Final = "link.txt.j2"
HTML_TEMPLATE: Final = "link.html.j2"


class MailDeliveryError(MagicLinkError):
    """The mail server refused or could not take the message. `transient`: worth retrying."""

    code = "INTERNAL"

    def __init__(self, message: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def time_in_words(when: datetime | None) -> str:
    """`Tuesday 3 March 2026 at 14:30 UTC`; a stable, locale-free wording."""
    if when is None:
        return "see your booking"
    utc = when.astimezone(UTC)
    return f"{utc:%A} {utc.day} {utc:%B %Y} at {utc:%H:%M} UTC"


class MailRenderer:
    """Renders a `LinkMessage` into a multipart/alternative `EmailMessage`.

    `templates` is a `jinja2.BaseLoader`, a folder (str or Path) with `link.txt.j2` and
    `link.html.j2`, or None for the shipped templates. HTML is autoescaped; text is not.
    """

    def __init__(
        self,
        templates: jinja2.BaseLoader | str | Path | None = None,
        *,
        subjects: Mapping[str, str] | None = None,
    ) -> None:
        loader: jinja2.BaseLoader
        if templates is None:
            loader = jinja2.PackageLoader("magiclink.adapters.smtp", "templates")
        elif isinstance(templates, jinja2.BaseLoader):
            loader = templates
        else:
            loader = jinja2.FileSystemLoader(str(templates))
        self._html = jinja2.Environment(
            loader=loader, autoescape=True, undefined=jinja2.StrictUndefined
        )
        self._text = jinja2.Environment(
            loader=loader, autoescape=False, undefined=jinja2.StrictUndefined
        )
        self._subjects = dict(DEFAULT_SUBJECTS if subjects is None else subjects)

    def render(
        self, message: LinkMessage, *, sender: str, reply_to: str | None = None
    ) -> EmailMessage:
        """The e-mail for `message`: headers, a text part and an HTML part."""
        valid_for = message.valid_for if message.valid_for is not None else _DEFAULT_VALID_FOR
        subject = self._subjects.get(message.kind, "Your session link")
        context = {
            "subject": subject,
            "purpose": _PURPOSES.get(message.kind, _DEFAULT_PURPOSE),
            "kind": message.kind,
            "when": time_in_words(message.starts_at),
            "minutes": max(1, int(valid_for.total_seconds() // 60)),
            "url": message.url,
            "booking_id": message.booking_id,
        }
        email = EmailMessage()
        email["Subject"] = subject
        email["From"] = sender
        email["To"] = message.to
        if reply_to is not None:
            email["Reply-To"] = reply_to
        email["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        email.set_content(self._text.get_template(TEXT_TEMPLATE).render(context))
        email.add_alternative(
            self._html.get_template(HTML_TEMPLATE).render(context), subtype="html"
        )
        return email


class SmtpEndpoint:
    """Where and how a notifier reaches its mail server, and the renderer of its messages:
    the settings `SmtpNotifier` and `AsyncSmtpNotifier` share.

    `starttls` upgrades a plain connection (port 587); `use_tls` speaks TLS from the start
    (port 465); both use `ssl.create_default_context()` unless `ssl_context` is given.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        starttls: bool = False,
        use_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        templates: jinja2.BaseLoader | str | Path | None = None,
        reply_to: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if starttls and use_tls:
            raise ValueError("choose starttls or use_tls, not both")
        self.host, self.port, self.sender, self.reply_to = host, port, sender, reply_to
        self._starttls, self._use_tls = starttls, use_tls
        self._login = None if username is None else (username, password or "")
        self._timeout = timeout
        self._ssl = ssl_context
        self.renderer = MailRenderer(templates)

    def _context(self) -> ssl.SSLContext:
        return self._ssl if self._ssl is not None else ssl.create_default_context()


class SmtpNotifier(SmtpEndpoint, Notifier):
    """Mails each link over SMTP; one connection per message (see the package docstring and
    `SmtpEndpoint` for the settings)."""

    def send(self, message: LinkMessage) -> None:
        """Send one message. Raises `MailDeliveryError` (never an smtplib or socket error)."""
        email = self.renderer.render(message, sender=self.sender, reply_to=self.reply_to)
        try:
            with self._connect() as smtp:
                if self._starttls:
                    smtp.starttls(context=self._context())
                if self._login is not None:
                    smtp.login(*self._login)
                smtp.send_message(email)
        except (smtplib.SMTPException, OSError) as error:
            raise translate_smtp_error(error) from None

    def _connect(self) -> smtplib.SMTP:
        if self._use_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self._timeout, context=self._context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self._timeout)


def _code_of(error: BaseException) -> int | None:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return max(codes) if codes else None
    code = getattr(error, "smtp_code", None)
    return code if isinstance(code, int) else None


def translate_smtp_error(error: BaseException) -> MailDeliveryError:
    """The library's error for an smtplib/socket failure: 5xx permanent, anything else transient."""
    code = _code_of(error)
    if isinstance(error, (socket.timeout, TimeoutError)) or "timed out" in str(error):
        what = "timed out"
    elif isinstance(error, ConnectionRefusedError):
        what = "refused the connection"
    elif isinstance(error, smtplib.SMTPServerDisconnected):
        what = "disconnected"
    elif code is not None:
        what = f"replied {code}"
    else:
        what = f"failed ({type(error).__name__})"
    permanent = code is not None and 500 <= code < 600
    return MailDeliveryError(redact(f"Mail server {what}"), transient=not permanent)


__all__ = [
    "DEFAULT_SUBJECTS",
    "MailDeliveryError",
    "MailRenderer",
    "SmtpEndpoint",
    "SmtpNotifier",
    "time_in_words",
    "translate_smtp_error",
]
