"""Scanner-safe magic links with Flask (SPEC §5.9): opening the link changes nothing.

Mail scanners and link previews fetch every URL in a message. So the page behind the link
only *looks* at the token (`verify_token`) and shows a button; the button's POST is what
spends it (`consume_token`). A scanner's GET leaves the link as it was, for the guest.

Run it on the in-memory adapter with `python examples/flask_scanner_safe/app.py`, then open
the link it prints.
"""

from __future__ import annotations

from flask import Flask, Response, render_template_string, request

from magiclink import AccessDenied, GuestService, InvalidToken, MagicLinkError, TokenExpiredOrUsed

CONFIRM = """<!doctype html>
<title>Sign in</title>
<p>Continue as {{ email }}?</p>
<form method="post" action="{{ url_for('redeem') }}">
  <input type="hidden" name="token" value="{{ token }}">
  <button type="submit">Continue</button>
</form>
"""
SIGNED_IN = """<!doctype html>
<title>Signed in</title>
<p>Signed in as {{ email }}.</p>
"""
REFUSED = """<!doctype html>
<title>Link refused</title>
<p>{{ message }}</p>
"""

# A bad, used, expired or revoked link is UNAUTHORIZED (401); a blocked guest, FORBIDDEN (403).
STATUS = {"UNAUTHORIZED": 401, "FORBIDDEN": 403}


def create_app(guest_service: GuestService) -> Flask:
    """A Flask app serving the two-step link page on `GET`/`POST /magic-link`."""
    app = Flask(__name__)

    @app.after_request
    def keep_the_token_private(response: Response) -> Response:
        # The token is in the URL: never send it on in a Referer, never cache the page.
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(InvalidToken)
    @app.errorhandler(TokenExpiredOrUsed)
    @app.errorhandler(AccessDenied)
    def refused(error: MagicLinkError) -> tuple[str, int]:
        return render_template_string(REFUSED, message=error.message), STATUS[error.code]

    @app.get("/magic-link")
    def confirm() -> str:
        token = request.args.get("token", "")
        verified = guest_service.verify_token(token)  # read-only: safe for scanners
        return render_template_string(CONFIRM, token=token, email=verified.guest.normalized_email)

    @app.post("/magic-link")
    def redeem() -> str:
        verified = guest_service.consume_token(request.form.get("token", ""))  # once, ever
        # A real host would start its session here (e.g. flask.session["guest_id"]).
        return render_template_string(SIGNED_IN, email=verified.guest.normalized_email)

    return app


if __name__ == "__main__":
    from magiclink.adapters.memory import InMemoryUnitOfWork

    guests = GuestService(InMemoryUnitOfWork())
    issued = guests.request_inbox_link("ada@example.com")
    print("Open:", guests.settings.link_url(issued.raw))
    create_app(guests).run(port=8000)
