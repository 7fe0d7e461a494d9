"""The narrated lifecycle of `magiclink demo`."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from rich.table import Table

from magiclink.adapters.memory import InMemoryMetrics
from magiclink.cli._output import audit_table, format_when
from magiclink.cli._runtime import Runtime
from magiclink.domain._errors import MagicLinkError
from magiclink.domain._records import Requester
from magiclink.ports._metrics import MetricNames

__all__ = ["run_demo"]


def _raw_of(url: str) -> str:
    return url.rsplit("token=", 1)[1]


def run_demo(rt: Runtime, console: Console) -> None:
    """The narrated lifecycle (see `magiclink demo --help`)."""
    console.print(f"[bold]magiclink demo[/bold] on {rt.url}")
    demo = _Demo(rt, console)
    booking_id = demo.ada_books_and_moves()
    demo.ada_rates(booking_id)
    demo.the_others()
    demo.say(f"The audit trail of Ada's booking {booking_id}")
    console.print(audit_table(rt.guests.audit_trail(booking_id=booking_id), ""))
    demo.say("Metrics")
    _print_metrics(console, rt.metrics)


class _Demo:
    """The demo's steps on one runtime, numbered as they are told."""

    def __init__(self, rt: Runtime, console: Console) -> None:
        self.rt, self.console, self.services = rt, console, rt.services
        self.mentor = Requester(user_id=42)
        self.tomorrow = (rt.guests.clock.now() + timedelta(days=1)).replace(
            hour=10, minute=0, second=0, microsecond=0
        )
        self.step = iter(range(1, 100))

    def say(self, title: str) -> None:
        self.console.print(f"\n[bold]{next(self.step)}. {title}[/bold]")

    def last_link(self) -> str:
        return self.rt.notifier.sent[-1].url

    def check(self, label: str, raw: str) -> None:
        try:
            verified = self.services.guests.verify_token(raw)
        except MagicLinkError as refused:
            self.console.print(
                f"   {label}: [red]refused[/red] - {refused.message} ({refused.code})"
            )
        else:
            self.console.print(
                f"   {label}: [green]accepted[/green] - token {verified.token.id}"
                f" of {verified.guest.normalized_email}"
            )

    def ada_books_and_moves(self) -> int:
        bookings, console = self.services.bookings, self.console
        self.say("Ada books a session with mentor 42; her first link is mailed")
        booking = bookings.book_session(
            42, "ada@example.com", self.tomorrow, timedelta(minutes=30)
        ).booking
        first_link = self.last_link()
        console.print(
            f"   booking {booking.id} (uid {booking.uid}) at {format_when(booking.start_time)} UTC"
        )
        console.print(f"   mailed to {self.rt.notifier.sent[-1].to}: {first_link}")
        self.say("Ada opens the link (verify: changes nothing, safe for mail scanners)")
        self.check("first link", _raw_of(first_link))
        self.say("The mentor moves the session by a day (reschedule)")
        moved = bookings.reschedule_session(
            booking.id, self.tomorrow + timedelta(days=1), self.mentor
        )
        console.print(
            f"   now at {format_when(moved.booking.start_time)} UTC, revision {moved.booking.revision};"
            f" new link issued: {moved.link_issued}, mailed: {moved.link_sent}"
        )
        self.check("old link (stale)", _raw_of(first_link))
        self.check("new link", _raw_of(self.last_link()))
        return booking.id

    def ada_rates(self, booking_id: int) -> None:
        guests, ratings = self.services.guests, self.services.ratings
        link = self.last_link()
        self.say("The session takes place and is marked complete (links stay valid to rate)")
        self.services.bookings.mark_session_complete(booking_id)
        self.check("new link", _raw_of(link))
        self.say("Ada rates with her link, but her feedback is too long: refused, nothing written")
        try:
            ratings.rate_with_link(_raw_of(link), 5, "x" * 2_001)
        except MagicLinkError as refused:
            self.console.print(f"   [red]refused[/red] - {refused.message} ({refused.code})")
        self.check("her link, still usable (§8.2)", _raw_of(link))
        self.say("Ada rates with her link: one transaction checks it, rates and kills every link")
        rating = ratings.rate_with_link(_raw_of(link), 5, "Clear and kind.")
        self.console.print(
            f"   rating {rating.id}: {rating.rating}/5 by {rating.student_profile_id}"
        )
        self.check("rating link", _raw_of(link))
        self.say("Ada asks for a fresh link: she can still view the session")
        self.check("fresh link", guests.request_inbox_link("ada@example.com", booking_id).raw)
        self.say("She tries to rate again")
        try:
            ratings.create_rating(booking_id, "mentor-profile-42", 1)
        except MagicLinkError as refused:
            self.console.print(f"   [red]refused[/red] - {refused.message} ({refused.code})")

    def the_others(self) -> None:
        bookings, at = self.services.bookings, self.tomorrow
        self.say("Grace books, then cancels herself (student cancellation)")
        grace = bookings.book_session(42, "grace@example.com", at + timedelta(hours=2)).booking
        link = self.last_link()
        bookings.cancel_session(
            grace.id, "exam clash", "student", Requester(email="grace@example.com")
        )
        self.check("Grace's link", _raw_of(link))
        self.say("Linus books and does not show up (no-show, marked by the mentor)")
        linus = bookings.book_session(42, "linus@example.com", at + timedelta(hours=4)).booking
        link = self.last_link()
        bookings.mark_session_as_no_show(linus.id, self.mentor)
        self.check("Linus's link", _raw_of(link))
        self.say("Barbara's session is reported in an incident, found by booking uid")
        barbara = bookings.book_session(42, "barbara@example.com", at + timedelta(hours=6))
        link = self.last_link()
        incident = self.services.quality.create_incident(
            "mentor-profile-42", barbara.booking.uid, "technical_issue", "Video kept dropping."
        )
        self.console.print(f"   incident {incident.id} on booking {incident.booking_id}")
        self.check("Barbara's link", _raw_of(link))


def _print_metrics(console: Console, metrics: InMemoryMetrics) -> None:
    table = Table(title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    snapshot = metrics.snapshot()
    for name in (MetricNames.TOKENS_ISSUED, MetricNames.INVALIDATIONS, MetricNames.VERIFICATIONS):
        for labels, value in sorted(snapshot.get(name, {}).items()):
            table.add_row(f"{name}{{{labels}}}", f"{value:g}")
    latency = metrics.summary(MetricNames.INVALIDATION_LATENCY)
    for key in ("p50", "p95", "p99"):
        seconds = latency[key]
        shown = "-" if seconds is None else f"{seconds * 1000:.2f} ms"
        table.add_row(f"invalidation latency {key}", shown)
    console.print(table)
