"""`make demo-web`: the guest's page on the demo database at http://127.0.0.1:8000."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import create_engine

from magiclink import Settings, build_services
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, create_schema
from magiclink.domain._records import LinkMessage
from magiclink.ports._notifier import Notifier
from magiclink.web import flask_blueprint

__all__ = ["main"]


class PrintingNotifier(Notifier):
    """Prints each link instead of mailing it (the demo's inbox is the terminal)."""

    def send(self, message: LinkMessage) -> None:
        """Print the message."""
        print(f"\n  mail to {message.to} ({message.kind}):\n  {message.url}\n", flush=True)


def main() -> None:
    """Book one session on magiclink-demo.db, print its live link, serve the page."""
    engine = create_engine("sqlite:///magiclink-demo.db")
    create_schema(engine)
    services = build_services(
        SqlAlchemyUnitOfWork(engine),
        notifier=PrintingNotifier(),
        settings=Settings(link_base_url="http://127.0.0.1:8000/magic-link"),
    )
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    print("Open this link in a browser (valid 15 minutes):")
    services.bookings.book_session(7, "ada@example.com", start, timedelta(minutes=30))
    app = Flask("magiclink-demo-web")
    app.register_blueprint(flask_blueprint(services, secret_key=secrets.token_hex(32)))
    app.run(host="127.0.0.1", port=8000)


if __name__ == "__main__":
    main()
