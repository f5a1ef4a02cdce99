"""lastresort-zgw-notificaties against a real HTTP receiver on 127.0.0.1 (issue 16):
the Notificaties API message validated against a JSON Schema written from the standard,
the Authorization header (token, or a ZGW JWT checked here), each answer class mapped
onto the outbox's retries, no personal data, both stores."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import jsonschema
import lastresort_zgw_notificaties as zgw
import pytest

import lastresort as lr
from lastresort.privacy import ROLE, is_bsn
from lastresort.testing import HANG, Reply
from lastresort.testing import webhook_receiver as receiver

START = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
# delivery mechanics on the frozen 2014 reference protocol of the main test suite (its header
# says why): the shipped taskforce protocol is revised with the domain
TASKFORCE = Path(__file__).resolve().parents[3] / "tests" / "protocols" / "taskforce-2014.toml"
BASE = "https://lastresort.utrecht.example/api/v1"
FACTS: dict[str, str | bool] = {"age_band": "12-15", "disclosure": True, "accompanied": False}

#: The message a Notificaties API accepts on POST /notificaties (ZGW Notificaties API 1.0,
#: schema "Notificatie"), written from the standard: every field but kenmerken required,
#: URLs as URIs of at most 1000 characters, kenmerken a map of strings.
NOTIFICATIE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["kanaal", "hoofdObject", "resource", "resourceUrl", "actie", "aanmaakdatum"],
    "additionalProperties": False,
    "properties": {
        "kanaal": {"type": "string", "minLength": 1, "maxLength": 50},
        "hoofdObject": {"type": "string", "format": "uri", "maxLength": 1000},
        "resource": {"type": "string", "minLength": 1, "maxLength": 100},
        "resourceUrl": {"type": "string", "format": "uri", "maxLength": 1000},
        "actie": {"type": "string", "minLength": 1, "maxLength": 100},
        "aanmaakdatum": {"type": "string", "format": "date-time"},
        "kenmerken": {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": 1000},
        },
    },
}

#: what lastresort-zgw-notificaties promises on top: exactly these kenmerken
LASTRESORT_KENMERKEN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["protocol", "step", "party", "escalation", "sequence"],
    "properties": {
        "protocol": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"},
        "step": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "party": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "escalation": {"enum": ["true", "false"]},
        "sequence": {"pattern": "^[0-9]{12}$"},
    },
}


def check_body(body: Any) -> None:
    jsonschema.validate(body, NOTIFICATIE_SCHEMA, format_checker=jsonschema.FormatChecker())
    jsonschema.validate(body["kenmerken"], LASTRESORT_KENMERKEN)
    assert body["aanmaakdatum"].endswith("Z")
    for name in ("hoofdObject", "resourceUrl"):  # "format" is checked only with rfc3987
        assert urlsplit(body[name]).scheme == "https"
        assert " " not in body[name]
    datetime.fromisoformat(body["aanmaakdatum"])
    # lastresort.privacy's rules: only role-like keys and flags, no free text, no BSN
    for value in body["kenmerken"].values():
        assert isinstance(value, bool) or ROLE.fullmatch(value), value
        assert not is_bsn(str(value))


def decode(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def verify_jwt(token: str, secret: str) -> dict[str, Any]:
    """What a ZGW API does with the Bearer token: check the HS256 signature."""
    header, payload, signature = token.split(".")
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected.digest()
    assert decode(header) == {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, Any] = decode(payload)
    return claims


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Store]:
    made: lr.Store = (
        lr.MemoryStore() if request.param == "memory" else lr.SQLiteStore(tmp_path / "zgw.db")
    )
    yield made
    made.close()


def config(url: str | None, **kw: Any) -> zgw.ZgwConfig:
    settings: dict[str, Any] = {
        "url": url,
        "resource_base": BASE,
        "protocols": {"taskforce"},
        "authorization": "Token s3cr3t",
        "timeout": 5.0,
    }
    settings.update(kw)
    return zgw.ZgwConfig(**settings)


def police(url: str, **kw: Any) -> zgw.ZgwConfig:
    """Endpoints for the police and the counter clerk only."""
    return config(None, urls={"police": url, "counter": url}, **kw)


def engine(store: lr.Store, clock: lr.VirtualClock, *plugins: object, **kw: Any) -> lr.Engine:
    return lr.Engine(
        protocols=[lr.load_protocol(TASKFORCE)],
        plugins=plugins,
        store=store,
        clock=clock,
        entry_points=False,
        **kw,
    )


def police_only(eng: lr.Engine) -> str:
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1"), FACTS).id
    eng.fire(eid, "acute_danger", lr.Actor("counter", "counter-1"))
    return eid


def the(eng: lr.Engine, eid: str, party: str = "police") -> lr.Notification:
    return next(n for n in eng.outbox(eid) if n.party == party and n.escalates is None)


def police_events(events: list[lr.Event]) -> list[lr.Event]:
    return [e for e in events if getattr(e, "party", None) == "police"]


# -- success ---------------------------------------------------------------------------


def test_a_notification_is_posted_as_a_notificaties_api_message(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    with receiver() as rx:
        plugin = zgw.ZgwDelivery(config(rx.url + "/api/v1/notificaties"))
        eng = engine(store, clock, plugin)
        eid = eng.open("taskforce", lr.Actor("counter", "counter-1"), FACTS).id
        eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
        out = eng.deliver()
        plugin.close()
    [delivered] = [e for e in out if isinstance(e, lr.NotificationDelivered)]
    assert delivered.receipt == "zgw 202"
    note = the(eng, eid, "expert")
    [got] = rx.received
    assert got.path == "/api/v1/notificaties"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["authorization"] == "Token s3cr3t"
    assert got.headers["idempotency-key"] == note.key
    body = got.json()
    check_body(body)
    assert body == {
        "kanaal": "lastresort",
        "hoofdObject": f"{BASE}/encounters/{eid}",
        "resource": "notification",
        "resourceUrl": body["resourceUrl"],
        "actie": "call_expert",
        "aanmaakdatum": "2026-03-02T09:00:00Z",
        "kenmerken": {
            "protocol": "taskforce",
            "step": "awaiting_expert",
            "party": "expert",
            "escalation": "false",
            "sequence": "000000000002",
        },
    }
    prefix = f"{BASE}/encounters/{eid}/notifications/"
    assert body["resourceUrl"].startswith(prefix)
    assert unquote(body["resourceUrl"].removeprefix(prefix)) == note.key


def test_a_zgw_jwt_is_minted_for_each_request_from_client_id_and_secret(
    store: lr.Store,
) -> None:
    clock = lr.VirtualClock(START)
    with receiver() as rx:
        settings = {"authorization": None, "client_id": "lastresort-utrecht", "secret": "geheim"}
        eng = engine(store, clock, zgw.ZgwDelivery(config(rx.url, **settings)))
        police_only(eng)
        eng.deliver()
    assert len(rx.received) == 2  # the police and the mayor's staff
    for got in rx.received:
        scheme, token = got.headers["authorization"].split(" ")
        assert scheme == "Bearer"
        claims = verify_jwt(token, "geheim")
        assert claims["iss"] == claims["client_id"] == "lastresort-utrecht"
        assert isinstance(claims["iat"], int)
        assert claims["user_id"] == "lastresort"
    with pytest.raises(AssertionError):
        verify_jwt(token, "not the secret")


def test_the_message_holds_no_personal_data(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)

    class Directory:
        @lr.hookimpl
        def lastresort_party_directory(self) -> str:
            return "j.de.vries@example.nl"

    with receiver() as rx:
        eng = engine(store, clock, zgw.ZgwDelivery(config(rx.url)), Directory())
        eid = eng.open("taskforce", lr.Actor("counter", "counter-1"), FACTS).id
        eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
        eng.fire(eid, "acute_danger", lr.Actor("counter", "counter-1"))
        eng.deliver()
    raw = b"".join(r.body for r in rx.received).decode()
    assert len(rx.received) == 3
    for name, value in FACTS.items():
        assert name not in raw
        assert str(value) not in raw
    assert "vries" not in raw
    for body in rx.bodies():
        check_body(body)


# -- transient and permanent -----------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_a_transient_status_is_retried_then_delivered_with_the_same_resource_url(
    store: lr.Store, status: int
) -> None:
    clock = lr.VirtualClock(START)
    with receiver(Reply(status, {"Retry-After": "120"})) as rx:
        eng = engine(store, clock, zgw.ZgwDelivery(police(rx.url)))
        eid = police_only(eng)
        assert police_events(eng.deliver()) == []
        note = the(eng, eid)
        assert (note.attempts, note.pending) == (1, True)
        assert note.next_attempt_at == clock.now() + timedelta(seconds=120)  # Retry-After
        clock.advance(timedelta(seconds=120))
        [delivered] = police_events(eng.deliver())
    assert isinstance(delivered, lr.NotificationDelivered)
    assert delivered.attempts == 2
    first, second = rx.bodies()
    assert first == second


def test_an_unreachable_api_is_retried(store: lr.Store, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = lr.VirtualClock(START)
    eng = engine(store, clock, zgw.ZgwDelivery(police(f"http://127.0.0.1:{port}/x")))
    eid = police_only(eng)
    eng.deliver()
    note = the(eng, eid)
    assert (note.attempts, note.pending) == (1, True)
    assert note.last_error is not None
    assert note.last_error.startswith("DeliveryDeferred")
    assert "ConnectError reaching the receiver of police" in caplog.text


def test_a_hanging_api_is_cut_off_by_the_outbox_delivery_timeout(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    with receiver(HANG) as rx:
        plugin = zgw.ZgwDelivery(police(rx.url, timeout=60.0))
        eng = engine(store, clock, plugin, delivery_timeout=0.2)
        eid = police_only(eng)
        assert police_events(eng.deliver()) == []
        assert rx.hanging.is_set()
        note = the(eng, eid)
        assert (note.attempts, note.pending) == (1, True)
        assert note.last_error is not None
        assert note.last_error.startswith("DeliveryTimeout")
        clock.advance(timedelta(seconds=30))
        eng.deliver()  # the API answers now
    assert the(eng, eid).delivered_at is not None


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_permanent_status_is_dead_lettered_at_once_and_escalated(
    store: lr.Store, status: int
) -> None:
    clock = lr.VirtualClock(START)
    with receiver(Reply(status)) as rx:
        eng = engine(store, clock, zgw.ZgwDelivery(police(rx.url)))
        eid = police_only(eng)
        out = eng.deliver()
    [dead] = [e for e in out if isinstance(e, lr.NotificationDeadLettered)]
    assert (dead.party, dead.attempts, dead.error_kind) == ("police", 1, "DeliveryRefused")
    escalation = next(n for n in eng.outbox(eid) if n.escalates == the(eng, eid).key)
    assert escalation.delivered_at is not None
    _, sent = rx.bodies()
    check_body(sent)
    assert sent["kenmerken"]["escalation"] == "true"
    assert sent["kenmerken"]["party"] == "counter"


# -- which notifications it takes, configuration ---------------------------------------


def test_it_delivers_only_the_protocols_it_is_configured_for(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    with receiver() as rx:
        eng = engine(store, clock, zgw.ZgwDelivery(config(rx.url, protocols={"rotterdam"})))
        police_only(eng)
        out = eng.deliver()
    assert [e.receipt for e in out] == ["log", "log"]  # type: ignore[attr-defined]
    assert rx.received == []


def test_the_installed_entry_point_is_configured_by_environment_variables(
    store: lr.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = lr.VirtualClock(START)
    with receiver() as rx:
        for name, value in {
            "URLS": f"police={rx.url}/police",
            "RESOURCE_BASE": BASE,
            "PROTOCOLS": "taskforce",
            "KANAAL": "last-resort",
            "CLIENT_ID": "lr",
            "SECRET": "geheim",
        }.items():
            monkeypatch.setenv(zgw.ENV + name, value)
        eng = lr.Engine(protocols=[lr.load_protocol(TASKFORCE)], store=store, clock=clock)
        police_only(eng)
        out = eng.deliver()
    receipts = {e.party: e.receipt for e in out if isinstance(e, lr.NotificationDelivered)}
    assert receipts == {"police": "zgw 202", "mayor_staff": "log"}
    [got] = rx.received
    assert got.path == "/police"
    assert got.json()["kanaal"] == "last-resort"
    verify_jwt(got.headers["authorization"].removeprefix("Bearer "), "geheim")


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"resource_base": "lastresort"}, "resource_base"),
        ({"protocols": []}, "protocols"),
        ({"url": None}, "url"),
        ({"urls": {"police": "x"}}, "urls[police]"),
        ({"kanaal": "Last Resort"}, "kanaal"),
        ({"kanaal": "k" * 51}, "kanaal"),
        ({"authorization": None}, "authorization"),
        ({"authorization": "Token a\nb"}, "authorization"),
        ({"client_id": "lr", "secret": "s"}, "authorization"),
        ({"authorization": None, "client_id": "lr"}, "secret"),
        ({"authorization": None, "secret": "s"}, "client_id"),
        ({"timeout": -1}, "timeout"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(change: dict[str, Any], argument: str) -> None:
    with pytest.raises(lr.InvalidArgument) as refused:
        config(**({"url": "http://127.0.0.1/x"} | change))
    assert refused.value.argument == argument


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"URL": "http://x", "PROTOCOLS": "t", "AUTHORIZATION": "Token a"}, "RESOURCE_BASE"),
        ({"URL": "http://x", "RESOURCE_BASE": BASE, "AUTHORIZATION": "Token a"}, "PROTOCOLS"),
        ({"URL": "http://x", "RESOURCE_BASE": BASE, "PROTOCOLS": "t"}, "AUTHORIZATION"),
        ({"URLS": "police", "RESOURCE_BASE": BASE}, "URLS"),
        ({"URL": "http://x", "TIMEOUT": "soon"}, "TIMEOUT"),
        (
            {"URL": "http://x", "RESOURCE_BASE": BASE, "PROTOCOLS": "t", "CLIENT_ID": "c"},
            "SECRET",
        ),
    ],
)
def test_a_bad_environment_variable_is_named(env: dict[str, str], variable: str) -> None:
    with pytest.raises(lr.InvalidArgument) as refused:
        zgw.ZgwConfig.from_env({zgw.ENV + k: v for k, v in env.items()})
    assert refused.value.argument == zgw.ENV + variable


def test_without_environment_variables_it_is_not_in_use() -> None:
    assert zgw.ZgwConfig.from_env({"LASTRESORT_ZGW_KANAAL": "x"}) is None


def test_the_secret_is_not_in_the_config_repr() -> None:
    made = config("http://x", authorization=None, client_id="lr", secret="geheim")
    assert "geheim" not in repr(made)


def test_the_entry_point_delivers_for_the_protocols_its_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("URL", "URLS"):
        monkeypatch.delenv(zgw.ENV + name, raising=False)
    assert zgw.lastresort_delivers_for() == []  # not configured: delivers for nothing
    for name, value in {
        "URLS": "police=http://127.0.0.1:9/police",
        "RESOURCE_BASE": BASE,
        "PROTOCOLS": "utrecht,taskforce",
        "KANAAL": "last-resort",
        "CLIENT_ID": "lr",
        "SECRET": "geheim",
    }.items():
        monkeypatch.setenv(zgw.ENV + name, value)
    assert zgw.lastresort_delivers_for() == ["taskforce", "utrecht"]
    monkeypatch.setenv(zgw.ENV + "KANAAL", "Last Resort")  # wrong: every protocol, to fail loudly
    assert zgw.lastresort_delivers_for() == ["*"]
