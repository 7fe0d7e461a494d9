"""magiclink in a FastAPI app, async all the way (SPEC §10): request a link, view a booking
with it, cancel the booking with it.

`create_app(services)` takes the `AsyncServices` of `magiclink.asyncio.build_async_services`;
`main()` runs it on SQLite through aiosqlite (see README.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from magiclink import LinkMessage, MagicLinkError
from magiclink.asyncio import AsyncServices

STATUS_OF_CODE = {
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "TOO_MANY_REQUESTS": 429,
    "INTERNAL": 503,
}


class LinkRequest(BaseModel):
    email: str
    booking_id: int | None = None


class CancelRequest(BaseModel):
    token: str
    reason: str
    booking_id: int | None = None


def create_app(services: AsyncServices) -> FastAPI:
    """The three endpoints over `services`; every magiclink error is answered by its code."""
    app = FastAPI(title="magiclink async example")

    @app.exception_handler(MagicLinkError)
    async def refused(_request: Request, error: MagicLinkError) -> JSONResponse:
        # The message is for people and never holds a raw token (SPEC errors).
        return JSONResponse(
            {"error": error.code, "message": error.message},
            status_code=STATUS_OF_CODE.get(error.code, 500),
        )

    @app.post("/links", status_code=202)
    async def request_link(body: LinkRequest) -> dict[str, bool]:
        """Mail a fresh link to `email` (rate-limited); the link itself is never returned."""
        issued = await services.guests.request_inbox_link(body.email, body.booking_id)
        await services.bookings.notifier.send(
            LinkMessage(
                to=body.email,
                url=services.guests.settings.link_url(issued.raw),
                booking_id=body.booking_id,
                kind="inbox",
                valid_for=services.guests.settings.token_ttl,
            )
        )
        return {"sent": True}

    @app.get("/magic-link")
    async def view(token: str, booking_id: int | None = None) -> dict[str, Any]:
        """Show what the link opens; read-only, so a mail scanner's GET spends nothing."""
        verified = await services.guests.verify_token(token, booking_id=booking_id)
        booking_id = verified.token.booking_id
        booking = None if booking_id is None else await services.bookings.get_booking(booking_id)
        return {
            "guest": verified.guest.normalized_email,
            "booking": None
            if booking is None
            else {
                "id": booking.id,
                "status": booking.status.value,
                "start_time": booking.start_time.isoformat(),
            },
        }

    @app.post("/magic-link/cancel")
    async def cancel(body: CancelRequest) -> dict[str, Any]:
        """Cancel the link's booking: check, act and kill the link in one transaction."""
        booking = await services.bookings.cancel_with_link(
            body.token, body.reason, booking_id=body.booking_id
        )
        return {"id": booking.id, "status": booking.status.value}

    return app


def main() -> None:  # pragma: no cover - run by hand (README.md)
    """Serve the example with uvicorn on a SQLite file (`pip install uvicorn`)."""
    import asyncio

    import uvicorn
    from sqlalchemy.ext.asyncio import create_async_engine

    from magiclink.adapters.sqlalchemy import metadata
    from magiclink.asyncio import (
        AsyncInMemoryNotifier,
        AsyncSqlAlchemyUnitOfWork,
        build_async_services,
    )

    engine = create_async_engine("sqlite+aiosqlite:///magiclink-example.db")

    async def create_tables() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    asyncio.run(create_tables())
    notifier = AsyncInMemoryNotifier()  # a real host mails: an AsyncNotifier over SMTP
    services = build_async_services(AsyncSqlAlchemyUnitOfWork(engine), notifier=notifier)
    uvicorn.run(create_app(services))


if __name__ == "__main__":  # pragma: no cover
    main()
