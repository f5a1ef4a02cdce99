"""lastresort-cloudevents against a real HTTP receiver on 127.0.0.1 (issue 16): each
answer class mapped onto the outbox's retries, the body validated against the
CloudEvents 1.0 JSON schema, no personal data, both stores."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import lastresort_cloudevents as ce
import pytest

import lastresort as lr
from lastresort.privacy import ROLE, is_bsn
from lastresort.testing import HANG, Reply, WebhookReceiver
from lastresort.testing import webhook_receiver as receiver

#: The CloudEvents 1.0 JSON format as a JSON Schema, written from the spec
#: (cloudevents/spec, "JSON Event Format" and the core attributes): the required
#: attributes, the optional ones with their types, extension names of lowercase
#: letters and digits, at most 20.
CLOUDEVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1, "format": "uri-reference"},
        "type": {"type": "string", "minLength": 1},
        "subject": {"type": "string", "minLength": 1},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string", "minLength": 1},
        "dataschema": {"type": "string", "format": "uri"},
        "data": {},
        "data_base64": {"type": "string"},
        # the sequence extension: a string ordering the events of a source
        "sequence": {"type": "string", "minLength": 1},
    },
    "propertyNames": {"pattern": "^([a-z0-9]{1,20}|data_base64)$"},
    "not": {"required": ["data", "data_base64"]},
}

#: what lastresort-cloudevents promises on top: the NL GOV source, a reverse-DNS type,
#: the data with the four keys and nothing else
LASTRESORT_EVENT = {
    "type": "object",
    "required": ["subject", "time", "sequence", "datacontenttype", "data"],
    "properties": {
        "source": {"pattern": "^urn:nld:"},
        "type": {"pattern": r"^nl\.utrecht\.lastresort\.[a-z_]+(\.escalated)?$"},
        "time": {"pattern": r"Z$"},
        "sequence": {"pattern": r"^[0-9]{12}$"},
        "datacontenttype": {"const": "application/json"},
        "data": {
            "type": "object",
            "additionalProperties": False,
            "required": ["protocol", "step", "party", "escalation"],
            "properties": {
                "protocol": {"type": "string"},
                "step": {"type": "string"},
                "party": {"type": "string"},
                "escalation": {"type": "boolean"},
            },
        },
    },
}

START = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
# delivery mechanics on the frozen 2014 reference protocol of the main test suite (its header
# says why): the shipped taskforce protocol is revised with the domain
TASKFORCE = Path(__file__).resolve().parents[3] / "tests" / "protocols" / "taskforce-2014.toml"
SOURCE = "urn:nld:oin:00000001001234567000:systeem:lastresort"
FACTS: dict[str, str | bool] = {"age_band": "12-15", "disclosure": True, "accompanied": False}


def check_body(body: Any) -> None:
    jsonschema.validate(body, CLOUDEVENT_SCHEMA, format_checker=jsonschema.FormatChecker())
    jsonschema.validate(body, LASTRESORT_EVENT)
    datetime.fromisoformat(body["time"])  # RFC 3339, whether or not a checker is installed
    # lastresort.privacy's rules: only role-like keys and flags, no free text, no BSN
    for value in body["data"].values():
        assert isinstance(value, bool) or ROLE.fullmatch(value), value
        assert not is_bsn(str(value))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Store]:
    made: lr.Store = (
        lr.MemoryStore() if request.param == "memory" else lr.SQLiteStore(tmp_path / "ce.db")
    )
    yield made
    made.close()


def config(url: str | None, **kw: Any) -> ce.CloudEventsConfig:
    settings: dict[str, Any] = {
        "source": SOURCE,
        "type_prefix": "nl.utrecht.lastresort",
        "protocols": {"taskforce"},
        "url": url,
        "timeout": 5.0,
    }
    settings.update(kw)
    return ce.CloudEventsConfig(**settings)


def police(url: str, **kw: Any) -> ce.CloudEventsConfig:
    """Webhooks for the police and the counter clerk (who is told when the police
    cannot be reached) only: the mayor's staff is left to the core's log."""
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
    """An encounter in acute danger at once: the police and the mayor's staff are
    notified (with :func:`police`, only the police's goes to the receiver)."""
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1"), FACTS).id
    eng.fire(eid, "acute_danger", lr.Actor("counter", "counter-1"))
    assert sorted(n.party for n in eng.outbox(eid)) == ["mayor_staff", "police"]
    return eid


def the(eng: lr.Engine, eid: str, party: str = "police") -> lr.Notification:
    return next(n for n in eng.outbox(eid) if n.party == party and n.escalates is None)


def police_events(events: list[lr.Event]) -> list[lr.Event]:
    """The outbox events about the police's notification (not the mayor's staff's)."""
    return [e for e in events if getattr(e, "party", None) == "police"]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


# -- success ---------------------------------------------------------------------------


def test_a_notification_is_posted_as_a_structured_cloudevent(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    with receiver() as rx:
        plugin = ce.CloudEventsDelivery(config(rx.url + "/hook", authorization="Bearer t0k"))
        eng = engine(store, clock, plugin)
        eid = eng.open("taskforce", lr.Actor("counter", "counter-1"), FACTS).id
        eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
        out = eng.deliver()
        plugin.close()
    [delivered] = [e for e in out if isinstance(e, lr.NotificationDelivered)]
    assert delivered.receipt == "cloudevents 202"
    note = the(eng, eid, "expert")
    assert note.delivered_at is not None
    [got] = rx.received
    assert got.path == "/hook"
    assert got.headers["content-type"] == "application/cloudevents+json"
    assert got.headers["authorization"] == "Bearer t0k"
    assert got.headers["idempotency-key"] == note.key
    body = got.json()
    check_body(body)
    assert body["id"] == note.key
    assert body["source"] == SOURCE
    assert body["type"] == "nl.utrecht.lastresort.call_expert"
    assert body["subject"] == eid
    assert body["time"] == "2026-03-02T09:00:00Z"  # 10:00 in Amsterdam, in UTC
    assert body["sequence"] == "000000000002"  # the encounter's version 2
    assert body["data"] == {
        "protocol": "taskforce",
        "step": "awaiting_expert",
        "party": "expert",
        "escalation": False,
    }


def test_the_body_holds_no_personal_data(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)

    class Directory:  # the on-duty contact must not travel either
        @lr.hookimpl
        def lastresort_party_directory(self) -> str:
            return "j.de.vries@example.nl"

    with receiver() as rx:
        eng = engine(store, clock, ce.CloudEventsDelivery(config(rx.url)), Directory())
        eid = eng.open("taskforce", lr.Actor("counter", "counter-1"), FACTS).id
        eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
        eng.fire(eid, "acute_danger", lr.Actor("counter", "counter-1"))
        eng.deliver()
    raw = b"".join(r.body for r in rx.received).decode()
    assert len(rx.received) == 3  # expert, police, mayor's staff
    for name, value in FACTS.items():
        assert name not in raw
        assert str(value) not in raw
    assert "vries" not in raw
    assert "@" not in raw
    for body in rx.bodies():
        check_body(body)


# -- transient: retried, then delivered, with the same id -----------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_a_transient_status_is_retried_then_delivered_with_the_same_id(
    store: lr.Store, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = lr.VirtualClock(START)
    with receiver(Reply(status)) as rx:
        eng = engine(store, clock, ce.CloudEventsDelivery(police(rx.url)))
        eid = police_only(eng)
        assert police_events(eng.deliver()) == []
        note = the(eng, eid)
        assert (note.attempts, note.pending) == (1, True)
        assert note.last_error is not None
        assert note.last_error.startswith("DeliveryDeferred")
        assert f"HTTP {status} from the receiver of police" in caplog.text
        assert note.next_attempt_at == clock.now() + timedelta(seconds=30)  # the backoff
        clock.advance(timedelta(seconds=30))
        [delivered] = police_events(eng.deliver())
    assert isinstance(delivered, lr.NotificationDelivered)
    assert delivered.attempts == 2
    first, second = rx.bodies()
    assert first == second  # receivers drop the repeat by id
    assert first["id"] == the(eng, eid).key


def test_retry_after_is_honoured(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    with receiver(Reply(503, {"Retry-After": "600"}), Reply(429, {"Retry-After": "5"})) as rx:
        eng = engine(store, clock, ce.CloudEventsDelivery(police(rx.url)))
        eid = police_only(eng)
        eng.deliver()
        assert the(eng, eid).next_attempt_at == clock.now() + timedelta(minutes=10)
        clock.advance(timedelta(minutes=9))
        assert eng.deliver() == []
        assert len(rx.received) == 1  # not before Retry-After
        clock.advance(timedelta(minutes=1))
        eng.deliver()  # 429, Retry-After 5 s: shorter than the backoff's 60 s
        assert the(eng, eid).next_attempt_at == clock.now() + timedelta(seconds=60)
        clock.advance(timedelta(seconds=60))
        eng.deliver()
    assert len(rx.received) == 3
    assert the(eng, eid).delivered_at is not None


def test_a_refused_connection_is_retried(store: lr.Store, caplog: pytest.LogCaptureFixture) -> None:
    clock = lr.VirtualClock(START)
    eng = engine(store, clock, ce.CloudEventsDelivery(police(closed_port_url())))
    eid = police_only(eng)
    eng.deliver()
    note = the(eng, eid)
    assert (note.attempts, note.pending) == (1, True)
    assert note.last_error is not None
    assert note.last_error.startswith("DeliveryDeferred")
    assert "ConnectError reaching the receiver of police" in caplog.text


def test_a_receiver_slower_than_the_plugin_timeout_is_retried(
    store: lr.Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = lr.VirtualClock(START)
    with receiver(HANG) as rx:
        eng = engine(store, clock, ce.CloudEventsDelivery(police(rx.url, timeout=0.2)))
        eid = police_only(eng)
        eng.deliver()
        note = the(eng, eid)
        # the outbox keeps the type only (a hook's message is never stored); the plugin
        # logs its reason
        assert note.last_error == "DeliveryDeferred"
        assert "no answer within 0.2 s from the receiver of police" in caplog.text
        clock.advance(timedelta(seconds=30))
        eng.deliver()  # the next answer is a 202
    assert the(eng, eid).delivered_at is not None
    assert len(rx.received) == 2


def test_a_hanging_receiver_is_cut_off_by_the_outbox_delivery_timeout(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    with receiver(HANG) as rx:
        plugin = ce.CloudEventsDelivery(police(rx.url, timeout=60.0))  # longer than the outbox's
        eng = engine(store, clock, plugin, delivery_timeout=0.2)
        eid = police_only(eng)
        assert police_events(eng.deliver()) == []
        assert rx.hanging.is_set()
        note = the(eng, eid)
        assert note.attempts == 1
        assert note.pending
        assert note.last_error is not None
        assert note.last_error.startswith("DeliveryTimeout")


def test_a_transient_failure_that_never_passes_is_dead_lettered_after_max_attempts(
    store: lr.Store,
) -> None:
    clock = lr.VirtualClock(START)
    with receiver(*[Reply(503)] * 3) as rx:
        eng = engine(store, clock, ce.CloudEventsDelivery(police(rx.url)), max_attempts=3)
        eid = police_only(eng)
        for _ in range(3):
            eng.deliver()
            clock.advance(timedelta(hours=1))
        note = the(eng, eid)
    assert (note.attempts, note.dead_lettered_at is not None) == (3, True)
    escalation = next(n for n in eng.outbox(eid) if n.escalates == note.key)
    assert escalation.delivered_at is not None  # the counter clerk, by the same webhook
    *_, body = rx.bodies()
    check_body(body)
    assert body["type"] == "nl.utrecht.lastresort.acute_danger.escalated"
    assert body["data"]["escalation"] is True
    assert body["data"]["party"] == "counter"


# -- permanent: dead-lettered at once -------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422, 301])
def test_a_permanent_status_is_dead_lettered_at_once_and_escalated(
    store: lr.Store, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = lr.VirtualClock(START)
    with receiver(Reply(status, {"Location": "/elsewhere"} if status == 301 else {})) as rx:
        eng = engine(store, clock, ce.CloudEventsDelivery(police(rx.url)))
        eid = police_only(eng)
        out = eng.deliver()
    [dead] = [e for e in out if isinstance(e, lr.NotificationDeadLettered)]
    assert (dead.party, dead.attempts, dead.error_kind, dead.emergency) == (
        "police",
        1,
        "DeliveryRefused",
        True,
    )
    note = the(eng, eid)
    assert note.last_error == "DeliveryRefused"  # the type only, as for every dead letter
    assert f"HTTP {status} from the receiver of police" in caplog.text  # the plugin says why
    escalation = next(n for n in eng.outbox(eid) if n.escalates == note.key)
    assert escalation.party == "counter"
    assert escalation.delivered_at is not None  # the next POST got the default 202
    assert [b["id"] for b in rx.bodies()] == [note.key, escalation.key]


# -- which notifications it takes ------------------------------------------------------


def test_it_delivers_only_the_protocols_it_is_configured_for(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    with receiver() as rx:
        eng = engine(store, clock, ce.CloudEventsDelivery(police(rx.url, protocols={"utrecht"})))
        police_only(eng)
        out = eng.deliver()
    assert [(e.kind, e.receipt) for e in out] == [("NotificationDelivered", "log")] * 2  # type: ignore[attr-defined]
    assert rx.received == []


def test_a_party_without_a_webhook_is_left_to_the_next_plugin(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    with receiver() as rx:
        eng = engine(
            store,
            clock,
            ce.CloudEventsDelivery(config(None, urls={"police": rx.url + "/meldkamer"})),
        )
        eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
        eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
        eng.fire(eid, "acute_danger", lr.Actor("counter", "counter-1"))
        out = eng.deliver()
    receipts = {e.party: e.receipt for e in out if isinstance(e, lr.NotificationDelivered)}
    assert receipts == {"expert": "log", "police": "cloudevents 202", "mayor_staff": "log"}
    assert [r.path for r in rx.received] == ["/meldkamer"]


def test_the_installed_entry_point_is_configured_by_environment_variables(
    store: lr.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = lr.VirtualClock(START)
    with receiver() as rx:
        for name, value in {
            "URL": rx.url + "/env",
            "SOURCE": SOURCE,
            "TYPE_PREFIX": "nl.utrecht.lastresort",
            "PROTOCOLS": "taskforce, utrecht",
            "TIMEOUT": "5",
        }.items():
            monkeypatch.setenv(ce.ENV + name, value)
        eng = lr.Engine(
            protocols=[lr.load_protocol(TASKFORCE)], store=store, clock=clock
        )  # entry points on: the installed plugin
        police_only(eng)
        out = eng.deliver()
    receipts = {e.party: e.receipt for e in out if isinstance(e, lr.NotificationDelivered)}
    assert receipts == {"police": "cloudevents 202", "mayor_staff": "cloudevents 202"}
    got, _ = rx.received
    assert got.path == "/env"
    check_body(got.json())


def test_without_environment_variables_the_entry_point_delivers_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("URL", "URLS"):
        monkeypatch.delenv(ce.ENV + name, raising=False)
    note = lr.Notification(
        key="e:v1:x:police",
        encounter_id="e",
        protocol="taskforce",
        event="x",
        step="s",
        party="police",
        created_at=START,
        next_attempt_at=START,
    )
    assert ce.lastresort_deliver(note) is None


# -- configuration errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"source": "not a uri"}, "source"),
        ({"source": ""}, "source"),
        ({"type_prefix": "Utrecht"}, "type_prefix"),
        ({"type_prefix": "nl..x"}, "type_prefix"),
        ({"protocols": set()}, "protocols"),
        ({"protocols": "taskforce"}, "protocols"),
        ({"url": "ftp://x"}, "url"),
        ({"url": None}, "url"),
        ({"urls": {"police": "nope"}}, "urls[police]"),
        ({"urls": {"a b": "http://x"}}, "urls"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"authorization": "Bearer x\r\nX-Evil: 1"}, "authorization"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(change: dict[str, Any], argument: str) -> None:
    with pytest.raises(lr.InvalidArgument) as refused:
        config(**({"url": "http://127.0.0.1/hook"} | change))
    assert refused.value.argument == argument


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"URL": "http://x", "TYPE_PREFIX": "nl.a.b", "PROTOCOLS": "taskforce"}, "SOURCE"),
        ({"URL": "http://x", "SOURCE": SOURCE, "PROTOCOLS": "taskforce"}, "TYPE_PREFIX"),
        ({"URL": "http://x", "SOURCE": SOURCE, "TYPE_PREFIX": "nl.a.b"}, "PROTOCOLS"),
        ({"URLS": "police", "SOURCE": SOURCE}, "URLS"),
        (
            {"URL": "http://x", "SOURCE": SOURCE, "TYPE_PREFIX": "nl.a.b", "PROTOCOLS": "t"}
            | {"TIMEOUT": "soon"},
            "TIMEOUT",
        ),
        ({"URLS": "police=gopher://x", "SOURCE": SOURCE, "TYPE_PREFIX": "nl.a.b"}, "PROTOCOLS"),
    ],
)
def test_a_bad_environment_variable_is_named(env: dict[str, str], variable: str) -> None:
    with pytest.raises(lr.InvalidArgument) as refused:
        ce.CloudEventsConfig.from_env({ce.ENV + k: v for k, v in env.items()})
    assert refused.value.argument == ce.ENV + variable


def test_a_misconfigured_entry_point_fails_the_attempt_and_is_never_silent(
    store: lr.Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ce.ENV + "URL", "http://127.0.0.1/hook")  # SOURCE and the rest missing
    clock = lr.VirtualClock(START)
    eng = lr.Engine(protocols=[lr.load_protocol(TASKFORCE)], store=store, clock=clock)
    eid = police_only(eng)
    eng.deliver()
    note = the(eng, eid)
    assert (note.attempts, note.pending) == (1, True)
    assert note.last_error is not None
    assert note.last_error.startswith("InvalidArgument")
    assert ce.ENV + "PROTOCOLS" in caplog.text or ce.ENV + "SOURCE" in caplog.text


def test_the_env_and_object_configurations_agree() -> None:
    made = ce.CloudEventsConfig.from_env(
        {
            ce.ENV + "URLS": "police=http://a/1, expert=http://b/2",
            ce.ENV + "SOURCE": SOURCE,
            ce.ENV + "TYPE_PREFIX": "nl.utrecht.lastresort",
            ce.ENV + "PROTOCOLS": "taskforce,utrecht",
            ce.ENV + "AUTHORIZATION": "Token abc",
        }
    )
    assert made == ce.CloudEventsConfig(
        source=SOURCE,
        type_prefix="nl.utrecht.lastresort",
        protocols=frozenset({"taskforce", "utrecht"}),
        urls={"police": "http://a/1", "expert": "http://b/2"},
        authorization="Token abc",
    )
    assert made is not None
    assert made.webhook("police") == "http://a/1"
    assert made.webhook("mayor") is None


def test_the_receiver_helper_records_what_it_was_sent() -> None:
    import httpx

    with receiver(Reply(418)) as rx:
        assert httpx.post(rx.url + "/x", content=b'{"a":1}').status_code == 418
        assert httpx.post(rx.url + "/y", content=b"{}").status_code == 202
    assert [(r.path, r.json()) for r in rx.received] == [("/x", {"a": 1}), ("/y", {})]
    assert isinstance(rx, WebhookReceiver)


NOW = datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("UTC"))  # the night clocks go back


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("120", timedelta(seconds=120)),
        (" 7 ", timedelta(seconds=7)),
        ("Sun, 25 Oct 2026 01:32:00 GMT", timedelta(minutes=2)),
        (None, None),
        ("", None),
        ("0", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("Sun, 25 Oct 2026 01:00:00 GMT", None),  # in the past
        (str(400 * 86400), None),  # beyond any retry the outbox allows
        ("٣", None),  # a non-ASCII digit is not a number of seconds
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(
    header: str | None, wait: timedelta | None
) -> None:
    from lastresort_cloudevents._http import retry_after

    assert retry_after(header, NOW) == wait


def test_an_http_date_retry_after_is_honoured_through_the_outbox(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    later = (datetime.now(ZoneInfo("UTC")) + timedelta(minutes=20)).strftime(
        "%a, %d %b %Y %H:%M:%S GMT"
    )
    with receiver(Reply(503, {"Retry-After": later})) as rx:
        eng = engine(store, clock, ce.CloudEventsDelivery(police(rx.url)))
        eid = police_only(eng)
        eng.deliver()
    wait = the(eng, eid).next_attempt_at - clock.now()
    assert timedelta(minutes=18) < wait <= timedelta(minutes=20)  # the date, in real time


def test_two_workers_sharing_one_plugin_deliver_every_notification_once(tmp_path: Path) -> None:
    import threading

    clock = lr.VirtualClock(START)
    with receiver() as rx:
        plugin = ce.CloudEventsDelivery(config(rx.url))
        first = engine(lr.SQLiteStore(tmp_path / "two.db"), clock, plugin)
        second = engine(lr.SQLiteStore(tmp_path / "two.db"), clock, plugin)
        expected = set()
        for _ in range(20):
            eid = first.open("taskforce", lr.Actor("counter", "counter-1")).id
            first.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
            expected |= {n.key for n in first.outbox(eid)}
        start = threading.Barrier(2)
        results: list[list[lr.Event]] = []

        def work(eng: lr.Engine) -> None:
            start.wait()
            results.append(eng.deliver())

        threads = [threading.Thread(target=work, args=(e,)) for e in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        plugin.close()
        first.store.close()
        second.store.close()
    delivered = [e.key for out in results for e in out if isinstance(e, lr.NotificationDelivered)]
    ids = [b["id"] for b in rx.bodies()]
    assert len(expected) == 20
    assert sorted(delivered) == sorted(expected)
    assert sorted(ids) == sorted(expected)  # each posted once, by one worker or the other


def test_the_entry_point_delivers_for_the_protocols_its_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("URL", "URLS"):
        monkeypatch.delenv(ce.ENV + name, raising=False)
    assert ce.lastresort_delivers_for() == []  # not configured: delivers for nothing
    for name, value in {
        "URL": "http://127.0.0.1:9/hook",
        "SOURCE": SOURCE,
        "TYPE_PREFIX": "nl.utrecht.lastresort",
        "PROTOCOLS": "utrecht, taskforce",
    }.items():
        monkeypatch.setenv(ce.ENV + name, value)
    assert ce.lastresort_delivers_for() == ["taskforce", "utrecht"]
    # a wrong setting: every protocol, so each notification fails naming the variable and
    # is retried and escalated, never logged as delivered
    monkeypatch.setenv(ce.ENV + "TIMEOUT", "soon")
    assert ce.lastresort_delivers_for() == ["*"]
