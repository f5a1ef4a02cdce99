"""Errors as ``application/problem+json`` (RFC 9457), the status from the error's
:class:`~lastresort.Category`.

The body never carries caller text: the ``detail`` of a lastresort error is its
message (which quotes caller values only when they have an identifier's form, see
:mod:`lastresort.privacy`), and the service's own problems use fixed texts.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse

from ..engine.engine import Engine
from ..errors import Category, InvalidArgument, LastResortError
from ..protocol.model import Actor

__all__ = [
    "API_VERSION",
    "ID",
    "PROBLEM_TYPE",
    "STATUS",
    "Problem",
    "from_error",
    "problem_response",
    "record_refusal",
]

#: an identifier's form (an encounter or protocol id, a form field's name): what the
#: service may repeat back or record; anything else is caller text
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

#: the API's version, sent as the ``API-Version`` header of every response
API_VERSION = "1.0.0"
#: the base of every problem's ``type``: one page per code in docs/service.md
PROBLEM_TYPE = "https://lastresort.readthedocs.io/service/#problem-"

STATUS = {
    Category.NOT_FOUND: 404,
    Category.FORBIDDEN: 403,
    Category.CONFLICT: 409,
    Category.INVALID: 400,
    Category.UNAVAILABLE: 503,
}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    428: "Precondition Required",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """A refusal of the service itself (not of the engine): a status, a code and a
    fixed text.

    :param status: the HTTP status.
    :param code: a short code (``unauthenticated``, ``wrong-party``, ...), also the
        refusal log's reason.
    :param detail: a fixed explanation; never caller text.
    """

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def from_error(exc: LastResortError) -> Problem:
    """The problem for a lastresort error: status from its category, code its class name."""
    return Problem(STATUS[exc.category], type(exc).__name__, str(exc), category=exc.category.value)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    """``problem`` as an ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + problem.code.lower(),
        "title": TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
    }
    body.update(problem.extra)
    return JSONResponse(
        body,
        status_code=problem.status,
        media_type="application/problem+json",
        headers={"API-Version": API_VERSION, **(headers or {})},
    )


def record_refusal(
    engine: Engine,
    *,
    actor: Actor,
    action: str,
    category: Category,
    reason: str,
    encounter_id: str | None = None,
    protocol: str | None = None,
) -> None:
    """Record a refusal of the service itself (the API's 401/403, the desk's), beside
    the engine's own. An encounter or protocol id is kept only when it has an
    identifier's form and the log accepts it; else the refusal is recorded without it,
    so that caller text never enters the log and a refusal is never lost for it."""
    kwargs: dict[str, Any] = {"actor": actor, "action": action, "category": category}
    if encounter_id is not None and ID.fullmatch(encounter_id):
        kwargs["encounter_id"] = encounter_id
    if protocol is not None and ID.fullmatch(protocol):
        kwargs["protocol"] = protocol
    try:
        engine.record_refusal(reason=reason, **kwargs)
    except InvalidArgument:
        kwargs.pop("encounter_id", None)
        kwargs.pop("protocol", None)
        engine.record_refusal(reason=reason, **kwargs)
