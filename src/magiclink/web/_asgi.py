"""The guest's page as a Starlette application (mount it in Starlette or FastAPI)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from magiclink.web._flow import GuestPage
from magiclink.web._http import WebRequest, WebResponse

__all__ = ["asgi_app"]


def asgi_app(page: GuestPage) -> Starlette:
    """A Starlette app answering the page's paths; the flow runs in a worker thread."""

    async def endpoint(request: Request) -> Response:
        form = await request.form() if request.method == "POST" else {}
        web_request = WebRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            form={key: value for key, value in form.items() if isinstance(value, str)},
            cookies=dict(request.cookies),
            secure=request.url.scheme == "https",
        )
        answer: WebResponse = await run_in_threadpool(page.handle, web_request)
        response = Response(content=answer.body, status_code=answer.status)
        for name, value in answer.headers:
            response.headers.append(name, value)
        return response

    methods = ["GET", "HEAD", "POST"]
    routes = [Route(path, endpoint, methods=methods) for path in page.paths]
    return Starlette(routes=[*routes, Route("/{rest:path}", endpoint, methods=methods)])
