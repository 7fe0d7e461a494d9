"""`AsyncSmtpNotifier`: the same messages over aiosmtplib, for asyncio hosts (§10, §11.1)."""

from __future__ import annotations

from pathlib import Path

import aiosmtplib
import jinja2

from magiclink.adapters.smtp._message import MailDeliveryError, MailRenderer
from magiclink.domain._records import LinkMessage


class AsyncSmtpNotifier:
    """Mails each link over SMTP from a coroutine; errors as `SmtpNotifier`'s."""

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
    ) -> None:
        self.host, self.port, self.sender, self.reply_to = host, port, sender, reply_to
        self._options = {
            "start_tls": starttls,
            "use_tls": use_tls,
            "username": username,
            "password": password,
            "timeout": timeout,
        }
        self.renderer = MailRenderer(templates)

    async def send(self, message: LinkMessage) -> None:
        """Send one message. Raises `MailDeliveryError`."""
        email = self.renderer.render(message, sender=self.sender, reply_to=self.reply_to)
        try:
            await aiosmtplib.send(email, hostname=self.host, port=self.port, **self._options)  # type: ignore[arg-type]
        except aiosmtplib.SMTPResponseException as error:
            permanent = 500 <= error.code < 600
            raise MailDeliveryError(
                f"Mail server replied {error.code}", transient=not permanent
            ) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise MailDeliveryError(
                f"Mail server failed ({type(error).__name__})", transient=True
            ) from None


__all__ = ["AsyncSmtpNotifier"]
