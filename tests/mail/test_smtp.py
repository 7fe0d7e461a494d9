"""SmtpNotifier against a real aiosmtpd server on 127.0.0.1 (§11.1, §11.3)."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest

from magiclink import LinkMessage, Requester, Settings, build_services
from magiclink.adapters.memory import InMemoryUnitOfWork, ManualClock
from magiclink.adapters.smtp import MailDeliveryError, SmtpNotifier
from tests.mail.conftest import Recorder, free_port

START = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
RAW = re.compile(r"token=([0-9a-f]{64})")


def _notifier(port: int, **kw: object) -> SmtpNotifier:
    return SmtpNotifier(
        "127.0.0.1",
        port,
        sender="bookings@example.org",
        reply_to="help@example.org",
        timeout=2.0,
        **kw,  # type: ignore[arg-type]
    )


def test_booking_mail_is_multipart_and_its_link_verifies_s11_1(
    smtp_server: tuple[Recorder, int],
) -> None:
    """§11.1: text + HTML alternatives, headers, time in words, TTL, single use; the link verifies."""
    recorder, port = smtp_server
    clock = ManualClock(START - timedelta(days=1))
    services = build_services(InMemoryUnitOfWork(), notifier=_notifier(port), clock=clock)
    outcome = services.bookings.book_session(7, "Guest@Example.org", START)
    assert outcome.link_sent
    [raw_mail] = recorder.messages
    parsed = email.message_from_bytes(raw_mail, policy=email.policy.default)
    assert parsed["To"] == "guest@example.org"
    assert parsed["From"] == "bookings@example.org"
    assert parsed["Reply-To"] == "help@example.org"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert "Tuesday 3 March 2026 at 14:30 UTC" in part
        assert "expires in 15 minutes" in part
        assert "used once" in part
        assert "booked" in part
    [token] = set(RAW.findall(text))
    assert token in html
    headers = raw_mail.split(b"\r\n\r\n", 1)[0]
    assert token.encode() not in headers
    verified = services.guests.verify_token(token)
    assert verified.token.booking_id == outcome.booking.id


def test_reschedule_mail_says_what_it_is_for_s11_1(smtp_server: tuple[Recorder, int]) -> None:
    recorder, port = smtp_server
    services = build_services(
        InMemoryUnitOfWork(), notifier=_notifier(port), clock=ManualClock(START - timedelta(days=1))
    )
    booking = services.bookings.book_session(7, "g@example.org", START).booking
    services.bookings.reschedule_session(booking.id, START + timedelta(days=1), Requester.system())
    parsed = email.message_from_bytes(recorder.messages[-1], policy=email.policy.default)
    assert "rescheduled" in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Wednesday 4 March 2026" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_html_is_autoescaped_and_host_templates_override(
    tmp_path: object, smtp_server: tuple[Recorder, int]
) -> None:
    """§11.1: a host's folder replaces the shipped templates; HTML output is escaped."""
    import pathlib

    folder = pathlib.Path(str(tmp_path))
    (folder / "link.txt.j2").write_text("Custom {{ url }}")
    (folder / "link.html.j2").write_text("<p>{{ kind }}</p><a href='{{ url }}'>x</a>")
    recorder, port = smtp_server
    _notifier(port, templates=folder).send(
        LinkMessage(to="g@example.org", url="https://x/?token=a&b=<c>", booking_id=1, kind="<b>")
    )
    parsed = email.message_from_bytes(recorder.messages[0], policy=email.policy.default)
    assert parsed.get_body(("plain",)).get_content().startswith("Custom https://x/?token=a&b=<c>")  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;b&gt;" in html and "&amp;b=&lt;c&gt;" in html


MSG = LinkMessage(
    to="g@example.org", url="https://x/?token=" + "a" * 64, booking_id=1, kind="booking"
)


@pytest.mark.parametrize(
    ("reply", "transient"),
    [("421 closing", True), ("451 try later", True), ("550 no such user", False)],
)
def test_server_replies_become_mail_delivery_errors_s11_3(
    smtp_server: tuple[Recorder, int], reply: str, transient: bool
) -> None:
    """§11.3: 4xx transient, 5xx permanent; never an smtplib error, never the token."""
    recorder, port = smtp_server
    recorder.reply = reply
    with pytest.raises(MailDeliveryError) as caught:
        _notifier(port).send(MSG)
    assert caught.value.transient is transient
    assert "a" * 64 not in str(caught.value)


def test_refused_connection_is_transient_s11_3() -> None:
    with pytest.raises(MailDeliveryError) as caught:
        _notifier(free_port()).send(MSG)
    assert caught.value.transient and "refused" in str(caught.value)


def test_disconnect_during_data_is_transient_s11_3(smtp_server: tuple[Recorder, int]) -> None:
    recorder, port = smtp_server
    recorder.disconnect = True
    with pytest.raises(MailDeliveryError) as caught:
        _notifier(port).send(MSG)
    assert caught.value.transient
    assert recorder.messages == []


def test_timeout_is_transient_s11_3() -> None:
    """A server that accepts the connection and never greets: the timeout is a transient error."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        held: list[socket.socket] = []
        thread = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
        thread.start()
        with pytest.raises(MailDeliveryError) as caught:
            SmtpNotifier("127.0.0.1", port, sender="b@example.org", timeout=0.3).send(MSG)
        assert caught.value.transient and "timed out" in str(caught.value)
        for conn in held:
            conn.close()


def test_failed_send_is_r9_booking_stands(smtp_server: tuple[Recorder, int]) -> None:
    """R9: a refused mail after booking is logged and counted; the booking is stored."""
    recorder, port = smtp_server
    recorder.reply = "451 later"
    services = build_services(InMemoryUnitOfWork(), notifier=_notifier(port), settings=Settings())
    outcome = services.bookings.book_session(7, "g@example.org", START)
    assert not outcome.link_sent
    assert services.guests.tokens_for_booking(outcome.booking.id)
