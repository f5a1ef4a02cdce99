"""One chunk of a Monte Carlo run: a discrete-event loop that drives the real Engine.

For each protocol, a fresh :class:`~lastresort.Engine` on a :class:`MemoryStore`
and a clock only the loop moves. The loop jumps the clock to the next of: a child
arriving, a party's response falling due, or the engine's next deadline
that a ``tick`` can fire). Arrivals are ``engine.open``, responses are
``engine.fire`` by the acting role, deadlines fire through ``engine.tick()``.
Nothing here moves an encounter except the engine; the loop only reads the
events the engine returns.

The loop knows the engine's pending deadlines from those events (a
``DeadlineScheduled`` adds one, a ``DeadlineCleared`` or ``DeadlineMissed``
removes it; after ``open``, :meth:`Engine.deadlines`) rather than asking
:meth:`Engine.next_deadline` after every step. That is cheaper, and it is what
makes a deadline that could not fire (a plugin raised: ``DeadlineDeferred``)
come back when its lease runs out, as it would under a real scheduler: the
store's earliest deadline is then still that one, in the past, and a loop that
ticked at it would tick for ever without moving the clock.

The parties' side, what they do in each step (the behaviour model of
``docs/simulation.md``), is :class:`~.behaviour.Behaviour`, the base class of
this loop.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from heapq import heappop, heappush
from typing import NoReturn

from ..engine.engine import DEFAULT_DEADLINE_LEASE, Engine
from ..errors import GuardRefused, InvalidArgument, NotPermitted, SimulationAborted
from ..events import (
    DeadlineCleared,
    DeadlineDeferred,
    DeadlineMissed,
    DeadlineScheduled,
    Event,
    StepEntered,
)
from ..protocol.model import Actor, Protocol
from ..store.memory import MemoryStore
from .arrivals import Child, Describer, children
from .behaviour import Behaviour, EncounterNotes
from .config import SimulationConfig
from .kpi import Samples
from .plan import ProtocolPlan, plan_of

__all__ = ["run_chunk"]

_INF = math.inf
#: a deadline that could not fire this many times in a row (a day of simulated time at
#: the lease of the engine a chunk runs: its default, one minute) stops the run: a
#: plugin fails every time
MAX_DEFERRALS = timedelta(days=1) // DEFAULT_DEADLINE_LEASE


class _Clock:
    """The engine's clock in a chunk: only the loop moves it, and never back.

    A :class:`~lastresort.VirtualClock` without its checks and its lock (one
    thread owns a chunk): the loop sets :attr:`at` once per simulated event.
    """

    __slots__ = ("at",)

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        """The simulated time."""
        return self.at


class _Run(Behaviour):
    """One protocol in one chunk: the event loop."""

    def __init__(
        self,
        plan: ProtocolPlan,
        config: SimulationConfig,
        seed: int,
        chunk: int,
        quota: int,
        plugins: Sequence[object],
        entry_points: bool,
    ) -> None:
        self.config = config
        self.seed = seed
        self.chunk = chunk
        self.quota = quota
        start = config.start.astimezone(UTC)
        self.clock = _Clock(start)
        # the id of the next encounter opened, in a list rather than an attribute: a
        # closure over self would tie the engine and self in a cycle, and every
        # chunk's store would then wait for the cyclic garbage collector (a full
        # collection, walking every object in the process) instead of being freed
        # when the chunk returns
        self._next_id = next_id = [""]
        engine = Engine(
            protocols=[plan.protocol],
            plugins=plugins,
            store=MemoryStore(),
            clock=self.clock,
            entry_points=entry_points,
            ids=lambda: next_id[0],
        )
        super().__init__(plan, engine, Samples(plan.protocol.id), start, config.zone)
        #: per step, event -> the step entered (where no guard can choose) and
        #: whether that may change the deadlines (else its events need no reading)
        self.after: dict[str, dict[str, tuple[str, bool]]] = {k: {} for k in plan.marks}
        has = plan.has_deadline
        for (step, event), target in plan.target.items():
            self.after[step][event] = (target, step in has or target in has)
        self.fire = engine.fire
        self._actors: dict[str, Actor] = {}
        #: a child's facts: those of the configuration that the protocol declares
        self.describe = Describer(config.children, plan.fact_keys)
        #: seconds after ``start`` the clock shows (it shows them rounded to a microsecond)
        self.clock_t = 0.0
        #: the engine's pending deadlines: id -> seconds after ``start`` when a tick can
        #: fire it (its due moment; the end of the lease once it was deferred)
        self.deadlines: dict[str, float] = {}
        #: (seconds, id, that moment) per deadline; an entry is stale unless
        #: ``deadlines`` still holds those seconds for that id
        self.due: list[tuple[float, str, datetime]] = []
        #: deadline id -> how many times in a row it could not fire (DeadlineDeferred)
        self.deferrals: dict[str, int] = {}

    # -- time ------------------------------------------------------------------------

    def _set(self, t: float) -> None:
        """Move the clock to ``t`` unless it is there already.

        Comparing the seconds is comparing the moments: ``t`` above the clock's
        seconds rounds to a moment at or after the clock's.
        """
        if t > self.clock_t:
            self.clock_t = t
            self.clock.at = self.start + timedelta(seconds=t)

    # -- the loop --------------------------------------------------------------------

    def run(self) -> Samples:
        heap, clock, quota = self.heap, self.clock, self.quota
        tick, next_deadline = self.engine.tick, self._next_deadline
        act, arrive, ticked = self._act, self._arrive, self._ticked
        kids = children(self.config, self.seed, self.chunk, self.plan.counter_week)
        drain = self.config.drain.total_seconds()
        child = next(kids)
        accepted, horizon, last = 0, _INF, 0.0
        arrival = child.at if quota > 0 else _INF
        # the engine's next deadline a tick can fire, in seconds and as a moment
        deadline, due = _INF, None
        while True:
            action = heap[0][0] if heap else _INF
            if deadline <= action and deadline <= arrival:
                if deadline > horizon or deadline == _INF:
                    break
                assert due is not None
                if due > clock.at:
                    clock.at = due
                    self.clock_t = deadline
                ticked(tick(), deadline)
                last = deadline
            elif arrival <= action:
                if arrival > horizon:
                    break
                arrive(child)
                last = arrival
                accepted += 1
                if accepted == quota:
                    horizon = arrival + drain
                    # every child before the last one who got in came while it was closed
                    self.samples.arrived_closed = child.number + 1 - accepted
                    arrival = _INF
                else:
                    child = next(kids)
                    arrival = child.at
            else:
                if action > horizon:
                    break
                _, _, enc, token = heappop(heap)
                if enc.token != token:
                    continue  # a response that no longer fits
                last = action
                act(enc, action)
            deadline, due = next_deadline()
        end = horizon if self.active else last
        for enc in list(self.active.values()):
            self._finish(enc, end, None)
        self.samples.observed = end
        return self.samples

    # -- the engine's deadlines ------------------------------------------------------

    def _schedule(self, deadline_id: str, at: datetime) -> None:
        """Note that a tick can fire deadline ``deadline_id`` from ``at`` on."""
        t = (at - self.start).total_seconds()
        self.deadlines[deadline_id] = t
        heappush(self.due, (t, deadline_id, at))

    def _track(self, events: Iterable[Event]) -> None:
        """Follow the deadlines scheduled and cleared in ``events`` (a ``fire``'s)."""
        follow = self._follow
        for event in events:
            follow(event, type(event))

    def _follow(self, event: Event, kind: type[Event]) -> None:
        """Follow ``event`` (of class ``kind``) if it schedules or clears a deadline."""
        if kind is DeadlineScheduled:
            assert isinstance(event, DeadlineScheduled)
            self._schedule(event.deadline_id, event.due)
        elif kind is DeadlineCleared:
            assert isinstance(event, DeadlineCleared)
            self._drop(event.deadline_id)

    def _drop(self, deadline_id: str) -> None:
        """Forget deadline ``deadline_id``: cleared, or fired (missed)."""
        self.deadlines.pop(deadline_id, None)
        if self.deferrals:
            self.deferrals.pop(deadline_id, None)

    def _next_deadline(self) -> tuple[float, datetime | None]:
        """The earliest moment a tick can fire a pending deadline: in seconds after
        ``start`` and as a moment; ``(inf, None)`` when none is pending."""
        due, deadlines = self.due, self.deadlines
        while due:
            t, deadline_id, at = due[0]
            if deadlines.get(deadline_id) == t:
                return t, at
            heappop(due)  # cleared, fired or deferred since
        return _INF, None

    def _ticked(self, events: Iterable[Event], t: float) -> None:
        """Follow what the deadlines fired by ``tick`` did."""
        active = self.active
        for event in events:
            kind = type(event)
            if kind is StepEntered:
                assert isinstance(event, StepEntered)
                self.samples.events += 1
                self._entered(active[event.encounter_id], event.step, t)
            elif kind is DeadlineMissed:
                assert isinstance(event, DeadlineMissed)
                self._drop(event.deadline_id)
                fired = active[event.encounter_id].fired
                fired[event.step] = fired.get(event.step, 0) + 1
            elif kind is DeadlineDeferred:
                # a plugin (or the store) failed while it fired: it stays pending, and a
                # tick claims it again when the lease runs out, not before
                assert isinstance(event, DeadlineDeferred)
                self.samples.deferred += 1
                tries = self.deferrals[event.deadline_id] = (
                    self.deferrals.get(event.deadline_id, 0) + 1
                )
                if tries >= MAX_DEFERRALS:
                    self._abort(event, tries)
                self._schedule(event.deadline_id, event.retry_at)
            else:
                self._follow(event, kind)

    def _abort(self, event: DeadlineDeferred, tries: int) -> NoReturn:
        """Stop the run: ``event``'s deadline has not fired in ``tries`` tries."""
        protocol = self.plan.protocol.id
        raise SimulationAborted(
            problems=[
                f"$.protocols.{protocol}: deadline {event.deadline_id} ({event.event} in step"
                f" {event.step!r}, due {event.due.isoformat()}) could not fire in {tries}"
                f" tries, a lease apart, until {event.at.isoformat()}: {event.error}."
                " A plugin (or the store) fails every time that deadline fires; what the"
                " run would measure from here on is that failure, not the protocol"
            ],
            source=f"chunk {self.chunk} of seed {self.seed}",
        )

    def _actor(self, role: str) -> Actor:
        """The simulated person acting for ``role``: a generated pseudonymous id
        (``sim:<role>``), one per party, made once."""
        found = self._actors.get(role)
        if found is None:
            found = self._actors[role] = Actor(role, f"sim:{role}")
        return found

    def _arrive(self, child: Child) -> None:
        plan = self.plan
        t = child.at
        self._set(t)
        self._next_id[0] = f"sim-{self.chunk}-{child.number}"
        facts, acute = self.describe(child)
        encounter = self.engine.open(plan.protocol.id, self._actor(plan.opener), facts=facts)
        for pending in self.engine.deadlines(encounter.id):
            self._schedule(pending.id, pending.due)
        enc = EncounterNotes(encounter.id, child, t)
        enc.acute = acute
        self.active[enc.id] = enc
        self.samples.encounters += 1
        self.samples.events += 1
        self.samples.acute += acute
        self._entered(enc, encounter.state, t)

    def _act(self, enc: EncounterNotes, t: float) -> None:
        """Fire the pending option."""
        option = enc.pending
        assert option is not None
        step = enc.step
        if t > self.clock_t:  # self._set(t), inlined: once per response
            self.clock_t = t
            self.clock.at = self.start + timedelta(seconds=t)
        try:
            events = self.fire(enc.id, option.event, self._actor(option.actor))
        except (GuardRefused, NotPermitted, InvalidArgument):
            # a plugin's guard (or a guarded handover to another party) said no, or the
            # step entered needs a date the actor chooses (until = "chosen"), which the
            # simulator has no model of: this option is out for the rest of the visit
            self.samples.refused += 1
            enc.pending = None
            enc.token += 1
            if enc.excluded is None:
                enc.excluded = set()
            enc.excluded.add(option)
            self._release_others(enc, self.plan.responsible[step], t)
            self._choose(enc, step, t)
            return
        enc.pending = None
        self.samples.events += 1
        # the step entered: known from the protocol unless a guard could choose
        known = self.after[step].get(option.event)
        if known is not None:
            if known[1]:
                self._track(events)
            self._entered(enc, known[0], t)
            return
        self._track(events)
        self._entered(enc, self.engine.get(enc.id).state, t)


def run_chunk(
    protocols: Sequence[Protocol],
    config: SimulationConfig,
    seed: int,
    chunk: int,
    quota: int,
    plugins: Sequence[object] = (),
    entry_points: bool = False,
) -> list[Samples]:
    """Simulate ``quota`` encounters of chunk ``chunk`` for each protocol.

    A module-level function, so that any :class:`concurrent.futures.Executor`
    (a process pool, a Dask client's executor) can run it.

    It leaves the process's global state alone: the garbage collector's switch and
    thresholds are as the caller set them (:func:`run_chunk_owned` is what the
    simulator's own worker processes run).

    :returns: one :class:`Samples` per protocol, in the order given.
    """
    return [
        _Run(plan_of(p, config), config, seed, chunk, quota, plugins, entry_points).run()
        for p in protocols
    ]


def run_chunk_owned(
    protocols: Sequence[Protocol],
    config: SimulationConfig,
    seed: int,
    chunk: int,
    quota: int,
    plugins: Sequence[object] = (),
    entry_points: bool = False,
) -> list[Samples]:
    """:func:`run_chunk` in a worker process the simulator created and owns (the
    process pool of ``monte_carlo(workers=n)``), never in a caller's process: the
    cyclic garbage collector is paused while the chunk runs and switched back on
    after. A chunk makes hundreds of thousands of objects that live until it returns
    (its engine's store), so the collector's full passes over them free nothing;
    they cost about a tenth of the run. What a chunk leaves in reference cycles (a
    few hundred objects of its engine's plugin manager) is collected once the
    collector is back on."""
    pause = gc.isenabled()
    if pause:
        gc.disable()
    try:
        return run_chunk(protocols, config, seed, chunk, quota, plugins, entry_points)
    finally:
        if pause:
            gc.enable()
