"""A real SMTP server (aiosmtpd) on 127.0.0.1, with switchable faults (§11.3)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Recorder:
    """Keeps every accepted message; `reply` (e.g. "451 try later") refuses DATA instead."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.reply: str | None = None
        self.disconnect = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.disconnect:
            server.transport.close()
            return "421 closing"
        if self.reply is not None:
            return self.reply
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()
