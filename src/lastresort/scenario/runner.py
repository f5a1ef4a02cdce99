"""Running a scenario on the real :class:`~lastresort.Engine` in virtual time.

Time moves forward to each step's ``at`` on a :class:`~lastresort.VirtualClock`.
On the way, every deadline that falls due fires at its own moment through the
engine's :meth:`~lastresort.Engine.tick`, and the outbox is delivered
(:meth:`~lastresort.Engine.deliver`) after every tick and every action, as a
host application's workers would. The run stops at the first step whose action or
expectation fails and reports what was expected, what happened and the timeline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from attrs import evolve, field, frozen

from ..clock import VirtualClock
from ..engine.engine import Engine
from ..engine.recording import RecordingDelivery, replacing_delivery
from ..errors import LastResortError, ScenarioError
from ..events import Event
from ..outbox import Notification
from ..protocol.conversion import format_duration
from ..protocol.model import Actor, Encounter
from ..render.card import timeline_table
from ..store.base import PendingDeadline
from ..store.memory import MemoryStore
from .model import (
    ERROR_KINDS,
    NOBODY,
    DeadlineExpectation,
    NotificationExpectation,
    Scenario,
    ScenarioStep,
)

__all__ = ["Mismatch", "ScenarioFailure", "ScenarioResult", "run_scenario"]


def _events(items: Iterable[Event]) -> tuple[Event, ...]:
    return tuple(items)


@frozen
class Mismatch:
    """One thing that was not as expected.

    :param what: the key that failed (``state``, ``allowed[expert]``, ``action``, ...).
    :param expected: what the scenario expected, in words.
    :param actual: what happened, in words.
    """

    what: str
    expected: str
    actual: str


def _mismatches(items: Iterable[Mismatch]) -> tuple[Mismatch, ...]:
    return tuple(items)


@frozen
class ScenarioFailure:
    """Where a scenario failed.

    :param index: the index of the failing step in ``scenario.steps``; ``None``
        when the encounter could not even be opened.
    :param at: the moment of the failing step.
    :param offset: the same, as an offset from the scenario's start.
    :param mismatches: everything that step found wrong.
    :param error: the exception behind the failure, if there was one.
    """

    index: int | None
    step: ScenarioStep | None
    at: datetime
    offset: timedelta
    mismatches: tuple[Mismatch, ...] = field(converter=_mismatches)
    error: BaseException | None = field(default=None, eq=False)


@frozen
class ScenarioResult:
    """What running a scenario did.

    :param encounter: the encounter at the end (``None`` if it could not be opened).
    :param timeline: the encounter's events up to the end (or the failure).
    :param steps_run: how many steps passed.
    :param failure: the first failing step, or ``None`` when the scenario passed.
    :param delivery: the recording delivery the run delivered through (``None``
        with ``real_delivery=True`` or an engine given): what was "sent".
    """

    scenario: Scenario
    encounter: Encounter | None
    timeline: tuple[Event, ...] = field(converter=_events)
    steps_run: int
    failure: ScenarioFailure | None = None
    delivery: RecordingDelivery | None = field(default=None, eq=False)

    @property
    def passed(self) -> bool:
        """Whether every step passed."""
        return self.failure is None

    def summary(self) -> str:
        """One line: the verdict, the name and where it ended."""
        scenario = self.scenario
        where = f"  ({scenario.source})" if scenario.source else ""
        if self.failure is None:
            ended = f", ended in {self.encounter.state!r}" if self.encounter else ""
            last = scenario.steps[-1].at if scenario.steps else timedelta(0)
            return f"PASS  {scenario.name}{where}: {self.steps_run} steps, {_offset(last)}{ended}"
        return f"FAIL  {scenario.name}{where}"

    def report(self) -> str:
        """The summary line; for a failure also the failing step, what was
        expected and what happened (as a diff), the encounter then, and the
        timeline so far."""
        lines = [self.summary()]
        failure = self.failure
        if failure is None:
            return lines[0]
        scenario = self.scenario
        where = "opening the encounter" if failure.index is None else f"$.steps[{failure.index}]"
        lines.append(f"  {where} at {_offset(failure.offset)} ({failure.at:%a %d %b %Y %H:%M %Z})")
        step = failure.step
        if step is not None and step.note:
            lines.append(f"  note: {step.note}")
        if step is not None and step.is_action:
            refusal = f", expecting {step.expect_error}" if step.expect_error else ""
            who = f"{step.actor} ({step.actor_id})" if step.actor_id else f"{step.actor}"
            lines.append(f"  action: {who} fires {step.event!r}{refusal}")
        for mismatch in failure.mismatches:
            lines.append(f"  {mismatch.what}")
            lines.append(f"    - expected: {mismatch.expected}")
            lines.append(f"    + actual:   {mismatch.actual}")
        if self.encounter is not None:
            enc = self.encounter
            lines.append(
                f"  encounter then: step {enc.state!r}, responsible"
                f" {enc.responsible or NOBODY!r}, {'closed' if enc.closed else 'open'}"
            )
        lines.append("  timeline so far:")
        table = timeline_table(self.timeline, scenario.start)
        lines.extend(f"    {row}" for row in table.splitlines())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def run_scenario(
    scenario: Scenario, engine: Engine | None = None, *, real_delivery: bool = False
) -> ScenarioResult:
    """Run ``scenario`` on the real engine in virtual time.

    :param scenario: a scenario from :func:`~lastresort.simulate.load_scenario`.
    :param engine: the engine to run it on; it must have a
        :class:`~lastresort.VirtualClock` not later than the scenario's start, and
        run the scenario's protocol. Default: a new engine on a
        :class:`~lastresort.MemoryStore` with the installed plugins (entry points),
        running the protocol the scenario was checked against, delivering through a
        :class:`~lastresort.testing.RecordingDelivery` (nobody is paged; it is the
        result's :attr:`~ScenarioResult.delivery`).
    :param real_delivery: let the new engine deliver through the installed delivery
        plugins instead (they page for real); ignored when ``engine`` is given.
    :returns: the result; a failing expectation is a result, not an exception.
    :raises ScenarioError: when ``engine`` cannot run the scenario (no virtual
        clock, clock past the start, protocol not run by it).
    :raises ProtocolError: when a new engine refuses the protocol.
    """
    recording: RecordingDelivery | None = None
    if engine is None:
        clock = VirtualClock(scenario.start)
        protocols = None if scenario.definition is None else [scenario.definition]
        if real_delivery:
            engine = Engine(protocols=protocols, store=MemoryStore(), clock=clock)
        else:
            recording = RecordingDelivery()
            with replacing_delivery(recording):
                engine = Engine(protocols=protocols, store=MemoryStore(), clock=clock)
    else:
        clock = _virtual_clock(engine, scenario)
    return evolve(_run(scenario, engine, clock), delivery=recording)


def _run(scenario: Scenario, engine: Engine, clock: VirtualClock) -> ScenarioResult:
    try:
        encounter = engine.open(
            scenario.protocol,
            Actor(scenario.opened_by, scenario.opened_by_id),
            facts=dict(scenario.facts),
            channel=scenario.channel,
        )
    except LastResortError as exc:
        failure = ScenarioFailure(
            None,
            None,
            scenario.start,
            timedelta(0),
            [Mismatch("open", f"{scenario.opened_by} opens an encounter", _refusal(exc))],
            exc,
        )
        return ScenarioResult(scenario, None, (), 0, failure)
    engine.deliver()
    for index, step in enumerate(scenario.steps):
        _advance(engine, clock, scenario.moment(step.at))
        mismatches: list[Mismatch] = []
        error: BaseException | None = None
        if step.is_action:
            mismatches, error = _act(engine, encounter.id, step, scenario)
        if not mismatches and step.expects:
            mismatches = _expect(engine, encounter.id, step, scenario)
        if mismatches:
            failure = ScenarioFailure(index, step, clock.now(), step.at, mismatches, error)
            timeline = engine.timeline(encounter.id)
            return ScenarioResult(scenario, engine.get(encounter.id), timeline, index, failure)
    timeline = engine.timeline(encounter.id)
    return ScenarioResult(scenario, engine.get(encounter.id), timeline, len(scenario.steps))


def _virtual_clock(engine: Engine, scenario: Scenario) -> VirtualClock:
    clock = engine.clock
    if not isinstance(clock, VirtualClock):
        raise ScenarioError(
            problems=[
                f"$.scenario.start: the engine's clock is {clock!r}; scenarios need a VirtualClock"
            ]
        )
    if clock.now() > scenario.start:
        raise ScenarioError(
            problems=[
                f"$.scenario.start: the engine's clock is at {clock.now().isoformat()},"
                f" past the scenario's start {scenario.start.isoformat()}"
            ]
        )
    if scenario.protocol not in engine.protocols:
        raise ScenarioError(
            problems=[
                f"$.scenario.protocol: the engine does not run {scenario.protocol!r};"
                f" it runs: {', '.join(sorted(engine.protocols)) or 'nothing'}"
            ]
        )
    clock.set(scenario.start)
    return clock


def _advance(engine: Engine, clock: VirtualClock, target: datetime) -> None:
    """Move to ``target``, firing each deadline due on the way at its own moment."""
    while True:
        due = engine.next_deadline()
        if due is None or due > target:
            break
        if due > clock.now():
            clock.set(due)
        fired = engine.tick()
        engine.deliver()
        later = engine.next_deadline()
        if not fired and later is not None and later <= due:
            break  # held by another worker's lease: it is not ours to fire
    if target > clock.now():
        clock.set(target)
    engine.tick()
    engine.deliver()


def _refusal(exc: BaseException) -> str:
    return f"refused with {type(exc).__name__}: {exc}"


def _act(
    engine: Engine, encounter_id: str, step: ScenarioStep, scenario: Scenario
) -> tuple[list[Mismatch], BaseException | None]:
    assert step.event is not None
    assert step.actor is not None
    before = engine.get(encounter_id)
    try:
        until = None if step.until is None else scenario.moment(step.until)
        engine.fire(encounter_id, step.event, Actor(step.actor, step.actor_id), until=until)
    except LastResortError as exc:
        if step.expect_error is None:
            return [Mismatch("action", f"{step.actor} fires {step.event!r}", _refusal(exc))], exc
        if not isinstance(exc, ERROR_KINDS[step.expect_error]):
            return [Mismatch("expect_error", step.expect_error, _refusal(exc))], exc
        after = engine.get(encounter_id)
        if after != before:
            return [
                Mismatch(
                    "refused action",
                    f"the encounter unchanged (step {before.state!r}, version {before.version})",
                    f"step {after.state!r}, version {after.version}",
                )
            ], exc
        return [], None
    except Exception as exc:  # noqa: BLE001 - a crashing plugin is a failed step, reported
        return [
            Mismatch(
                "action",
                f"{step.actor} fires {step.event!r}",
                f"the engine raised {type(exc).__name__}: {exc}",
            )
        ], exc
    engine.deliver()
    if step.expect_error is not None:
        after = engine.get(encounter_id)
        return [
            Mismatch(
                "expect_error",
                f"{step.actor} firing {step.event!r} is refused with {step.expect_error}",
                f"it was accepted: {before.state!r} → {after.state!r}",
            )
        ], None
    return [], None


def _expect(
    engine: Engine, encounter_id: str, step: ScenarioStep, scenario: Scenario
) -> list[Mismatch]:
    encounter = engine.get(encounter_id)
    out: list[Mismatch] = []
    if step.state is not None and encounter.state != step.state:
        out.append(Mismatch("state", repr(step.state), repr(encounter.state)))
    if step.responsible is not None:
        holder = encounter.responsible or NOBODY
        if holder != step.responsible:
            out.append(Mismatch("responsible", repr(step.responsible), repr(holder)))
    if step.closed is not None and encounter.closed != step.closed:
        out.append(Mismatch("closed", _closed(step.closed), _closed(encounter.closed, encounter)))
    for allowed in step.allowed:
        actual = sorted(set(engine.allowed(encounter_id, allowed.actor)))
        wanted = sorted(set(allowed.events))
        if actual != wanted:
            diff = _set_diff(wanted, actual)
            out.append(Mismatch(f"allowed[{allowed.actor}]", _names(wanted), _names(actual) + diff))
    notes = engine.outbox(encounter_id)
    out.extend(_notifications("queued", step.queued, notes))
    out.extend(_notifications("delivered", step.delivered, [n for n in notes if n.delivered_at]))
    if step.deadlines is not None:
        pending = engine.deadlines(encounter_id)
        if not _deadlines_match(step.deadlines, pending, scenario):
            out.append(
                Mismatch(
                    "deadlines",
                    _listing(_expected_deadline(d) for d in step.deadlines),
                    _listing(_pending_deadline(d, scenario) for d in pending),
                )
            )
    return out


def _closed(closed: bool, encounter: Encounter | None = None) -> str:
    if not closed:
        return "open"
    if encounter is not None and encounter.closed_at is not None:
        return f"closed (in {encounter.state!r} at {encounter.closed_at:%H:%M})"
    return "closed"


def _names(names: Sequence[str]) -> str:
    return "[" + ", ".join(names) + "]" if names else "[] (nothing)"


def _set_diff(wanted: Sequence[str], actual: Sequence[str]) -> str:
    missing = [e for e in wanted if e not in actual]
    extra = [e for e in actual if e not in wanted]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    return f"  ({'; '.join(parts)})"


def _listing(items: Iterable[str]) -> str:
    found = list(items)
    return "; ".join(found) if found else "none"


def _notifications(
    key: str, expected: Sequence[NotificationExpectation], notes: Sequence[Notification]
) -> list[Mismatch]:
    counts = Counter((n.party, n.event) for n in notes)
    out = []
    for want in expected:
        if want.contact is None:
            have = counts[(want.party, want.event)]
        else:
            have = sum(
                (n.party, n.event, n.contact) == (want.party, want.event, want.contact)
                for n in notes
            )
        ok = have >= 1 if want.count is None else have == want.count
        if ok:
            continue
        times = "at least once" if want.count is None else _times(want.count)
        if want.contact is not None:
            contacts = _listing(
                sorted(
                    {
                        f"{n.contact}"
                        for n in notes
                        if (n.party, n.event) == (want.party, want.event)
                    }
                )
            )
            times += f" at {want.contact!r} (addressed to: {contacts})"
        so_far = _listing(
            f"{p} of {e}" + (f" ×{c}" if c > 1 else "") for (p, e), c in counts.items()
        )
        out.append(
            Mismatch(
                f"{key}[{want.party} of {want.event}]",
                f"{want.party} notified of {want.event!r} {times}",
                f"{_times(have)}; {key} so far: {so_far}",
            )
        )
    return out


def _times(count: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(count, f"{count} times")


def _deadlines_match(
    expected: Sequence[DeadlineExpectation], pending: Sequence[PendingDeadline], scenario: Scenario
) -> bool:
    if len(expected) != len(pending):
        return False
    left = list(pending)
    for want in expected:
        for candidate in left:
            if (
                candidate.step == want.step
                and (want.event is None or candidate.event == want.event)
                and (want.due is None or candidate.due == scenario.moment(want.due))
            ):
                left.remove(candidate)
                break
        else:
            return False
    return True


def _expected_deadline(deadline: DeadlineExpectation) -> str:
    event = deadline.event or "its event"
    due = f" due {_offset(deadline.due)}" if deadline.due is not None else ""
    return f"{deadline.step} → {event}{due}"


def _pending_deadline(deadline: PendingDeadline, scenario: Scenario) -> str:
    offset = deadline.due - scenario.start
    local = deadline.due.astimezone(scenario.start.tzinfo)  # stored as a UTC instant
    return f"{deadline.step} → {deadline.event} due {_offset(offset)} ({local:%a %H:%M})"


def _offset(offset: timedelta) -> str:
    if not offset:
        return "+0m"
    if offset < timedelta(0):
        return f"-{format_duration(-offset)}"
    return f"+{format_duration(offset)}"
