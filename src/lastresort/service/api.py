"""The JSON API's endpoints, under ``/api/v1``.

Every endpoint but the OpenAPI document needs a bearer token (:mod:`.auth`). The
actor of every write is the token's credential: a request body never names one. A
refusal of the service itself (401, 403) is recorded in the engine's refusal log
like the engine's own refusals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine.engine import Engine
from ..errors import Category, ConcurrentUpdate, StoreError
from ..protocol.conversion import converter as protocol_converter
from ..protocol.model import Actor, Encounter
from ..store.exchange import to_json
from .auth import Credential, CredentialStore, Unauthenticated, Verifier
from .problems import API_VERSION, ID, Problem, record_refusal

__all__ = ["MAX_BODY", "Api"]

#: the largest request body accepted (bytes): facts and an event name fit many times
MAX_BODY = 16 * 1024
_ETAG = re.compile(r'(?:W/)?"v(\d{1,18})"')
Handler = Callable[[Request], Awaitable[Response]]


def _etag(encounter: Encounter) -> str:
    return f'"v{encounter.version}"'


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        data, status_code=status, headers={"API-Version": API_VERSION, **(headers or {})}
    )


class Api:
    """The endpoints over one engine and one way to verify tokens.

    :param engine: the engine every request runs on.
    :param credentials: the token store.
    :param verifier: another way to verify a bearer token (OIDC/JWT), tried when the
        token is not one of ``credentials``' form.
    """

    def __init__(
        self, engine: Engine, credentials: CredentialStore, verifier: Verifier | None = None
    ) -> None:
        self.engine = engine
        self.credentials = credentials
        self.verifier = verifier

    # -- authentication ---------------------------------------------------------------

    def authenticate(self, request: Request) -> Credential:
        """The credential of the request's bearer token.

        :raises Problem: 401 when there is none, or it is malformed, unknown or
            revoked (the refusal is recorded)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if not header:
                raise Unauthenticated("missing")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("malformed")
            token = token.strip()
            if token.startswith("lr_") or self.verifier is None:
                return self.credentials.verify(token)
            return self.verifier(token)
        except Unauthenticated as exc:
            self._record(None, request, Category.FORBIDDEN, f"unauthenticated:{exc.reason}")
            raise Problem(
                401,
                "unauthenticated",
                "a valid bearer token is required (Authorization: Bearer lr_...)",
            ) from None

    def _record(
        self,
        credential: Credential | None,
        request: Request,
        category: Category,
        reason: str,
        encounter_id: str | None = None,
        protocol: str | None = None,
    ) -> None:
        """Record a refusal of the service (see :func:`.problems.record_refusal`)."""
        record_refusal(
            self.engine,
            actor=credential.actor if credential is not None else Actor("anonymous"),
            action=f"http:{request.method.lower()}:{_action(request)}",
            category=category,
            reason=reason,
            encounter_id=encounter_id,
            protocol=protocol,
        )

    def _forbid(
        self,
        credential: Credential,
        request: Request,
        code: str,
        detail: str,
        encounter_id: str | None = None,
        protocol: str | None = None,
    ) -> Problem:
        self._record(credential, request, Category.FORBIDDEN, code, encounter_id, protocol)
        return Problem(403, code, detail)

    def _may_act(self, credential: Credential, request: Request, encounter: Encounter) -> None:
        if "act" not in credential.scopes:
            raise self._forbid(
                credential, request, "no-act-scope", "this token may not act", encounter.id
            )
        if not credential.may_act_in(encounter.protocol):
            raise self._forbid(
                credential,
                request,
                "wrong-protocol",
                "this token may not act in this encounter's protocol",
                encounter.id,
                encounter.protocol,
            )

    def _may_read(self, credential: Credential, request: Request, encounter: Encounter) -> None:
        if not credential.may_act_in(encounter.protocol):
            raise self._forbid(
                credential,
                request,
                "wrong-protocol",
                "this token may not read this encounter's protocol",
                encounter.id,
                encounter.protocol,
            )

    # -- helpers ----------------------------------------------------------------------

    async def _body(self, request: Request, allowed: set[str]) -> dict[str, Any]:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Problem(415, "unsupported-media-type", "send the body as application/json")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise Problem(413, "body-too-large", f"a request body is at most {MAX_BODY} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Problem(400, "malformed-json", "the body is not a JSON document") from None
        if not isinstance(data, dict):
            raise Problem(400, "malformed-body", "the body must be a JSON object")
        unknown = sorted(set(data) - allowed)
        if "actor" in data:
            raise Problem(
                400,
                "actor-in-body",
                "the actor is the token's holder: a request never names one",
            )
        if unknown:
            names = ", ".join(k for k in unknown if ID.fullmatch(k)) or "(not shown)"
            raise Problem(
                400,
                "unknown-field",
                f"unknown field(s): {names}; allowed: {', '.join(sorted(allowed))}",
            )
        return data

    async def _load(self, request: Request) -> Encounter:
        encounter_id = request.path_params["encounter_id"]
        encounter: Encounter = await run_in_threadpool(self.engine.get, encounter_id)
        return encounter

    # -- endpoints --------------------------------------------------------------------

    async def protocols(self, request: Request) -> Response:
        credential = self.authenticate(request)
        items = [
            {
                "id": p.id,
                "version": p.version,
                "title": {"nl": p.title.nl, "en": p.title.en},
                "parties": list(p.parties),
                "facts": {
                    key: list(fact.values) if fact.values else fact.kind.value
                    for key, fact in p.facts.items()
                },
                "channels": list(p.channels),
            }
            for p in self.engine.protocols.values()
            if credential.may_act_in(p.id)
        ]
        return _json({"items": items})

    async def open(self, request: Request) -> Response:
        credential = self.authenticate(request)
        data = await self._body(request, {"protocol", "facts", "channel"})
        protocol = data.get("protocol")
        if not isinstance(protocol, str):
            raise Problem(400, "invalid-field", "protocol: a protocol id (string) is required")
        if "act" not in credential.scopes:
            raise self._forbid(credential, request, "no-act-scope", "this token may not act")
        if not credential.may_act_in(protocol):
            raise self._forbid(
                credential,
                request,
                "wrong-protocol",
                "this token may not act in this protocol",
                protocol=protocol,
            )
        facts = data.get("facts", {})
        if not isinstance(facts, dict):
            raise Problem(400, "invalid-field", "facts: a JSON object of declared facts")
        encounter = await run_in_threadpool(
            self.engine.open, protocol, credential.actor, facts, data.get("channel")
        )
        location = f"/api/v1/encounters/{encounter.id}"
        return _json(to_json(encounter), 201, {"Location": location, "ETag": _etag(encounter)})

    async def get(self, request: Request) -> Response:
        credential = self.authenticate(request)
        encounter = await self._load(request)
        self._may_read(credential, request, encounter)
        return _json(to_json(encounter), headers={"ETag": _etag(encounter)})

    async def allowed(self, request: Request) -> Response:
        credential = self.authenticate(request)
        encounter = await self._load(request)
        self._may_read(credential, request, encounter)
        if "act" not in credential.scopes or not credential.may_act_in(encounter.protocol):
            actions: list[str] = []
        else:
            actions = await run_in_threadpool(self.engine.allowed, encounter.id, credential.actor)
        return _json(
            {"encounter": encounter.id, "version": encounter.version, "actions": actions},
            headers={"ETag": _etag(encounter)},
        )

    async def fire(self, request: Request) -> Response:
        credential = self.authenticate(request)
        encounter = await self._load(request)
        self._may_act(credential, request, encounter)
        data = await self._body(request, {"event", "until"})
        event = data.get("event")
        if not isinstance(event, str):
            raise Problem(400, "invalid-field", "event: an event name (string) is required")
        until: datetime | None = None
        if data.get("until") is not None:
            try:
                until = protocol_converter.structure(data["until"], datetime)
            except (ValueError, TypeError):
                raise Problem(
                    400, "invalid-field", "until: an ISO 8601 moment with its offset"
                ) from None
        expected: int | None = None
        match = request.headers.get("if-match")
        if match is not None and match.strip() != "*":
            parsed = _ETAG.fullmatch(match.strip())
            if parsed is None or int(parsed.group(1)) < 1:
                # an ETag this service never gave cannot match (RFC 9110, 13.1.1)
                raise Problem(
                    412,
                    "version-mismatch",
                    "the If-Match ETag is not the encounter's: reload it and decide again",
                    category="conflict",
                    current=_etag(encounter),
                )
            expected = int(parsed.group(1))
        try:
            events = await run_in_threadpool(
                self._fire, encounter.id, event, credential.actor, expected, until
            )
        except ConcurrentUpdate as exc:
            if expected is None:
                raise
            current = await run_in_threadpool(self.engine.get, encounter.id)
            raise Problem(
                412,
                "version-mismatch",
                "the encounter changed since the ETag of If-Match: reload it and decide again",
                category=exc.category.value,
                current=_etag(current),
            ) from None
        after = await run_in_threadpool(self.engine.get, encounter.id)
        return _json(
            {"encounter": to_json(after), "events": [to_json(e) for e in events]},
            headers={"ETag": _etag(after)},
        )

    def _fire(
        self,
        encounter_id: str,
        event: str,
        actor: Actor,
        expected: int | None,
        until: datetime | None,
    ) -> list[Any]:
        return self.engine.fire(encounter_id, event, actor, expected, until=until)

    async def timeline(self, request: Request) -> Response:
        credential = self.authenticate(request)
        encounter = await self._load(request)
        self._may_read(credential, request, encounter)
        events = await run_in_threadpool(self.engine.timeline, encounter.id)
        return _json({"items": [to_json(e) for e in events]}, headers={"ETag": _etag(encounter)})

    async def deadlines(self, request: Request) -> Response:
        credential = self.authenticate(request)
        encounter = await self._load(request)
        self._may_read(credential, request, encounter)
        pending = await run_in_threadpool(self.engine.deadlines, encounter.id)
        return _json({"items": [to_json(d) for d in pending]})

    async def outbox(self, request: Request) -> Response:
        credential = self.authenticate(request)
        encounter = await self._load(request)
        self._may_read(credential, request, encounter)
        items = await run_in_threadpool(self.engine.outbox, encounter.id)
        return _json({"items": [to_json(n) for n in items]})

    async def encounters(self, request: Request) -> Response:
        credential = self.authenticate(request)
        query = _Query.parse(request)
        page = await run_in_threadpool(self._work_queue, credential, query)
        return _json(page)

    def _work_queue(self, credential: Credential, query: _Query) -> dict[str, Any]:
        # one indexed store query for the page (Store.find), then the deadlines of the
        # encounters shown: O(page), not O(open encounters)
        now = self.engine.clock.now()
        protocols: str | tuple[str, ...] | None = query.protocol
        if "*" not in credential.protocols:
            protocols = tuple(
                p for p in credential.protocols if query.protocol in (None, p)
            )  # only the protocols the token may act in (none: an empty page)
        found = self.engine.store.find(
            protocol=protocols,
            state=query.step,
            responsible=query.responsible,
            overdue_at=None if query.overdue is None else now,
            overdue=query.overdue is not False,
            open_only=not query.closed,
            after=query.after,
            limit=query.limit + 1,  # one more than shown: is there a next page?
        )
        more = len(found) > query.limit
        items: list[dict[str, Any]] = []
        for encounter in found[: query.limit]:
            pending = self.engine.store.deadlines(encounter.id)
            item = to_json(encounter)
            due = min((d.due for d in pending), default=None)
            item["next_deadline"] = None if due is None else due.isoformat()
            item["overdue"] = any(d.due <= now for d in pending)
            items.append(item)
        return {"items": items, "next": items[-1]["id"] if more else None}

    async def refusals(self, request: Request) -> Response:
        credential = self.authenticate(request)
        if "audit" not in credential.scopes:
            raise self._forbid(
                credential, request, "no-audit-scope", "this token may not read the refusal log"
            )
        params = request.query_params
        _only(params, {"encounter", "after", "limit"})
        limit = _int(params.get("limit"), "limit", 1, 500, 100) or 100
        after = _int(params.get("after"), "after", 0, 10**15, None)
        encounter_id = params.get("encounter")
        if encounter_id is not None and not ID.fullmatch(encounter_id):
            raise Problem(400, "invalid-parameter", "encounter: an encounter id")
        found = await run_in_threadpool(
            lambda: self.engine.refusals(encounter_id=encounter_id, limit=limit, after_seq=after)
        )
        items = [to_json(r) for r in found]
        more = len(found) == limit
        return _json({"items": items, "next": found[-1].seq if more and found else None})

    async def health(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.engine.store.next_due)
        except StoreError:
            raise Problem(503, "store-unavailable", "the store cannot be read") from None
        return _json({"status": "ok"})

    async def _encounters_or_open(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.open(request)
        return await self.encounters(request)

    def routes(self) -> list[Route]:
        """The API's routes (mounted under ``/api/v1``)."""
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/protocols", self.protocols, methods=["GET"]),
            # one route per path, so that a 405's Allow names every method of the path
            Route("/encounters", self._encounters_or_open, methods=["GET", "POST"]),
            Route("/encounters/{encounter_id}", self.get, methods=["GET"]),
            Route("/encounters/{encounter_id}/allowed", self.allowed, methods=["GET"]),
            Route("/encounters/{encounter_id}/events", self.fire, methods=["POST"]),
            Route("/encounters/{encounter_id}/timeline", self.timeline, methods=["GET"]),
            Route("/encounters/{encounter_id}/deadlines", self.deadlines, methods=["GET"]),
            Route("/encounters/{encounter_id}/outbox", self.outbox, methods=["GET"]),
            Route("/refusals", self.refusals, methods=["GET"]),
        ]


def _action(request: Request) -> str:
    """The route's name for the refusal log: the path template's last literal part."""
    route = request.scope.get("route")
    path = getattr(route, "path", "") or ""
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    return parts[-1] if parts else "root"


def _only(params: Any, allowed: set[str]) -> None:
    unknown = sorted(set(params.keys()) - allowed)
    if unknown:
        names = ", ".join(k for k in unknown if ID.fullmatch(k)) or "(not shown)"
        raise Problem(
            400,
            "unknown-parameter",
            f"unknown query parameter(s): {names}; allowed: {', '.join(sorted(allowed))}",
        )


def _int(text: str | None, name: str, low: int, high: int, default: int | None) -> int | None:
    if text is None:
        return default
    if not re.fullmatch(r"\d{1,16}", text) or not low <= int(text) <= high:
        raise Problem(400, "invalid-parameter", f"{name}: a whole number from {low} to {high}")
    return int(text)


class _Query:
    """The work queue's filters and page."""

    def __init__(
        self,
        protocol: str | None,
        step: str | None,
        responsible: str | None,
        overdue: bool | None,
        closed: bool,
        limit: int,
        after: str | None,
    ) -> None:
        self.protocol = protocol
        self.step = step
        self.responsible = responsible
        self.overdue = overdue
        self.closed = closed
        self.limit = limit
        self.after = after

    @classmethod
    def parse(cls, request: Request) -> _Query:
        params = request.query_params
        _only(params, {"protocol", "step", "responsible", "overdue", "closed", "limit", "after"})
        texts: dict[str, str | None] = {}
        for name in ("protocol", "step", "responsible", "after"):
            value = params.get(name)
            if value is not None and not ID.fullmatch(value):
                raise Problem(400, "invalid-parameter", f"{name}: an identifier")
            texts[name] = value
        flags: dict[str, bool | None] = {}
        for name in ("overdue", "closed"):
            value = params.get(name)
            if value not in (None, "true", "false"):
                raise Problem(400, "invalid-parameter", f"{name}: true or false")
            flags[name] = None if value is None else value == "true"
        limit = _int(params.get("limit"), "limit", 1, 200, 50)
        assert limit is not None
        return cls(
            texts["protocol"],
            texts["step"],
            texts["responsible"],
            flags["overdue"],
            bool(flags["closed"]),
            limit,
            texts["after"],
        )
