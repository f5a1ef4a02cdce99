"""Public JSON (lr.to_json / lr.from_json): every exchanged value round-trips, every
field is present (null included), and bad input is refused naming the path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lastresort as lr
from lastresort.scenario.demo import run_demo
from lastresort.store.base import PendingDeadline


@pytest.fixture(scope="module")
def demo() -> Any:
    return run_demo()


def test_every_value_of_a_demo_round_trips_through_json_text(demo: Any) -> None:
    engine = demo.engine
    eid = demo.encounter_id
    values: list[Any] = [engine.get(eid), *engine.timeline(eid), *engine.outbox(eid)]
    kinds = {type(v).__name__ for v in values}
    assert {"Encounter", "StepEntered", "DeadlineMissed", "Notification"} <= kinds
    for value in values:
        text = json.dumps(lr.to_json(value))
        cls = lr.Event if isinstance(value, lr.Event) else type(value)
        assert lr.from_json(json.loads(text), cls) == value


def test_every_field_is_present_even_at_its_default(demo: Any) -> None:
    notification = demo.engine.outbox(demo.encounter_id)[0]
    data = lr.to_json(notification)
    assert set(data) == {
        "key", "encounter_id", "protocol", "event", "step", "party", "created_at", "attempts",
        "next_attempt_at", "contact", "last_error", "delivered_at", "dead_lettered_at",
    }  # fmt: skip
    assert data["contact"] is None
    assert data["last_error"] is None
    encounter = lr.to_json(demo.engine.get(demo.encounter_id))
    assert encounter["channel"] == "counter"  # a default, still written
    assert encounter["opened_at"].endswith("+01:00")  # ISO 8601 with its offset


moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
ids = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True)


@given(id=ids, step=ids, event=ids, due=moments)
@settings(max_examples=50, deadline=None)
def test_pending_deadlines_round_trip(id: str, step: str, event: str, due: datetime) -> None:
    deadline = PendingDeadline(id=id, encounter_id=id, step=step, event=event, due=due)
    assert lr.from_json(lr.to_json(deadline), PendingDeadline) == deadline


@given(role=ids, actor_id=st.none() | ids, at=moments, version=st.integers(1, 10**6))
@settings(max_examples=50, deadline=None)
def test_events_round_trip(role: str, actor_id: str | None, at: datetime, version: int) -> None:
    event = lr.StepEntered(
        encounter_id="e1",
        seq=version,
        at=at,
        actor=lr.Actor(role, actor_id),
        event="go",
        from_step="a",
        step="b",
        responsible=role,
    )
    data = lr.to_json(event)
    assert data["kind"] == "StepEntered"
    assert lr.from_json(data, lr.Event) == event
    assert lr.from_json(data, lr.StepEntered) == event


def test_bad_input_is_refused_naming_the_path(demo: Any) -> None:
    data = lr.to_json(demo.engine.get(demo.encounter_id))
    with pytest.raises(lr.InvalidArgument, match=r"\$\.version"):
        lr.from_json({**data, "version": "eight"}, lr.Encounter)
    with pytest.raises(lr.InvalidArgument, match=r"\$\.kind: not an event kind"):
        lr.from_json({"kind": "Nonsense"}, lr.Event)
    step = lr.to_json(demo.timeline[3])
    with pytest.raises(lr.InvalidArgument, match="not a DeadlineMissed"):
        lr.from_json(step, lr.DeadlineMissed)
    with pytest.raises(lr.InvalidArgument, match="a JSON object"):
        lr.from_json([1, 2], lr.Encounter)  # type: ignore[arg-type]
    with pytest.raises(lr.InvalidArgument, match="not dict"):
        lr.from_json(data, dict)
    with pytest.raises(lr.InvalidArgument, match="not str"):
        lr.to_json("an encounter")


def test_an_error_never_quotes_the_facts() -> None:
    data = {
        "id": "e1",
        "protocol": "taskforce",
        "protocol_version": "1",
        "state": "arrived",
        "responsible": "counter",
        "facts": {"age_band": "12-15"},
        "version": "Jantje de Vries",
        "opened_at": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta()).isoformat(),
        "closed_at": None,
        "channel": "counter",
    }
    with pytest.raises(lr.InvalidArgument) as caught:
        lr.from_json(data, lr.Encounter)
    assert "Jantje" not in str(caught.value)
