"""The ASGI application: ``create_app(engine, credentials=...)``.

Starlette, because the service is small: a dozen JSON endpoints, problem+json
errors, a lifespan that runs the scheduler. Every response carries ``API-Version``;
every error is ``application/problem+json``, also a 404 of an unknown path, a 405
and an unexpected failure (a 500 that names nothing of the request).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.engine import Engine
from ..errors import LastResortError
from .api import Api
from .auth import CredentialStore, Verifier
from .desk import Desk
from .desk.session import secret_from_env
from .openapi import openapi
from .problems import API_VERSION, Problem, from_error, problem_response
from .scheduler import Scheduler, SchedulerConfig

__all__ = ["create_app"]

log = logging.getLogger("lastresort.service")


class _ApiVersion:
    """Adds ``API-Version`` to every response (errors of Starlette's own included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"api-version"]
                headers.append((b"api-version", API_VERSION.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


async def _problem(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Problem):
        return problem_response(exc)
    if isinstance(exc, LastResortError):
        return problem_response(from_error(exc))
    if isinstance(exc, HTTPException):
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = {
            404: "no such resource",
            405: "this method is not allowed on this resource",
        }.get(exc.status_code, "the request cannot be served")
        headers = dict(exc.headers or {})
        return problem_response(Problem(exc.status_code, code, detail), headers)
    log.error("unexpected failure serving a request (%s)", type(exc).__name__)
    return problem_response(
        Problem(500, "internal-error", "the request failed unexpectedly; nothing is applied")
    )


def create_app(
    engine: Engine,
    *,
    credentials: CredentialStore,
    scheduler: SchedulerConfig | None = None,
    run_scheduler: bool = True,
    verifier: Verifier | None = None,
    desk: bool = True,
    desk_secret: bytes | None = None,
) -> Starlette:
    """The service over ``engine``.

    :param credentials: the API tokens that may call it.
    :param scheduler: intervals of the background ``tick`` and ``deliver``.
    :param run_scheduler: start the scheduler with the app (tests that drive the clock
        themselves switch it off and call :class:`Scheduler` directly).
    :param verifier: another token verifier (OIDC/JWT), see docs/service.md.
    :param desk: serve the counter-desk page at ``/desk`` (docs/desk.md).
    :param desk_secret: signs the desk's session cookies (at least 32 bytes; default:
        the environment's ``LASTRESORT_DESK_SECRET``, else random per process, so a
        restart signs everyone out).
    """
    api = Api(engine, credentials, verifier)
    background = Scheduler(engine, scheduler)

    async def spec(request: Request) -> Response:
        return JSONResponse(openapi(), headers={"API-Version": API_VERSION})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if run_scheduler:
            background.start()
        try:
            yield
        finally:
            await background.stop()

    app = Starlette(
        routes=[
            Route("/api/v1/openapi.json", spec, methods=["GET"]),
            Mount("/api/v1", routes=api.routes()),
            *(
                [
                    Mount(
                        "/desk",
                        routes=Desk(
                            engine, credentials, secret=desk_secret or secret_from_env()
                        ).routes(),
                    )
                ]
                if desk
                else []
            ),
        ],
        exception_handlers={
            Problem: _problem,
            LastResortError: _problem,
            HTTPException: _problem,
            Exception: _problem,
        },
        lifespan=lifespan,
    )
    app.add_middleware(_ApiVersion)
    app.state.api = api
    app.state.engine = engine
    app.state.scheduler = background
    return app
