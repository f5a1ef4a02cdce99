"""The desk's routes: sign-in, the work queue, opening an encounter, the encounter
page, firing an action, the language switch, sign-out.

Every page is rendered on the server and works without JavaScript. Every POST
carries the session's CSRF token; every refusal is shown on the page in the
person's language and recorded in the engine's refusal log, and changes nothing.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ...engine.engine import RECORDED, Engine
from ...errors import Category, ConcurrentUpdate, LastResortError
from ...protocol.model import Actor, Encounter
from ..auth import Credential, CredentialStore, Unauthenticated
from ..problems import STATUS, record_refusal
from . import view
from .forms import Refused as _Refused
from .forms import code as _code
from .forms import read_form
from .messages import Catalogue, catalogue
from .session import COOKIE, LIFETIME, PRE_COOKIE, Session, Signer

__all__ = ["Desk"]

LANG_COOKIE = "lr_desk_lang"
#: what a ``datetime-local`` field posts: a date and a time to the minute (or second)
_LOCAL_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Desk:
    """The counter-desk pages over an engine, signed in with the service's API tokens.

    :param engine: the engine the service runs.
    :param credentials: the tokens people sign in with (a token needs the ``act`` scope).
    :param secret: signs session cookies (at least 32 bytes; default: random per process).
    :param base: the path the desk is mounted at.
    :param words: the message catalogue (default: every ``messages/*.json``).
    """

    def __init__(
        self,
        engine: Engine,
        credentials: CredentialStore,
        *,
        secret: bytes | None = None,
        base: str = "/desk",
        words: Catalogue | None = None,
    ) -> None:
        self.engine = engine
        self.credentials = credentials
        self.signer = Signer(secret)
        self.base = base
        self.words = words or catalogue()
        self.templates = Environment(
            loader=PackageLoader(__package__, "templates"),
            autoescape=select_autoescape(["html"]),
        )

    def routes(self) -> list[BaseRoute]:
        """The desk's routes, to mount at :attr:`base`."""
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/sign-in", self.sign_in, methods=["POST"]),
            Route("/sign-out", self.sign_out, methods=["POST"]),
            Route("/lang/{lang}", self.language, methods=["GET"]),
            Route("/new", self.new, methods=["GET"]),
            Route("/encounters", self.open, methods=["POST"]),
            Route("/encounters/{encounter_id}", self.encounter, methods=["GET"]),
            Route("/encounters/{encounter_id}/fire", self.fire, methods=["POST"]),
            Mount("/static", StaticFiles(packages=[(__package__, "static")]), name="static"),
        ]

    # -- who is asking --------------------------------------------------------------

    def _lang(self, request: Request) -> str:
        return self.words.lang(request.cookies.get(LANG_COOKIE))

    def _session(self, request: Request) -> tuple[Session, Credential] | None:
        session = self.signer.session(request.cookies.get(COOKIE))
        if session is None:
            return None
        for credential in self.credentials.list():
            # looked up on every request: a revoked token ends its sessions at once
            if credential.token_id == session.token_id and credential.revoked_at is None:
                return session, credential
        return None

    def _record(
        self,
        actor: Actor,
        action: str,
        category: Category,
        reason: str,
        encounter_id: str | None = None,
    ) -> None:
        """Record a refusal of the desk itself (the engine records its own)."""
        record_refusal(
            self.engine,
            actor=actor,
            action=f"desk:{action}",
            category=category,
            reason=reason,
            encounter_id=encounter_id,
        )

    # -- rendering ------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        who: tuple[Session, Credential] | None = None,
        message: str | None = None,
        message_kind: str = "ok",
        **context: Any,
    ) -> HTMLResponse:
        lang = self._lang(request)
        words = self.words
        pre: str | None = None
        if who is not None:
            csrf = self.signer.csrf(who[0].nonce)
        else:
            pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(16)
            csrf = self.signer.csrf(pre)
        # where the language switch comes back to: the page, without a one-time message
        kept = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "done"])
        here = request.url.path + (f"?{kept}" if kept else "")
        html = self.templates.get_template(template).render(
            lang=lang,
            t=lambda key, **f: words.text(lang, key, **f),
            languages=[(code, words.text(code, "lang_name")) for code in words.languages],
            base=self.base,
            here=here if request.method == "GET" else self.base + "/",
            who=f"{who[1].party} · {who[1].actor_id}" if who else None,
            csrf=csrf,
            message=message,
            message_kind=message_kind,
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=_HEADERS)
        if pre is not None and request.cookies.get(PRE_COOKIE) != pre:
            self._cookie(request, response, PRE_COOKIE, pre, LIFETIME)
        return response

    def _cookie(
        self, request: Request, response: Response, name: str, value: str, max_age: int
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.base,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def _redirect(self, path: str, message: str | None = None) -> RedirectResponse:
        target = self.base + path + (f"?done={quote(message)}" if message else "")
        return RedirectResponse(target, status_code=303, headers=_HEADERS)

    def _refusal(
        self, request: Request, who: tuple[Session, Credential] | None, refused: _Refused
    ) -> HTMLResponse:
        lang = self._lang(request)
        text = self.words.text(lang, refused.key, **refused.fields)
        if who is None:
            return self._page(
                request, "sign_in.html", status=refused.status, message=text, message_kind="error"
            )
        return self._page(
            request,
            "message.html",
            status=refused.status,
            who=who,
            message=text,
            message_kind="error",
        )

    # -- pages ----------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        who = self._session(request)
        lang = self._lang(request)
        done = request.query_params.get("done")
        if who is None:
            signed_out = self.words.text(lang, "signed_out") if done == "signed-out" else None
            return self._page(request, "sign_in.html", message=signed_out)
        credential = who[1]
        items = await run_in_threadpool(view.queue, self.engine, credential, lang, self.words)
        openable = [
            (pid, p.title.get(lang))
            for pid, p in self.engine.protocols.items()
            if credential.may_act_in(pid)
            and "act" in credential.scopes
            and p.steps[p.initial].responsible == credential.party
        ]
        return self._page(request, "queue.html", who=who, items=items, openable=openable)

    async def sign_in(self, request: Request) -> Response:
        try:
            form = await read_form(request, {"token", "csrf"})
            if not self.signer.csrf_ok(request.cookies.get(PRE_COOKIE), form.get("csrf")):
                self._record(Actor("anonymous"), "sign-in", Category.FORBIDDEN, "csrf")
                raise _Refused(403, "bad_csrf")
            try:
                credential = self.credentials.verify(form.get("token", "").strip())
            except Unauthenticated as exc:
                self._record(
                    Actor("anonymous"),
                    "sign-in",
                    Category.FORBIDDEN,
                    f"unauthenticated:{exc.reason}",
                )
                raise _Refused(401, "bad_token") from None
            if "act" not in credential.scopes:
                self._record(credential.actor, "sign-in", Category.FORBIDDEN, "no-act-scope")
                raise _Refused(403, "bad_token")
        except _Refused as refused:
            return self._refusal(request, None, refused)
        _, cookie = self.signer.new_session(credential.token_id)
        response = self._redirect("/")
        self._cookie(request, response, COOKIE, cookie, LIFETIME)
        response.delete_cookie(PRE_COOKIE, path=self.base)
        return response

    async def sign_out(self, request: Request) -> Response:
        who = self._session(request)
        try:
            form = await read_form(request, {"csrf"})
            if who is not None and not self.signer.csrf_ok(who[0].nonce, form.get("csrf")):
                self._record(who[1].actor, "sign-out", Category.FORBIDDEN, "csrf")
                raise _Refused(403, "bad_csrf")
        except _Refused as refused:
            return self._refusal(request, who, refused)
        response = self._redirect("/", "signed-out")
        response.delete_cookie(COOKIE, path=self.base)
        return response

    async def language(self, request: Request) -> Response:
        lang = self.words.lang(request.path_params["lang"])
        target = request.query_params.get("next", "")
        # only a path of the desk itself: never an open redirect
        if not (target.startswith(self.base + "/") and "//" not in target and "\\" not in target):
            target = self.base + "/"
        response = RedirectResponse(target, status_code=303, headers=_HEADERS)
        self._cookie(request, response, LANG_COOKIE, lang, 365 * 24 * 3600)
        return response

    async def new(self, request: Request) -> Response:
        who = self._session(request)
        if who is None:
            return self._redirect("/")
        protocol_id = request.query_params.get("protocol", "")
        if protocol_id not in self.engine.protocols or not who[1].may_act_in(protocol_id):
            return self._refusal(request, who, _Refused(404, "invalid", problem="protocol"))
        protocol = self.engine.protocol(protocol_id)
        return self._page(
            request,
            "new.html",
            who=who,
            protocol_id=protocol_id,
            title=protocol.title.get(self._lang(request)),
            facts=view.facts_form(protocol),
        )

    async def open(self, request: Request) -> Response:
        who = self._session(request)
        if who is None:
            return self._redirect("/")
        session, credential = who
        try:
            protocol_id = request.query_params.get("protocol", "")
            protocol = self.engine.protocols.get(protocol_id)
            names = {f"fact_{name}" for name in protocol.facts} if protocol else set()
            form = await read_form(request, {"csrf", *names})
            if not self.signer.csrf_ok(session.nonce, form.get("csrf")):
                self._record(credential.actor, "open", Category.FORBIDDEN, "csrf")
                raise _Refused(403, "bad_csrf")
            if protocol is None or not credential.may_act_in(protocol_id):
                self._record(credential.actor, "open", Category.FORBIDDEN, "wrong-protocol")
                raise _Refused(403, "refused_open")
            facts: dict[str, str | bool] = {}
            for name, fact in protocol.facts.items():
                value = form.get(f"fact_{name}", "")
                if value == "":
                    continue  # not asked
                if fact.kind.value == "bool":
                    if value not in ("yes", "no"):
                        raise _Refused(400, "invalid", problem=_code(name))
                    facts[name] = value == "yes"
                else:
                    facts[name] = value  # the engine refuses a value not declared
            encounter = await run_in_threadpool(
                self._engine_call,
                credential,
                "open",
                None,
                self.engine.open,
                protocol_id,
                credential.actor,
                facts,
            )
        except _Refused as refused:
            return self._refusal(request, who, refused)
        return self._redirect(f"/encounters/{encounter.id}", "opened")

    def _engine_call(
        self,
        credential: Credential,
        action: str,
        encounter_id: str | None,
        call: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Call the engine; turn its error into a page refusal, recorded once."""
        try:
            return call(*args, **kwargs)
        except LastResortError as exc:
            if not isinstance(exc, RECORDED) and not isinstance(exc, ConcurrentUpdate):
                # the engine records refusals of permission itself; the desk records the rest
                self._record(
                    credential.actor, action, exc.category, type(exc).__name__, encounter_id
                )
            status = STATUS.get(exc.category, 400)
            if isinstance(exc, ConcurrentUpdate):
                raise _Refused(409, "stale") from None
            if exc.category is Category.NOT_FOUND:
                raise _Refused(404, "not_found") from None
            if exc.category in (Category.FORBIDDEN, Category.CONFLICT):
                if action == "open":
                    raise _Refused(status, "refused_open") from None
                step = getattr(exc, "step", None)
                raise _Refused(
                    status, "refused", event=_code(getattr(exc, "event", None)), step=_code(step)
                ) from None
            raise _Refused(status, "invalid", problem=type(exc).__name__) from None

    def _until(
        self,
        credential: Credential,
        encounter: Encounter,
        event: str,
        given: str | None,
        lang: str,
    ) -> datetime | None:
        """The date chosen for the deadline of the step ``event`` enters (a field
        ``YYYY-MM-DDTHH:MM`` in the protocol's time zone), checked as the engine will
        check it, so that the page can say what is wrong; ``None`` when the step asks
        for no date (and none may be given). Refusals are recorded."""
        protocol = self.engine.protocol(encounter.protocol)
        target = view.target_of(protocol, encounter.state, event)
        shown = view.until_field(self.engine, encounter, target) if target else None

        def refuse(reason: str, key: str, **fields: str) -> NoReturn:
            self._record(credential.actor, "fire", Category.INVALID, reason, encounter.id)
            raise _Refused(400, key, **fields)

        if shown is None:
            if given is not None:
                refuse("until-not-asked", "invalid", problem="until")
            return None
        zone = ZoneInfo(protocol.timezone)
        if not given:
            refuse("until-missing", "until_missing")
        assert given is not None
        if not _LOCAL_MINUTE.fullmatch(given):
            refuse("until-malformed", "invalid", problem="until")
        try:
            local = datetime.fromisoformat(given)
        except ValueError:
            refuse("until-malformed", "invalid", problem="until")
        moment = local.replace(tzinfo=zone)  # fold 0: the first of a repeated hour
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
            # a time the clock skips when summer time starts: it does not exist there
            refuse("until-nonexistent", "until_not_a_moment", zone=protocol.timezone)
        # compared as instants (two times in one zone compare by the clock, fold ignored)
        now = self.engine.clock.now().astimezone(UTC)
        if moment.astimezone(UTC) <= now:
            # in the repeated hour's second pass, its times still to come are the second
            second = local.replace(tzinfo=zone, fold=1)
            if second.astimezone(UTC) > now:
                moment = second
        if not now < moment.astimezone(UTC) <= shown.last:
            refuse("until-out-of-range", "until_out_of_range", latest=shown.latest)
        return moment

    async def encounter(self, request: Request) -> Response:
        who = self._session(request)
        if who is None:
            return self._redirect("/")
        lang = self._lang(request)
        encounter_id = request.path_params["encounter_id"]
        credential = who[1]
        try:
            encounter = await run_in_threadpool(
                self._engine_call, credential, "get", encounter_id, self.engine.get, encounter_id
            )
            if not credential.may_act_in(encounter.protocol):
                self._record(
                    credential.actor, "get", Category.FORBIDDEN, "wrong-protocol", encounter_id
                )
                raise _Refused(404, "not_found")
        except _Refused as refused:
            return self._refusal(request, who, refused)
        return self._show(request, who, encounter, lang)

    def _show(
        self,
        request: Request,
        who: tuple[Session, Credential],
        encounter: Any,
        lang: str,
        *,
        status: int = 200,
        message: str | None = None,
        message_kind: str = "ok",
    ) -> HTMLResponse:
        data = view.encounter_view(self.engine, encounter, who[1], lang, self.words)
        done = request.query_params.get("done")
        events = {t.event for t in data["protocol"].transitions}
        # only a name of this protocol: a crafted link cannot put words on the page
        if message is None and done is not None and (done == "opened" or done in events):
            message = (
                self.words.text(lang, "opened")
                if done == "opened"
                else self.words.text(lang, "done", event=data["protocol"].event_title(done, lang))
            )
        return self._page(
            request,
            "encounter.html",
            status=status,
            who=who,
            message=message,
            message_kind=message_kind,
            **data,
        )

    async def fire(self, request: Request) -> Response:
        who = self._session(request)
        if who is None:
            return self._redirect("/")
        session, credential = who
        encounter_id = request.path_params["encounter_id"]
        lang = self._lang(request)
        try:
            form = await read_form(request, {"csrf", "event", "version", "until"})
            if not self.signer.csrf_ok(session.nonce, form.get("csrf")):
                self._record(credential.actor, "fire", Category.FORBIDDEN, "csrf", encounter_id)
                raise _Refused(403, "bad_csrf")
            encounter = await run_in_threadpool(
                self._engine_call, credential, "fire", encounter_id, self.engine.get, encounter_id
            )
            event = form.get("event", "")
            if "act" not in credential.scopes or not credential.may_act_in(encounter.protocol):
                self._record(
                    credential.actor, "fire", Category.FORBIDDEN, "wrong-protocol", encounter_id
                )
                raise _Refused(403, "refused", event=_code(event), step=_code(encounter.state))
            version = form.get("version", "")
            if not version.isdigit() or len(version) > 9:
                raise _Refused(400, "invalid", problem="version")
            if int(version) != encounter.version:
                raise _Refused(409, "stale")  # before the date: it was for another step
            allowed = await run_in_threadpool(
                self._engine_call,
                credential,
                "fire",
                encounter_id,
                self.engine.allowed,
                encounter.id,
                credential.actor,
            )
            # the date is read only for an action this person may take now; any other is
            # refused (and recorded) by the engine as what it is, whatever date came with it
            until = (
                await run_in_threadpool(
                    self._until, credential, encounter, event, form.get("until"), lang
                )
                if event in allowed
                else None
            )
            await run_in_threadpool(
                self._engine_call,
                credential,
                "fire",
                encounter_id,
                self.engine.fire,
                encounter_id,
                event,
                credential.actor,
                int(version),
                until=until,
            )
        except _Refused as refused:
            try:
                current = self.engine.get(encounter_id)
            except LastResortError:
                return self._refusal(request, who, refused)
            if not credential.may_act_in(current.protocol):
                return self._refusal(request, who, refused)
            text = self.words.text(lang, refused.key, **refused.fields)
            return self._show(
                request,
                who,
                current,
                lang,
                status=refused.status,
                message=text,
                message_kind="error",
            )
        return self._redirect(f"/encounters/{encounter_id}", event)
