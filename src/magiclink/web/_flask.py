"""The guest's page as a Flask blueprint."""

from __future__ import annotations

from flask import Blueprint, Response, request

from magiclink.web._flow import GuestPage
from magiclink.web._http import WebRequest

__all__ = ["blueprint"]


def blueprint(page: GuestPage, name: str = "magiclink_web") -> Blueprint:
    """A blueprint registering every path of the page on one view."""
    bp = Blueprint(name, __name__)

    def view() -> Response:
        answer = page.handle(
            WebRequest(
                method=request.method,
                path=request.path,
                query=request.args.to_dict(),
                form=request.form.to_dict(),
                cookies=request.cookies.to_dict(),
                secure=request.is_secure,
            )
        )
        response = Response(answer.body, status=answer.status)
        response.headers.clear()
        for header, value in answer.headers:
            response.headers.add(header, value)
        return response

    for index, path in enumerate(page.paths):
        bp.add_url_rule(path, f"page_{index}", view, methods=["GET", "HEAD", "POST"])
    return bp
