"""Bad input never escapes the error contract (issue #12, item 8).

Every public entry point of the Engine and of both stores refuses a wrong type or an
out-of-range value with a :class:`lastresort.LastResortError` subclass that names the
parameter, before anything is read or written: the whole store is compared before and
after. Protocol durations are bounded at load, with a located problem, and
``lastresort check`` prints problems, never a traceback.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

import lastresort as lr
from lastresort.cli import main
from lastresort.store import Change
from tests.conftest import TASKFORCE
from tests.store_kit import RELAY, START, relay
from tests.test_store_contract import STORES, everything, opened

LEASE = timedelta(minutes=1)
NAIVE = datetime(2026, 3, 2, 12, 0)


def with_deadline(after: str, step: str = "desk") -> dict[str, Any]:
    data = copy.deepcopy(RELAY)
    data["steps"][step]["deadline"]["after"] = after
    return data


# -- durations are bounded at load -----------------------------------------------------


def test_a_deadline_of_three_million_days_is_refused_at_load_with_its_place() -> None:
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(with_deadline("3000000d"))
    assert caught.value.problems == [
        "$.steps.desk.deadline.after: 3000000d is too long; a protocol duration is at most 366d"
    ]


def test_the_bound_is_refused_without_validation_too() -> None:
    # `lastresort check` loads with check=False; the bound is structural like a malformed duration
    with pytest.raises(
        lr.ProtocolError, match=r"\$\.steps\.room\.deadline\.after: .* at most 366d"
    ):
        lr.load_protocol(with_deadline("P9000D", "room"), check=False)


def test_the_bound_itself_is_a_valid_deadline_and_one_day_more_is_not() -> None:
    assert lr.load_protocol(with_deadline("366d")).steps["desk"].deadline is not None
    with pytest.raises(lr.ProtocolError, match="at most 366d"):
        lr.load_protocol(with_deadline("367d"))
    with pytest.raises(lr.ProtocolError, match=r"deadline\.after: must be longer than zero"):
        lr.load_protocol(with_deadline("0s"))


@pytest.mark.parametrize(
    ("section", "value", "where"),
    [
        ("requirements", {"max_wait_for_expert": "400d"}, "$.requirements.max_wait_for_expert"),
        (
            "parties",
            {"response": {"median": "1d", "p90": "1000d"}},
            "$.parties.counter.response.p90",
        ),
    ],
)
def test_every_protocol_duration_is_bounded(
    section: str, value: dict[str, Any], where: str
) -> None:
    data = copy.deepcopy(RELAY)
    if section == "parties":
        data["parties"]["counter"].update(value)
    else:
        data[section] = value
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert any(p.startswith(f"{where}: ") and "at most 366d" in p for p in caught.value.problems)


def test_an_engine_refuses_a_protocol_object_with_an_unbounded_deadline() -> None:
    protocol = relay()
    desk = protocol.steps["desk"]
    assert desk.deadline is not None
    long = attrs.evolve(desk, deadline=attrs.evolve(desk.deadline, after=timedelta(days=3000000)))
    broken = attrs.evolve(protocol, steps={**protocol.steps, "desk": long})
    with pytest.raises(lr.ProtocolError, match=r"\$\.steps\.desk\.deadline\.after: .*at most 366d"):
        lr.Engine(protocols=[broken], entry_points=False)


# -- `lastresort check`: problems, never a traceback --------------------------------------


def _toml(data: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(data)


CHECK_INPUTS: dict[str, tuple[str, str, str]] = {
    # name: (file name, content, a problem that must be printed)
    "huge-deadline": (
        "huge.toml",
        _toml(with_deadline("3000000d")),
        "$.steps.desk.deadline.after: 3000000d is too long",
    ),
    "sum-overflows": (
        "overflow.toml",
        TASKFORCE.read_text(encoding="utf-8").replace('after = "45m"', 'after = "999999999d"'),
        "deadline.after: 999999999d is too long",
    ),
    "bad-toml": ("bad.toml", "[protocol\nid = ", "invalid TOML"),
    "bad-json": ("bad.json", "{ nope", "invalid JSON"),
    "wrong-types": ("types.toml", 'protocol = 5\nsteps = "x"\n', "$.protocol"),
    "not-a-table": ("list.json", "[1, 2]", "expected a table"),
    "binary": ("bin.toml", "\udcff", "cannot read"),
}


@pytest.mark.parametrize("case", sorted(CHECK_INPUTS))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_check_reports_an_unusable_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, as_json: bool
) -> None:
    name, content, expected = CHECK_INPUTS[case]
    path = tmp_path / name
    if case == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage")
    else:
        path.write_text(content, encoding="utf-8")
    code = main(["check", str(path), *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err
    if as_json:
        [found] = json.loads(out)["protocols"]
        assert found["usable"] is False
        assert any(expected in p for p in found["problems"]), found["problems"]
    else:
        assert expected in err, err


@pytest.mark.parametrize("target", ["missing.toml", "missing.json", "a-directory.toml"])
def test_check_reports_a_missing_or_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    (tmp_path / "a-directory.toml").mkdir()
    code = main(["check", str(tmp_path / target)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err
    assert target in err


def test_show_reports_a_huge_deadline_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.toml"
    path.write_text(_toml(with_deadline("3000000d")), encoding="utf-8")
    assert main(["show", str(path)]) == 2
    assert "at most 366d" in capsys.readouterr().err


# -- the Engine: wrong types are refused and change nothing ------------------------------


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Engine]:
    store: lr.Store = request.param(tmp_path)
    counter = iter(range(1000))
    eng = lr.Engine(
        protocols=[relay()],
        store=store,
        clock=lr.VirtualClock(START),
        entry_points=False,
        ids=lambda: f"enc-{next(counter)}",
    )
    # something in every table: a moved encounter, a due deadline, a due notification
    first = eng.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"})
    eng.fire(first.id, "go", lr.Actor("counter", "counter-1"))
    eng.open("relay", lr.Actor("counter", "counter-1"))
    yield eng
    store.close()


Call = Callable[[lr.Engine], object]

LATER = START + timedelta(hours=3)

ENGINE_CALLS: dict[str, tuple[Call, str]] = {
    # name: (the call, the parameter its error must name)
    "open facts list": (
        lambda e: e.open("relay", lr.Actor("counter", "counter-1"), facts=[("age_band", "0-7")]),
        "facts",
    ),  # type: ignore[arg-type]
    "open facts text": (
        lambda e: e.open("relay", lr.Actor("counter", "counter-1"), facts="age_band"),
        "facts",
    ),  # type: ignore[arg-type]
    "open actor list": (lambda e: e.open("relay", ["counter"]), "actor"),  # type: ignore[arg-type]
    "open actor None": (lambda e: e.open("relay", None), "actor"),  # type: ignore[arg-type]
    # an Actor with a list as role is refused when it is made (ActorRefused):
    # tests/faults/test_privacy.py::test_a_role_that_is_not_a_role_key_is_refused
    "open protocol list": (lambda e: e.open(["relay"], "counter"), "protocol_id"),  # type: ignore[arg-type]
    # a channel of the wrong type is a ChannelRefused like every undeclared channel:
    # tests/faults/test_privacy.py::test_channel_123_was_committed_and_broke_the_timeline
    "fire actor list": (lambda e: e.fire("enc-0", "back", ["counter"]), "actor"),  # type: ignore[arg-type]
    "fire event list": (lambda e: e.fire("enc-0", ["back"], "counter"), "event"),  # type: ignore[arg-type]
    "fire id list": (lambda e: e.fire(["enc-0"], "back", "counter"), "encounter_id"),  # type: ignore[arg-type]
    "fire version text": (
        lambda e: e.fire("enc-0", "back", lr.Actor("counter", "counter-1"), expected_version="2"),  # type: ignore[arg-type]
        "expected_version",
    ),
    "fire version bool": (
        lambda e: e.fire("enc-0", "back", lr.Actor("counter", "counter-1"), expected_version=True),
        "expected_version",
    ),
    "fire version float": (
        lambda e: e.fire("enc-0", "back", lr.Actor("counter", "counter-1"), expected_version=2.0),  # type: ignore[arg-type]
        "expected_version",
    ),
    "tick now text": (lambda e: e.tick(now="2026-03-02T13:00:00+01:00"), "now"),  # type: ignore[arg-type]
    "tick now naive": (lambda e: e.tick(now=NAIVE), "now"),
    "tick now date": (lambda e: e.tick(now=LATER.date()), "now"),  # type: ignore[arg-type]
    "tick limit huge": (lambda e: e.tick(now=LATER, limit=10**30), "limit"),
    "tick limit negative": (lambda e: e.tick(now=LATER, limit=-1), "limit"),
    "tick limit text": (lambda e: e.tick(now=LATER, limit="5"), "limit"),  # type: ignore[arg-type]
    "deliver limit huge": (lambda e: e.deliver(limit=10**30), "limit"),
    "deliver limit float": (lambda e: e.deliver(limit=1.0), "limit"),  # type: ignore[arg-type]
    "get list": (lambda e: e.get(["enc-0"]), "encounter_id"),  # type: ignore[arg-type]
    "get int": (lambda e: e.get(0), "encounter_id"),  # type: ignore[arg-type]
    "timeline list": (lambda e: e.timeline(["enc-0"]), "encounter_id"),  # type: ignore[arg-type]
    "deadlines list": (lambda e: e.deadlines(["enc-0"]), "encounter_id"),  # type: ignore[arg-type]
    "outbox int": (lambda e: e.outbox(0), "encounter_id"),  # type: ignore[arg-type]
    "allowed actor list": (lambda e: e.allowed("enc-0", ["counter"]), "actor"),  # type: ignore[arg-type]
    "allowed id None": (lambda e: e.allowed(None, "counter"), "encounter_id"),  # type: ignore[arg-type]
    "protocol list": (lambda e: e.protocol(["relay"]), "protocol_id"),  # type: ignore[arg-type]
    "on_duty naive": (lambda e: e.on_duty("relay", "counter", NAIVE), "at"),
    "on_duty party list": (lambda e: e.on_duty("relay", ["counter"]), "party"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", list(ENGINE_CALLS))
def test_a_wrong_argument_to_the_engine_is_refused_and_changes_nothing(
    engine: lr.Engine, name: str
) -> None:
    call, parameter = ENGINE_CALLS[name]
    before = everything(engine.store)
    with pytest.raises(lr.InvalidArgument) as caught:
        call(engine)
    assert caught.value.argument == parameter
    assert f"{parameter} must be" in str(caught.value)
    assert isinstance(caught.value, lr.LastResortError)
    assert everything(engine.store) == before
    # and the engine still works
    assert engine.tick(now=LATER) != []


def test_a_claim_limit_stays_a_value_error_for_existing_callers(engine: lr.Engine) -> None:
    with pytest.raises(ValueError, match=r"limit must be None or a whole number"):
        engine.deliver(limit=-1)


def test_facts_are_never_echoed_in_the_error(engine: lr.Engine) -> None:
    with pytest.raises(lr.InvalidArgument) as caught:
        engine.open("relay", lr.Actor("counter", "counter-1"), facts=[("naam", "Jan Jansen")])  # type: ignore[arg-type]
    assert "Jan" not in str(caught.value)


# -- the stores: the same refusals, the same error class --------------------------------


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Store]:
    made: lr.Store = request.param(tmp_path)
    eng = lr.Engine(
        protocols=[relay()], store=made, clock=lr.VirtualClock(START), entry_points=False
    )
    first = eng.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"})
    eng.fire(first.id, "go", lr.Actor("counter", "counter-1"))
    yield made
    made.close()


def _delivery(at: datetime) -> lr.NotificationDelivered:
    return lr.NotificationDelivered(
        encounter_id="x",
        at=at,
        actor=lr.Actor("outbox"),
        key="x:1:expert",
        party="expert",
        receipt="r",
        attempts=1,
    )


StoreCall = Callable[[lr.Store], object]

STORE_CALLS: dict[str, tuple[StoreCall, str]] = {
    "claim_deadlines naive now": (lambda s: s.claim_deadlines(NAIVE, LEASE), "now"),
    "claim_deadlines text now": (lambda s: s.claim_deadlines("now", LEASE), "now"),  # type: ignore[arg-type]
    "claim_deadlines lease int": (lambda s: s.claim_deadlines(LATER, 60), "lease"),  # type: ignore[arg-type]
    "claim_deadlines lease zero": (lambda s: s.claim_deadlines(LATER, timedelta(0)), "lease"),
    "claim_deadlines lease negative": (
        lambda s: s.claim_deadlines(LATER, -LEASE),
        "lease",
    ),
    "claim_deadlines lease huge": (
        lambda s: s.claim_deadlines(LATER, timedelta(days=10**6)),
        "lease",
    ),
    "claim_deadlines limit huge": (lambda s: s.claim_deadlines(LATER, LEASE, 10**30), "limit"),
    "claim_deadlines at the end of time": (
        lambda s: s.claim_deadlines(datetime.max.replace(tzinfo=START.tzinfo), LEASE),
        "now",
    ),
    "claim_outbox naive now": (lambda s: s.claim_outbox(NAIVE, LEASE), "now"),
    "claim_outbox lease int": (lambda s: s.claim_outbox(LATER, 60), "lease"),  # type: ignore[arg-type]
    "claim_outbox limit huge": (lambda s: s.claim_outbox(LATER, LEASE, 2**63), "limit"),
    "failed naive": (lambda s: s.failed("enc:2:expert", 1, NAIVE, "x"), "next_attempt_at"),
    "failed attempts text": (
        lambda s: s.failed("enc:2:expert", "1", LATER, "x"),  # type: ignore[arg-type]
        "attempts",
    ),
    "failed error bytes": (lambda s: s.failed("enc:2:expert", 1, LATER, b"x"), "error"),  # type: ignore[arg-type]
    "failed key list": (lambda s: s.failed(["k"], 1, LATER, "x"), "key"),  # type: ignore[arg-type]
    "delivered naive": (lambda s: s.delivered("x:1:expert", _delivery(NAIVE)), "event"),
    "delivered not an event": (lambda s: s.delivered("x:1:expert", "done"), "event"),  # type: ignore[arg-type]
    "load list": (lambda s: s.load(["x"]), "encounter_id"),  # type: ignore[arg-type]
    "load int": (lambda s: s.load(1), "encounter_id"),  # type: ignore[arg-type]
    "timeline None": (lambda s: s.timeline(None), "encounter_id"),  # type: ignore[arg-type]
    "deadlines list": (lambda s: s.deadlines(["x"]), "encounter_id"),  # type: ignore[arg-type]
    "release_deadline list": (lambda s: s.release_deadline(["x"]), "deadline_id"),  # type: ignore[arg-type]
    "outbox int": (lambda s: s.outbox(3), "encounter_id"),  # type: ignore[arg-type]
    "encounter_ids text": (lambda s: s.encounter_ids("yes"), "open_only"),  # type: ignore[arg-type]
    "commit a dict": (lambda s: s.commit({}), "change"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", list(STORE_CALLS))
def test_a_wrong_argument_to_a_store_is_refused_alike_and_changes_nothing(
    store: lr.Store, name: str
) -> None:
    call, parameter = STORE_CALLS[name]
    before = everything(store)
    with pytest.raises(lr.InvalidArgument) as caught:
        call(store)
    assert caught.value.argument == parameter
    assert f"{parameter} must be" in str(caught.value)
    assert everything(store) == before


def _new(eid: str, opened_at: datetime = START, at: datetime = START, **kw: Any) -> Change:
    return Change(
        encounter=lr.Encounter(
            id=eid,
            protocol="relay",
            protocol_version="1",
            state="desk",
            responsible="counter",
            facts={},
            version=1,
            opened_at=opened_at,
        ),
        expected_version=None,
        events=[attrs.evolve(opened(eid), at=at)],
        **kw,
    )


NAIVE_CHANGES: dict[str, Change] = {
    "opened_at": _new("n1", opened_at=NAIVE),
    "event at": _new("n2", at=NAIVE),
    "deadline due": _new(
        "n3",
        schedule=[lr.PendingDeadline(id="d", encounter_id="n3", step="desk", event="e", due=NAIVE)],
    ),
    "notification created_at": _new(
        "n4",
        outbox=[
            lr.Notification(
                key="k",
                encounter_id="n4",
                protocol="relay",
                event="go",
                step="room",
                party="expert",
                created_at=NAIVE,
                next_attempt_at=START,
            )
        ],
    ),
}


@pytest.mark.parametrize("name", list(NAIVE_CHANGES))
def test_a_change_with_a_time_without_zone_is_refused_by_both_stores(
    store: lr.Store, name: str
) -> None:
    before = everything(store)
    with pytest.raises(lr.StoreError, match="has no time zone"):
        store.commit(NAIVE_CHANGES[name])
    assert everything(store) == before


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"protocols": 123}, "protocols"),
        ({"protocols": "taskforce"}, "protocols"),
        ({"protocols": [123]}, "protocols"),
        ({"plugins": 123}, "plugins"),
        ({"store": 123}, "store"),
        ({"store": "engine.db"}, "store"),
        ({"clock": 123}, "clock"),
    ],
)
def test_a_wrong_collaborator_given_to_the_engine_is_refused(
    kwargs: dict[str, Any], argument: str
) -> None:
    with pytest.raises(lr.InvalidArgument) as caught:
        lr.Engine(entry_points=False, **kwargs)
    assert caught.value.argument == argument
    assert f"{argument} must be" in str(caught.value)


def test_the_engine_reads_a_generator_of_protocols_once() -> None:
    protocol = lr.load_protocol(TASKFORCE)
    eng = lr.Engine(protocols=(p for p in [protocol]), entry_points=False)
    assert list(eng.protocols) == ["taskforce"]


def test_a_sqlite_store_path_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(lr.InvalidArgument, match="path must be a file path"):
        lr.SQLiteStore(123)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_purge_with_a_dry_run_that_is_not_a_flag_is_refused(tmp_path: Path) -> None:
    store = lr.SQLiteStore(tmp_path / "s.db")
    try:
        with pytest.raises(lr.InvalidArgument, match="dry_run must be True or False"):
            store.purge_facts(datetime(2030, 1, 1, tzinfo=UTC), dry_run="x")  # type: ignore[arg-type]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "kwargs", "argument"),
    [
        ((123,), {}, "protocol"),
        (("taskforce",), {}, "protocol"),
        ((None,), {}, "protocol"),
        (("P",), {"extra_properties": 5}, "extra_properties"),
        (("P",), {"extra_properties": [5]}, "extra_properties"),
        (("P",), {"max_examples": 0}, "max_examples"),
    ],
)
def test_verify_refuses_a_wrong_argument_with_invalid_argument(
    args: tuple[Any, ...], kwargs: dict[str, Any], argument: str
) -> None:
    protocol = lr.load_protocol(TASKFORCE)
    args = tuple(protocol if a == "P" else a for a in args)
    with pytest.raises(lr.InvalidArgument) as caught:
        lr.verify(*args, **kwargs)
    assert caught.value.argument == argument
