"""AsyncSmtpNotifier (aiosmtplib) against the same real aiosmtpd server (§11.1, §11.3).

The async twin renders with the same `MailRenderer` and maps failures to the same
`MailDeliveryError`: 4xx and connection trouble transient, 5xx permanent.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket

import pytest

from magiclink import LinkMessage
from magiclink.adapters.smtp import AsyncSmtpNotifier, MailDeliveryError, SmtpNotifier
from tests.mail.conftest import Recorder, free_port

RAW = "b" * 64
MSG = LinkMessage(
    to="g@example.org", url=f"https://x/magic-link?token={RAW}", booking_id=1, kind="booking"
)


def _notifier(port: int, *, timeout: float = 2.0) -> AsyncSmtpNotifier:
    return AsyncSmtpNotifier(
        "127.0.0.1",
        port,
        sender="bookings@example.org",
        reply_to="help@example.org",
        timeout=timeout,
    )


def test_async_mail_is_multipart_with_the_link_in_the_body_s11_1(
    smtp_server: tuple[Recorder, int],
) -> None:
    """§11.1: the awaited send delivers text + HTML, the headers, and the link only in bodies."""
    recorder, port = smtp_server
    asyncio.run(_notifier(port).send(MSG))
    [raw_mail] = recorder.messages
    parsed = email.message_from_bytes(raw_mail, policy=email.policy.default)
    assert (parsed["To"], parsed["From"], parsed["Reply-To"]) == (
        "g@example.org",
        "bookings@example.org",
        "help@example.org",
    )
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert RAW in text and RAW in html
    assert RAW.encode() not in raw_mail.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize(
    ("reply", "transient"),
    [("421 closing", True), ("451 try later", True), ("550 no such user", False)],
)
def test_async_server_replies_become_mail_delivery_errors_s11_3(
    smtp_server: tuple[Recorder, int], reply: str, transient: bool
) -> None:
    """§11.3: the same classification as the sync notifier; the token never in the error."""
    recorder, port = smtp_server
    recorder.reply = reply
    with pytest.raises(MailDeliveryError) as caught:
        asyncio.run(_notifier(port).send(MSG))
    assert caught.value.transient is transient
    assert RAW not in str(caught.value)
    assert recorder.messages == []


def test_async_refused_connection_is_transient_s11_3() -> None:
    with pytest.raises(MailDeliveryError) as caught:
        asyncio.run(_notifier(free_port()).send(MSG))
    assert caught.value.transient


def test_async_timeout_is_transient_s11_3() -> None:
    """A server that accepts and never greets: aiosmtplib's timeout is a transient error."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(MailDeliveryError) as caught:
            asyncio.run(_notifier(port, timeout=0.3).send(MSG))
        assert caught.value.transient


@pytest.mark.parametrize("notifier", [SmtpNotifier, AsyncSmtpNotifier])
def test_both_notifiers_refuse_starttls_with_implicit_tls(
    notifier: type[SmtpNotifier] | type[AsyncSmtpNotifier],
) -> None:
    """One set of settings (`SmtpEndpoint`): STARTTLS on a TLS connection is a mistake,
    refused when the notifier is built, by the async twin as by `SmtpNotifier`."""
    with pytest.raises(ValueError, match="starttls or use_tls"):
        notifier("127.0.0.1", 465, sender="bookings@example.org", starttls=True, use_tls=True)
