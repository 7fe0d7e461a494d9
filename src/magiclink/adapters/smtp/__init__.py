"""The `Notifier` over SMTP (SPEC §11.1): stdlib `smtplib` and `email.message`, Jinja2 templates.

```
notifier = SmtpNotifier("smtp.example.org", 587, sender="bookings@example.org",
                        starttls=True, username="bookings", password="...")
```

Each message is `multipart/alternative` (text, then HTML) rendered from the templates shipped
in this package (`link.txt.j2`, `link.html.j2`, autoescaped); a host overrides them with its
own `jinja2` loader or a folder holding files of the same names. The raw token appears only
in the link inside the body: never in a header, a log line or an error message.

Failures become `MailDeliveryError` (a `MagicLinkError`), with `transient` true when trying
again later may succeed (refused connection, timeout, disconnect, a 4xx reply) and false for
a permanent refusal (a 5xx reply). `BookingService` treats any failure as R9 (logged,
counted, the booking stands); the outbox worker (§11.2) retries the transient ones.

`AsyncSmtpNotifier` (aiosmtplib) is the same message for asyncio hosts, imported lazily.
"""

from typing import TYPE_CHECKING

from magiclink.adapters.smtp._message import (
    DEFAULT_SUBJECTS,
    MailDeliveryError,
    MailRenderer,
    SmtpNotifier,
)

if TYPE_CHECKING:  # imported lazily at run time: aiosmtplib is in the asyncio extra only
    from magiclink.adapters.smtp._async import AsyncSmtpNotifier

__all__ = [
    "DEFAULT_SUBJECTS",
    "AsyncSmtpNotifier",
    "MailDeliveryError",
    "MailRenderer",
    "SmtpNotifier",
]


def __getattr__(name: str) -> object:
    if name == "AsyncSmtpNotifier":
        from magiclink.adapters.smtp import _async

        return _async.AsyncSmtpNotifier
    raise AttributeError(name)
