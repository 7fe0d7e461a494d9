"""`AsyncSmtpNotifier`: the same messages over aiosmtplib, for asyncio hosts (§10, §11.1)."""

from __future__ import annotations

import aiosmtplib

from magiclink.adapters.smtp._message import MailDeliveryError, SmtpEndpoint
from magiclink.domain._records import LinkMessage


class AsyncSmtpNotifier(SmtpEndpoint):
    """Mails each link over SMTP from a coroutine; settings (`SmtpEndpoint`) and errors as
    `SmtpNotifier`'s."""

    async def send(self, message: LinkMessage) -> None:
        """Send one message. Raises `MailDeliveryError`."""
        email = self.renderer.render(message, sender=self.sender, reply_to=self.reply_to)
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                start_tls=self._starttls,
                use_tls=self._use_tls,
                tls_context=self._context(),
                username=None if self._login is None else self._login[0],
                password=None if self._login is None else self._login[1],
                timeout=self._timeout,
            )
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
