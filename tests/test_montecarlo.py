"""Monte Carlo comparison: KPIs on a hand-checkable protocol, determinism across
worker counts, common random numbers, arrivals, capacity, no-shows, hours, guards,
and errors that change nothing."""

from __future__ import annotations

import gc
import json
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

import lastresort as lr
from lastresort.protocol.hours import Hours
from lastresort.simulate import (
    MonteCarloResult,
    SimulationConfig,
    SimulationConfigError,
    dump_config,
    load_config,
    monte_carlo,
    runner,
)
from lastresort.simulate.arrivals import Child, Describer, children, describe

AMS = ZoneInfo("Europe/Amsterdam")


def text(en: str) -> dict[str, str]:
    return {"nl": en, "en": en}


def tiny(
    pid: str = "tiny",
    *,
    expert: str = "20m",
    expert_extra: dict[str, Any] | None = None,
    mayor_hours: str = "always",
    counter_hours: str = "always",
    guard: str | None = None,
    escalation_guard: str | None = None,
) -> lr.Protocol:
    """A protocol whose parties always take exactly their median (p90 = median).

    :param guard: a guard on ``report``; ``escalation_guard`` one on the clock's
        ``expert_overdue``.
    """
    parties = {
        "counter": {
            "name": text("Counter"),
            "kind": "municipal_staff",
            "hours": counter_hours,
            "response": {"median": "2m", "p90": "2m"},
        },
        "expert": {
            "name": text("Expert"),
            "kind": "expert",
            "response": {"median": expert, "p90": expert},
            **(expert_extra or {}),
        },
        "mayor": {
            "name": text("Mayor"),
            "kind": "mayor",
            "hours": mayor_hours,
            "response": {"median": "1h", "p90": "1h"},
        },
        "police": {
            "name": text("Police"),
            "kind": "emergency",
            "response": {"median": "5m", "p90": "5m"},
        },
    }

    def step(responsible: str | None, kind: str, tags: list[str], **more: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": kind, "tags": tags, "instructions": text("Do it.")}
        if responsible:
            out["responsible"] = responsible
        out.update(more)
        return out

    steps = {
        "arrived": step(
            "counter",
            "active",
            ["child_present"],
            deadline={"after": "10m", "event": "expert_not_called"},
        ),
        "awaiting_expert": step(
            "counter",
            "waiting",
            ["child_present"],
            deadline={"after": "30m", "event": "expert_overdue"},
        ),
        "escalated": step(
            "counter",
            "waiting",
            ["child_present", "escalated"],
            deadline={"after": "30m", "event": "no_expert"},
        ),
        "with_expert": step("expert", "active", ["child_with_expert"]),
        "with_mayor": step("expert", "active", ["child_with_expert", "mayor_involved"]),
        "reported": step("expert", "active", ["child_with_expert", "mayor_involved", "reported"]),
        "closed": step(None, "terminal", ["safe_arrangement"]),
        "with_police": step("police", "terminal", ["emergency"]),
    }
    report: dict[str, Any] = {"event": "report", "from": ["with_mayor"], "to": "reported"}
    report["by"] = ["expert"]
    if guard:
        report["guard"] = guard
    transitions = [
        {"event": "call_expert", "from": ["arrived"], "to": "awaiting_expert", "by": ["counter"]},
        {
            "event": "expert_not_called",
            "from": ["arrived"],
            "to": "awaiting_expert",
            "by": ["clock"],
        },
        {
            "event": "expert_takes_over",
            "from": ["awaiting_expert", "escalated"],
            "to": "with_expert",
            "by": ["expert"],
        },
        {
            "event": "expert_overdue",
            "from": ["awaiting_expert"],
            "to": "escalated",
            "by": ["clock"],
            **({"guard": escalation_guard} if escalation_guard else {}),
        },
        {"event": "no_expert", "from": ["escalated"], "to": "with_police", "by": ["clock"]},
        {"event": "mayor_meets", "from": ["with_expert"], "to": "with_mayor", "by": ["mayor"]},
        report,
        {"event": "close", "from": ["reported"], "to": "closed", "by": ["expert"]},
        {"event": "acute_danger", "from": "*", "to": "with_police", "by": ["counter", "expert"]},
    ]
    return lr.load_protocol(
        {
            "protocol": {
                "id": pid,
                "version": "1",
                "municipality": "Test",
                "title": text("Tiny"),
                "initial": "arrived",
                "source": "tests",
            },
            "parties": parties,
            "steps": steps,
            "transitions": transitions,
            "facts": {"age_band": ["0-7", "8-11", "12-15", "16-17"], "disclosure": "bool"},
            "requirements": {
                "mayor_contact": True,
                "max_wait_for_expert": "25m",
                "report_before_close": True,
            },
        }
    )


def config(**more: Any) -> SimulationConfig:
    data: dict[str, Any] = {"chunk": 50, "children": {"acute": 0.0}}
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return load_config(data)


class Recorder:
    """An observer plugin: what the engines of an in-process run committed."""

    def __init__(self) -> None:
        self.events: list[tuple[str, lr.Event]] = []

    @lr.hookimpl
    def lastresort_on_event(self, event: lr.Event, encounter: lr.Encounter) -> None:
        self.events.append((encounter.protocol, event))

    def opened(self, protocol: str) -> list[datetime]:
        return [e.at for p, e in self.events if isinstance(e, lr.EncounterOpened) and p == protocol]

    def entered(self, step: str, protocol: str | None = None) -> list[lr.StepEntered]:
        return [
            e
            for p, e in self.events
            if isinstance(e, lr.StepEntered) and e.step == step and protocol in {None, p}
        ]


def run(protocols: list[lr.Protocol], n: int = 200, **kw: Any) -> MonteCarloResult:
    kw.setdefault("config", config())
    kw.setdefault("entry_points", False)
    return monte_carlo(protocols, n, **kw)


# -- KPIs on a protocol you can check by hand ------------------------------------------


def test_kpis_of_a_deterministic_protocol_are_exact() -> None:
    result = run([tiny()], 120, seed=3)
    k = result.comparison["tiny"]
    assert k.encounters == 120
    assert k.arrived_closed == 0  # the counter is always open
    # counter calls after 2m, expert comes 20m later, mayor 1h later, report 20m later
    for wait, minutes in ((k.with_expert, 22.0), (k.mayor, 82.0), (k.report, 102.0)):
        assert wait.reached == 120
        assert wait.share == 1.0
        assert wait.p50 == wait.p90 == wait.p99 == wait.max == pytest.approx(minutes)
    assert {d.step: d.share for d in k.deadlines} == {
        "arrived": 0.0,
        "awaiting_expert": 0.0,
        "escalated": 0.0,
    }
    assert {b.requirement: b.count for b in k.breaches} == {
        "max_wait_for_expert": 0,
        "mayor_contact": 0,
        "report_before_close": 0,
    }
    assert (k.closed, k.emergency, k.open_at_end) == (120, 0, 0)
    loads = {p.party: p for p in k.parties}
    # the counter holds the child until the expert takes over (22m), the expert
    # from being asked (2m) until closing (122m), the mayor from being asked to meeting
    assert loads["counter"].busy_hours == pytest.approx(120 * 22 / 60)
    assert loads["expert"].busy_hours == pytest.approx(120 * 120 / 60)
    assert loads["mayor"].busy_hours == pytest.approx(120 * 60 / 60)
    assert loads["police"].cases == 0
    assert [loads[p].cases for p in ("counter", "expert", "mayor")] == [120, 120, 120]
    # open, call, take over, mayor, report, close
    assert k.events == 120 * 6


def test_a_late_expert_lets_the_deadlines_decide_and_breaches_are_counted() -> None:
    k = run([tiny(expert="70m")], 60).comparison["tiny"]
    # asked at 2m: escalated at 32m, to the police at 62m, before the expert (72m)
    shares = {d.step: d.share for d in k.deadlines}
    assert shares == {"arrived": 0.0, "awaiting_expert": 1.0, "escalated": 1.0}
    assert k.with_expert.reached == 0
    assert k.with_expert.p50 is None
    assert (k.closed, k.emergency, k.escalated) == (0, 60, 60)
    breaches = {b.requirement: b for b in k.breaches}
    assert breaches["max_wait_for_expert"].count == 60  # waited 62m > 25m
    assert breaches["max_wait_for_expert"].bound == "25m"
    assert breaches["mayor_contact"].count == 0  # only closing steps count


def test_a_response_under_way_survives_an_escalation() -> None:
    k = run([tiny(expert="40m")], 40).comparison["tiny"]
    # asked at 2m, escalated at 32m; the expert keeps coming and arrives at 42m
    # (had the escalation restarted the response, 72m)
    assert {d.step: d.share for d in k.deadlines}["awaiting_expert"] == 1.0
    assert k.with_expert.p50 == k.with_expert.max == pytest.approx(42.0)
    assert {b.requirement: b.count for b in k.breaches}["max_wait_for_expert"] == 40


def test_a_slow_counter_is_overtaken_by_its_deadline() -> None:
    cfg = config(parties={"counter": {"response": {"median": "15m", "p90": "15m"}}})
    k = run([tiny()], 40, config=cfg).comparison["tiny"]
    # the deadline of 'arrived' (10m) fires first; the expert, asked then, comes 20m later
    assert {d.step: d.share for d in k.deadlines}["arrived"] == 1.0
    assert k.with_expert.p50 == pytest.approx(30.0)


def test_lognormal_response_times_have_the_stated_median_and_p90() -> None:
    protocol = tiny()
    cfg = config(
        parties={"expert": {"response": {"median": "10m", "p90": "25m"}}},
        protocols={},
    )
    k = run([protocol], 4000, config=cfg, seed=11).comparison["tiny"]
    # time to expert = 2m (counter) + the expert's lognormal delay
    assert k.with_expert.p50 - 2 == pytest.approx(10, rel=0.05)
    assert k.with_expert.p90 - 2 == pytest.approx(25, rel=0.07)


# -- determinism and common random numbers ---------------------------------------------


def test_same_seed_same_kpis_for_any_number_of_workers(taskforce: lr.Protocol) -> None:
    protocols = [taskforce, tiny(expert="40m")]
    cfg = config(chunk=60, children={"acute": 0.05})
    one = run(protocols, 300, seed=9, config=cfg)
    with ThreadPoolExecutor(3) as pool:
        threads = run(protocols, 300, seed=9, config=cfg, executor=pool)
    processes = run(protocols, 300, seed=9, config=cfg, workers=2)
    assert one.comparison == threads.comparison == processes.comparison
    assert one.samples == processes.samples
    other = run(protocols, 300, seed=10, config=cfg)
    assert other.comparison != one.comparison


def test_progress_reports_every_chunk_in_any_order() -> None:
    seen: list[tuple[int, int]] = []
    run([tiny()], 130, config=config(chunk=50), progress=lambda d, t: seen.append((d, t)))
    assert seen == [(50, 130), (100, 130), (130, 130)]


def test_a_renamed_copy_sees_the_same_children_and_the_same_party_draws(
    taskforce: lr.Protocol,
) -> None:
    copy = attrs.evolve(taskforce, id="taskforce-copy")
    recorder = Recorder()
    result = run(
        [taskforce, copy],
        250,
        seed=5,
        config=config(children={"acute": 0.1}),
        plugins=[recorder],
    )
    a, b = result.comparison.protocols
    assert attrs.evolve(b, protocol=a.protocol) == a
    assert recorder.opened("taskforce") == recorder.opened("taskforce-copy")
    assert a.with_expert.p50 is not None


def test_arrivals_are_shared_even_when_the_protocols_differ() -> None:
    recorder = Recorder()
    run([tiny("fast"), tiny("slow", expert="40m")], 150, seed=2, plugins=[recorder])
    assert recorder.opened("fast") == recorder.opened("slow")
    assert len(recorder.opened("fast")) == 150
    # the counter's draws match too: it calls the expert at the same moments
    fast = [e.at for e in recorder.entered("awaiting_expert", "fast")]
    slow = [e.at for e in recorder.entered("awaiting_expert", "slow")]
    assert fast == slow
    assert len(fast) == 150


# -- arrivals, hours, capacity, no-shows -----------------------------------------------


def test_children_arrive_only_while_the_counter_is_open() -> None:
    hours = "mon-fri 09:00-17:00"
    recorder = Recorder()
    k = run([tiny(counter_hours=hours)], 200, seed=4, plugins=[recorder]).comparison["tiny"]
    opened = recorder.opened("tiny")
    assert len(opened) == 200
    counter = Hours.parse(hours)
    assert all(counter.is_open(at.astimezone(AMS)) for at in opened)
    # a flat profile: most children come while the counter is closed (40 of 168 hours open)
    assert k.arrived_closed > 2 * k.encounters


def test_the_profile_shapes_the_arrivals() -> None:
    recorder = Recorder()
    profile = {"hours": [0.0] * 14 + [1.0] + [0.0] * 9, "weekdays": {"sat": 0, "sun": 0}}
    k = run([tiny()], 100, seed=8, config=config(arrivals=profile), plugins=[recorder])
    local = [at.astimezone(AMS) for at in recorder.opened("tiny")]
    assert {t.hour for t in local} == {14}
    assert all(t.weekday() < 5 for t in local)
    assert k.comparison["tiny"].arrived_closed == 0


def test_children_come_at_the_stated_rate() -> None:
    recorder = Recorder()
    cfg = config(chunk=3000, arrivals={"per_week": 50.0})
    run([tiny()], 3000, seed=13, config=cfg, plugins=[recorder])
    opened = recorder.opened("tiny")
    weeks = (opened[-1] - opened[0]).total_seconds() / (7 * 86400)
    assert (len(opened) - 1) / weeks == pytest.approx(50.0, rel=0.05)


def test_an_unavailable_party_responds_when_it_comes_on_duty() -> None:
    recorder = Recorder()
    run([tiny(mayor_hours="daily 09:00-10:00")], 80, seed=6, plugins=[recorder])
    met = [e.at.astimezone(AMS) for e in recorder.entered("with_mayor")]
    assert len(met) == 80
    # the mayor starts within 09:00-10:00 and takes exactly one hour
    assert all(10 <= t.hour < 11 or (t.hour, t.minute) == (11, 0) for t in met)


def test_capacity_makes_children_wait_for_a_busy_expert() -> None:
    busy = {"per_week": 300.0}
    free = run([tiny()], 300, seed=1, config=config(arrivals=busy)).comparison["tiny"]
    capped = run(
        [tiny(expert_extra={"capacity": 1})], 300, seed=1, config=config(arrivals=busy)
    ).comparison["tiny"]
    expert_free = {p.party: p for p in free.parties}["expert"]
    expert_capped = {p.party: p for p in capped.parties}["expert"]
    assert expert_free.max_cases > 1
    assert expert_free.queued == 0
    assert expert_capped.max_cases == 1
    assert expert_capped.queued > 0
    assert expert_capped.utilisation is not None
    assert 0 < expert_capped.utilisation <= 1
    assert expert_capped.mean_queue_wait is not None
    assert expert_capped.mean_queue_wait > 0
    # children wait longer, and some go to the police before the expert is free
    assert capped.emergency > free.emergency == 0
    assert {d.step: d.share for d in capped.deadlines}["awaiting_expert"] > 0


def test_an_expert_who_never_comes_leaves_it_to_the_deadlines() -> None:
    k = run([tiny(expert_extra={"no_show": 1.0})], 80).comparison["tiny"]
    expert = {p.party: p for p in k.parties}["expert"]
    assert expert.no_shows == 160  # asked when waiting, and again when escalated
    assert expert.cases == 0
    assert k.with_expert.reached == 0
    assert k.emergency == 80
    assert {d.step: d.share for d in k.deadlines}["escalated"] == 1.0


def test_no_show_share_is_roughly_the_stated_probability() -> None:
    cfg = config(protocols={"tiny": {"parties": {"expert": {"no_show": 0.3}}}})
    k = run([tiny()], 2000, config=cfg, seed=12).comparison["tiny"]
    # each visit is a new request: the police only when the expert fails twice
    assert k.escalated / k.encounters == pytest.approx(0.3, abs=0.03)
    assert k.emergency / k.encounters == pytest.approx(0.09, abs=0.02)


def test_acute_children_go_to_the_emergency_step_at_once() -> None:
    k = run([tiny()], 400, config=config(children={"acute": 0.25}), seed=3).comparison["tiny"]
    assert k.acute == k.emergency
    assert 60 < k.acute < 140
    assert k.closed == 400 - k.acute
    assert k.with_expert.share == pytest.approx(k.closed / 400)


class RefuseWithoutDisclosure:
    @lr.hookimpl
    def lastresort_guard_names(self) -> list[str]:
        return ["disclosed"]

    @lr.hookimpl
    def lastresort_guard(
        self, name: str, encounter: lr.Encounter, event: str, actor: lr.Actor
    ) -> str | None:
        return None if encounter.facts.get("disclosure") else "the child has not disclosed"


def test_a_refusing_guard_leaves_the_encounter_open() -> None:
    cfg = config(children={"disclosure": 0.5})
    result = run([tiny(guard="disclosed")], 200, config=cfg, plugins=[RefuseWithoutDisclosure()])
    k = result.comparison["tiny"]
    assert k.refused == k.open_at_end > 0
    assert k.closed == 200 - k.open_at_end
    assert result.samples["tiny"].open_steps == {"with_mayor": k.open_at_end}


def test_policy_weights_choose_between_events(taskforce: lr.Protocol) -> None:
    only_call = config(protocols={"taskforce": {"policy": {"arrived": {"call_expert": 1}}}})
    k = run([taskforce], 300, config=only_call, seed=2).comparison["taskforce"]
    default = run([taskforce], 300, seed=2).comparison["taskforce"]
    # the counter (median 1m) always calls well before the 15m deadline
    assert {d.step: d.share for d in k.deadlines}["arrived"] < 0.01
    assert {d.step: d.share for d in default.deadlines}["arrived"] > 0.3


# -- configuration and errors that change nothing ----------------------------------------


def test_config_round_trips_through_the_converter() -> None:
    cfg = config(
        arrivals={"per_week": 3.5, "weekdays": {"sun": 0.5}},
        children={"facts": {"accompanied": 0.3}},
        parties={"expert": {"capacity": 2, "hours": "always"}},
        protocols={
            "taskforce": {"policy": {"arrived": {"call_expert": 3, "expert_takes_over": 1}}}
        },
    )
    assert load_config(dump_config(cfg)) == cfg
    assert load_config(json.loads(json.dumps(dump_config(cfg)))) == cfg
    assert cfg.arrivals.weekdays["mon"] == 1.0


def test_bad_config_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(
        "chunk = 0\ntimezone = 'Mars/Olympus'\ndrain = '5x'\n"
        "[arrivals]\nper_week = -1\nhours = [1, 2]\nweekdays = { mon = 1, fry = 2 }\n"
        "[children]\nacute = 1.5\nage_band = { '0-7' = 0.5 }\nsurprise = 1\n"
        "[parties.expert]\nno_show = 2\ncapacity = 0\nhours = 'sometimes'\n"
        "response = { median = '1h', p90 = '10m' }\n",
        encoding="utf-8",
    )
    before = path.read_text(encoding="utf-8")
    with pytest.raises(SimulationConfigError) as info:
        load_config(path)
    problems = info.value.problems
    for where in (
        "$.chunk:",
        "$.timezone:",
        "$.drain:",
        "$.arrivals.per_week:",
        "$.arrivals.hours:",
        "$.arrivals.weekdays:",
        "$.children.acute:",
        "$.children.age_band:",
        "$.children.surprise: unknown key",
        "$.parties.expert.no_show:",
        "$.parties.expert.capacity:",
        "$.parties.expert.hours:",
        "$.parties.expert.response:",
    ):
        assert any(p.startswith(where) for p in problems), (where, problems)
    assert any("did you mean 'fri'" in p for p in problems)
    assert any("add up to 1" in p for p in problems)
    assert str(path) in str(info.value)
    assert path.read_text(encoding="utf-8") == before


def test_config_that_does_not_fit_the_protocols_is_refused_before_any_work(
    taskforce: lr.Protocol,
) -> None:
    recorder = Recorder()
    cfg = config(
        children={"age_band": {"baby": 1.0}},
        protocols={
            "taskforce": {
                "policy": {
                    "arrived": {"call_expertt": 1, "expert_not_called": 1},
                    "nowhere": {"x": 1},
                    "awaiting_expert": {"acute_danger": 1},
                },
                "parties": {"vangnet": {"capacity": 1}},
            }
        },
        arrivals={"hours": [0.0] * 20 + [1.0] * 4},
    )
    with pytest.raises(SimulationConfigError) as info:
        run([taskforce], 10, config=cfg, plugins=[recorder])
    text = "\n".join(info.value.problems)
    assert "$.children.age_band: protocol 'taskforce' has no age band 'baby'" in text
    assert "$.protocols.taskforce.policy.arrived.call_expertt" in text
    assert "did you mean 'call_expert'" in text
    assert "$.protocols.taskforce.policy.arrived.expert_not_called: a deadline event" in text
    assert "$.protocols.taskforce.policy.nowhere: unknown step" in text
    assert "$.protocols.taskforce.policy.awaiting_expert.acute_danger" in text
    assert "$.protocols.taskforce.parties.vangnet: protocol 'taskforce' has no party" in text
    assert "$.arrivals: no child can ever arrive at protocol 'taskforce'" in text
    assert recorder.events == []  # nothing was simulated


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ({"encounters": 0}, "encounters:"),
        ({"encounters": "10"}, "encounters:"),
        ({"encounters": True}, "encounters:"),
        ({"encounters": 10, "seed": 1.5}, "seed:"),
        ({"encounters": 10, "workers": 0}, "workers:"),
        ({"encounters": 10, "config": {"chunk": 5}}, "config:"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(args: dict[str, Any], where: str) -> None:
    recorder = Recorder()
    encounters = args.pop("encounters")
    with pytest.raises(SimulationConfigError) as info:
        monte_carlo([tiny()], encounters, entry_points=False, plugins=[recorder], **args)
    assert any(p.startswith(where) for p in info.value.problems)
    assert recorder.events == []


def test_unknown_and_duplicate_protocols_are_refused(taskforce: lr.Protocol) -> None:
    with pytest.raises(SimulationConfigError) as info:
        monte_carlo(["taskforse", taskforce, "taskforce"], 10)
    text = "\n".join(info.value.problems)
    assert "protocols[0]: unknown protocol 'taskforse'; installed:" in text
    assert "'taskforce' is given twice" in text
    with pytest.raises(SimulationConfigError):
        monte_carlo([], 10)


def test_an_invalid_protocol_is_refused_before_any_work(taskforce: lr.Protocol) -> None:
    broken = attrs.evolve(taskforce, initial="nowhere")
    with pytest.raises(lr.ProtocolError):
        monte_carlo([broken], 10, entry_points=False)


def test_run_is_repeatable_in_one_process() -> None:
    a = run([tiny(expert_extra={"no_show": 0.3})], 150, seed=21)
    b = run([tiny(expert_extra={"no_show": 0.3})], 150, seed=21)
    assert a.comparison == b.comparison
    assert a.samples == b.samples


def test_dask_executor_gives_the_same_kpis(taskforce: lr.Protocol) -> None:
    distributed = pytest.importorskip("distributed")
    cfg = config(chunk=40)
    expected = run([taskforce], 160, seed=4, config=cfg)
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1) as client:
        got = run([taskforce], 160, seed=4, config=cfg, executor=client.get_executor())
    assert got.comparison == expected.comparison


def test_start_and_timezone_are_honoured() -> None:
    recorder = Recorder()
    start = datetime(2026, 7, 4, 0, 0, tzinfo=ZoneInfo("America/New_York"))  # a Saturday
    cfg = config(start=start.isoformat(), timezone="America/New_York")
    run([tiny(counter_hours="sat 10:00-11:00")], 5, config=cfg, plugins=[recorder])
    opened = recorder.opened("tiny")
    assert len(opened) == 5
    assert opened[0] > start
    local = [t.astimezone(ZoneInfo("America/New_York")) for t in opened]
    assert all(t.weekday() == 5 and t.hour == 10 for t in local)


# -- how a chunk runs ----------------------------------------------------------------


class GcSeen:
    """An observer plugin: whether the cyclic collector was on at each event."""

    def __init__(self) -> None:
        self.enabled: list[bool] = []

    @lr.hookimpl
    def lastresort_on_event(self, event: lr.Event, encounter: lr.Encounter) -> None:
        self.enabled.append(gc.isenabled())


def test_a_run_in_the_callers_process_leaves_the_collector_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13: no global state for speed. With workers=1 the chunks run in the
    caller's process: the collector stays on throughout, with the caller's thresholds,
    and nothing switches it or sets them."""
    before = gc.get_threshold()
    touched: list[str] = []
    for name in ("disable", "enable", "set_threshold", "freeze"):
        original = getattr(gc, name)

        def spy(*args: Any, _name: str = name, _original: Any = original) -> Any:
            touched.append(_name)
            return _original(*args)

        monkeypatch.setattr(gc, name, spy)
    gc.set_threshold(1234, 11, 12)
    touched.clear()
    try:
        seen = GcSeen()
        result = monte_carlo(
            [tiny()], 60, seed=3, config=config(), plugins=[seen], entry_points=False
        )
        assert result.comparison.protocols[0].encounters == 60
        assert seen.enabled
        assert all(seen.enabled)  # on at every event of the run
        assert gc.isenabled()
        assert gc.get_threshold() == (1234, 11, 12)
        assert touched == []
        # the same with a caller's executor (a thread pool): its process is the caller's
        with ThreadPoolExecutor(max_workers=2) as pool:
            monte_carlo([tiny()], 60, seed=3, config=config(), executor=pool, entry_points=False)
        assert gc.isenabled()
        assert gc.get_threshold() == (1234, 11, 12)
        assert touched == []
    finally:
        gc.set_threshold(*before)


def test_a_chunk_in_an_owned_worker_pauses_the_collector_and_frees_its_store_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores: list[weakref.ref[lr.MemoryStore]] = []

    class Store(lr.MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            stores.append(weakref.ref(self))

    monkeypatch.setattr(runner, "MemoryStore", Store)
    seen = GcSeen()
    assert gc.isenabled()
    samples = runner.run_chunk_owned([tiny()], config(), 1, 0, 20, [seen])
    assert samples[0].encounters == 20
    assert gc.isenabled()  # switched back on
    assert seen.enabled
    assert not any(seen.enabled)  # off while the chunk ran
    gc.disable()
    try:
        runner.run_chunk_owned([tiny()], config(), 1, 1, 20, [seen])
        assert not gc.isenabled()  # left off when it was off
        # no reference cycle holds the chunk's engine: its store is gone already
        assert [ref() for ref in stores] == [None, None]
    finally:
        gc.enable()


def test_describer_makes_the_declared_facts_in_their_order() -> None:
    cfg = config(
        children={
            "age_band": {"0-7": 0.1, "8-11": 0.2, "12-15": 0.3, "16-17": 0.4},
            "facts": {"accompanied": 0.3, "language": {"nl": 0.6, "en": 0.4}},
        }
    )
    kids = children(cfg, 3, 0)
    every = Describer(cfg.children)
    declared = Describer(cfg.children, ["language", "age_band", "undeclared", "disclosure"])
    for _ in range(200):
        child = next(kids)
        facts, acute = describe(child, cfg.children)
        assert every(child) == (facts, acute)
        assert list(facts) == ["disclosure", "age_band", "accompanied", "language"]
        assert declared(child) == (
            {k: facts[k] for k in ["language", "age_band", "disclosure"]},
            acute,
        )
    below_one = Child(0, 0.0, 0, 0, (0.9999999999999999,) * 5)
    assert every(below_one)[0] == {
        "disclosure": False,
        "age_band": "16-17",
        "accompanied": False,
        "language": "en",
    }
