"""One chunk of a Monte Carlo run: a discrete-event loop that drives the real Engine.

For each protocol, a fresh :class:`~lastresort.Engine` on a :class:`MemoryStore`
and a clock only the loop moves. The loop jumps the clock to the next of: a child
arriving, a party's response falling due, or the engine's next deadline
(:meth:`Engine.next_deadline`). Arrivals are ``engine.open``, responses are
``engine.fire`` by the acting role, deadlines fire through ``engine.tick()``.
Nothing here moves an encounter except the engine; the loop only reads the
events the engine returns.

The behaviour model (see ``docs/simulation.md``):

- On entering a step, one option is chosen by the step's policy weights (an
  acute child: ``acute_danger`` in the first step). A response already under
  way is kept if its event can still be fired from the new step (an expert on
  the way keeps coming when the step escalates).
- The party responsible in the step is with the child: it acts after its
  response time, regardless of hours, capacity or no-show.
- A party asked from outside may not come (``no_show``, then another party's
  option is chosen, or the deadline decides); it starts when it is on duty
  (``hours``) and has a free place (``capacity``, else it queues first come,
  first served); it holds the case from acceptance until it is neither
  responsible nor on its way.
"""

from __future__ import annotations

import functools
import gc
import math
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from heapq import heappop, heappush
from itertools import accumulate
from statistics import NormalDist

from ..engine import Engine
from ..errors import GuardRefused, NotPermitted
from ..events import DeadlineMissed, Event, StepEntered
from ..model import Protocol
from ..store.memory import MemoryStore
from .arrivals import Child, Describer, Draws, children, key
from .config import SimulationConfig
from .kpi import PartySamples, Samples
from .plan import (
    ESCALATED,
    EXPERT,
    MAYOR,
    REPORT,
    SETTLED,
    TERMINAL,
    Option,
    PartyModel,
    ProtocolPlan,
)

__all__ = ["run_chunk"]

_INF = math.inf
_exp = math.exp
_inv_cdf = NormalDist().inv_cdf
_POLICY = key("policy")


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


class _Encounter:
    """The simulator's notes on one open encounter (the engine holds its state)."""

    __slots__ = (
        "acute",
        "acute_done",
        "child",
        "engaged",
        "escalated",
        "ever",
        "excluded",
        "fired",
        "id",
        "pending",
        "policy",
        "rngs",
        "settled",
        "step",
        "t0",
        "t_expert",
        "t_mayor",
        "t_report",
        "token",
    )

    def __init__(self, eid: str, child: Child, t0: float) -> None:
        self.id = eid
        self.child = child
        self.t0 = t0
        self.token = 0
        self.step = ""
        self.pending: Option | None = None
        self.engaged: dict[str, float] = {}
        self.ever: set[str] = set()
        self.rngs: dict[str, Draws] = {}
        self.policy: Draws | None = None
        self.acute = False
        self.fired: dict[str, int] = {}
        self.excluded: set[Option] | None = None
        self.t_expert: float | None = None
        self.t_mayor: float | None = None
        self.t_report: float | None = None
        self.settled = False
        self.escalated = False
        self.acute_done = False


class _Run:
    """One protocol in one chunk."""

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
        self.plan = plan
        self.config = config
        self.seed = seed
        self.chunk = chunk
        self.quota = quota
        self.start = config.start.astimezone(UTC)
        self.zone = config.zone
        self.clock = _Clock(self.start)
        # the id of the next encounter opened, in a list rather than an attribute: a
        # closure over self would tie the engine and self in a cycle, and every
        # chunk's store would then wait for the cyclic garbage collector (a full
        # collection, walking every object in the process) instead of being freed
        # when the chunk returns
        self._next_id = next_id = [""]
        self.engine = Engine(
            protocols=[plan.protocol],
            plugins=plugins,
            store=MemoryStore(),
            clock=self.clock,
            entry_points=entry_points,
            ids=lambda: next_id[0],
        )
        self.samples = Samples(plan.protocol.id)
        self.party = {key: PartySamples() for key in plan.parties}
        self.samples.parties = self.party
        self.load = dict.fromkeys(plan.parties, 0)
        self.queues: dict[str, deque[tuple[_Encounter, int, float, float]]] = {
            key: deque() for key in plan.parties
        }
        self.active: dict[str, _Encounter] = {}
        self.heap: list[tuple[float, int, _Encounter, int]] = []
        self.seq = 0
        self.cumulative = {k: tuple(accumulate(w)) for k, w in plan.weights.items()}
        #: per party: its model, its samples and the key of its response draws
        self.parties: dict[str, tuple[PartyModel, PartySamples, int]] = {
            p: (model, self.party[p], key("party", p)) for p, model in plan.parties.items()
        }
        #: per step, what entering it needs: its KPI marks, the options a response
        #: under way may keep, the responsible party and the options to choose from
        self.steps: dict[str, tuple[int, frozenset[Option], str | None, tuple[Option, ...]]] = {
            k: (marks, plan.keeps.get(k, frozenset()), plan.responsible[k], plan.options.get(k, ()))
            for k, marks in plan.marks.items()
        }
        #: per step, event -> the step entered (where no guard can choose) and
        #: whether that may change the deadlines
        self.after: dict[str, dict[str, tuple[str, bool]]] = {k: {} for k in plan.marks}
        has = plan.has_deadline
        for (step, event), target in plan.target.items():
            self.after[step][event] = (target, step in has or target in has)
        self.fire = self.engine.fire
        #: a child's facts: those of the configuration that the protocol declares
        self.describe = Describer(config.children, plan.fact_keys)
        #: seconds after ``start`` the clock shows (it shows them rounded to a microsecond)
        self.clock_t = 0.0

    # -- time ------------------------------------------------------------------------

    def _set(self, t: float) -> None:
        """Move the clock to ``t`` unless it is there already.

        Comparing the seconds is comparing the moments: ``t`` above the clock's
        seconds rounds to a moment at or after the clock's.
        """
        if t > self.clock_t:
            self.clock_t = t
            self.clock.at = self.start + timedelta(seconds=t)

    def _on_duty(self, model: PartyModel, t: float) -> float:
        """The first moment at or after ``t`` the party is on duty."""
        if model.hours.always:
            return t
        local = (self.start + timedelta(seconds=t)).astimezone(self.zone)
        if model.week[local.weekday() * 1440 + local.hour * 60 + local.minute]:
            return t
        opens = model.hours.next_open(local).astimezone(UTC)
        return max(t, (opens - self.start).total_seconds())

    # -- the loop --------------------------------------------------------------------

    def run(self) -> Samples:
        heap, start, clock, quota = self.heap, self.start, self.clock, self.quota
        tick, next_deadline = self.engine.tick, self.engine.next_deadline
        act, arrive, ticked = self._act, self._arrive, self._ticked
        kids = children(self.config, self.seed, self.chunk, self.plan.counter_week)
        drain = self.config.drain.total_seconds()
        child = next(kids)
        accepted, horizon, last = 0, _INF, 0.0
        arrival = child.at if quota > 0 else _INF
        # the engine's next deadline, and that moment in seconds: converted only
        # when it is another one (the store hands back the same object until then)
        deadline, due, seen = _INF, None, None
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
                if not act(enc, action):
                    continue  # the deadlines are as they were
            due = next_deadline()
            if due is not seen:
                seen = due
                deadline = (due - start).total_seconds() if due is not None else _INF
        end = horizon if self.active else last
        for enc in list(self.active.values()):
            self._finish(enc, end, None)
        self.samples.observed = end
        return self.samples

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
                fired = active[event.encounter_id].fired
                fired[event.step] = fired.get(event.step, 0) + 1

    def _arrive(self, child: Child) -> None:
        plan = self.plan
        t = child.at
        self._set(t)
        self._next_id[0] = f"sim-{self.chunk}-{child.number}"
        facts, acute = self.describe(child)
        encounter = self.engine.open(plan.protocol.id, plan.opener, facts=facts)
        enc = _Encounter(encounter.id, child, t)
        enc.acute = acute
        self.active[enc.id] = enc
        self.samples.encounters += 1
        self.samples.events += 1
        self.samples.acute += acute
        self._entered(enc, encounter.state, t)

    def _act(self, enc: _Encounter, t: float) -> bool:
        """Fire the pending option; ``True`` when deadlines may have changed."""
        option = enc.pending
        assert option is not None
        step = enc.step
        if t > self.clock_t:  # self._set(t), inlined: once per response
            self.clock_t = t
            self.clock.at = self.start + timedelta(seconds=t)
        try:
            self.fire(enc.id, option.event, option.actor)
        except (GuardRefused, NotPermitted):
            # a plugin's guard (or a guarded handover to another party) said no:
            # this option is out for the rest of the visit
            self.samples.refused += 1
            enc.pending = None
            enc.token += 1
            if enc.excluded is None:
                enc.excluded = set()
            enc.excluded.add(option)
            self._release_others(enc, self.plan.responsible[step], t)
            self._choose(enc, step, t)
            return False
        enc.pending = None
        self.samples.events += 1
        # the step entered: known from the protocol unless a guard could choose
        known = self.after[step].get(option.event)
        if known is not None:
            self._entered(enc, known[0], t)
            return known[1]
        entered = self.engine.get(enc.id).state
        self._entered(enc, entered, t)
        has = self.plan.has_deadline
        return step in has or entered in has

    # -- the behaviour model -----------------------------------------------------------

    def _entered(self, enc: _Encounter, step: str, t: float) -> None:
        marks, keeps, responsible, options = self.steps[step]
        enc.step = step
        if marks:
            # waits are rounded to the engine's resolution: a microsecond
            if marks & EXPERT and enc.t_expert is None:
                enc.t_expert = round(t - enc.t0, 6)
            if marks & MAYOR and enc.t_mayor is None:
                enc.t_mayor = round(t - enc.t0, 6)
            if marks & REPORT and enc.t_report is None:
                enc.t_report = round(t - enc.t0, 6)
            if marks & SETTLED:
                enc.settled = True
            if marks & ESCALATED:
                enc.escalated = True
            if marks & TERMINAL:
                enc.token += 1
                enc.pending = None
                self._finish(enc, t, step)
                return
        enc.excluded = None
        pending = enc.pending
        if pending is not None and pending not in keeps:
            enc.token += 1  # the response under way no longer fits: it stops
            enc.pending = None
        assert responsible is not None
        engaged = enc.engaged
        if responsible not in engaged:
            self._engage(enc, responsible, t)
        if len(engaged) > 1:
            pending = enc.pending
            # nobody to release when the other one engaged is the party on its way
            if (
                len(engaged) > 2
                or pending is None
                or pending.actor == responsible
                or pending.actor not in engaged
            ):
                self._release_others(enc, responsible, t)
        if enc.pending is None:
            if len(options) == 1 and (enc.acute_done or not enc.acute):
                self._request(enc, options[0], t)  # the common case: no choice to make
            else:
                self._choose(enc, step, t)

    def _release_others(self, enc: _Encounter, responsible: str | None, t: float) -> None:
        if len(enc.engaged) > 1 or responsible not in enc.engaged:
            acting = enc.pending.actor if enc.pending is not None else None
            for party in [p for p in enc.engaged if p != responsible and p != acting]:
                self._release(enc, party, t)

    def _choose(self, enc: _Encounter, step: str, t: float) -> None:
        plan = self.plan
        if enc.acute and not enc.acute_done:
            enc.acute_done = True
            acute = plan.acute.get(step)
            if acute is not None and self._request(enc, acute, t):
                return
        options = plan.options[step]
        excluded = enc.excluded
        if len(options) == 1 and not excluded:  # no choice to make
            self._request(enc, options[0], t)
            return
        weights = plan.weights[step]
        cumulative = self.cumulative[step]
        if excluded:
            options, weights, cumulative = _without(options, weights, lambda o: o in excluded)
        while options:
            if len(options) == 1:
                option = options[0]
            else:
                if enc.policy is None:
                    enc.policy = Draws(enc.child.key ^ _POLICY)
                option = options[bisect(cumulative, enc.policy.random() * cumulative[-1])]
            if self._request(enc, option, t):
                return
            # a no-show: nothing of this party's happens in this visit of the step
            options, weights, cumulative = _without(options, weights, _by(option.actor))

    def _request(self, enc: _Encounter, option: Option, t: float) -> bool:
        """Ask ``option.actor`` to act; ``False`` when it does not come (no-show)."""
        actor = option.actor
        model, stats, party_key = self.parties[actor]
        rngs = enc.rngs
        rng = rngs.get(actor)
        if rng is None:
            rng = rngs[actor] = Draws(enc.child.key ^ party_key)
        show, quantile = rng.pair()  # always both: common random numbers
        stats.requests += 1
        sigma = model.sigma
        delay = model.median * _exp(sigma * _inv_cdf(quantile or 1e-12)) if sigma else model.median
        enc.pending = option
        if actor in enc.engaged:  # with the child (responsible), or holding the case already
            self.seq = seq = self.seq + 1
            heappush(self.heap, (t + delay, seq, enc, enc.token))
            return True
        if show < model.no_show:
            stats.no_shows += 1
            enc.pending = None
            return False
        if model.capacity is not None and self.load[actor] >= model.capacity:
            stats.queued += 1
            self.queues[actor].append((enc, enc.token, delay, t))
            return True
        self._engage(enc, actor, t)
        self._push(self._on_duty(model, t) + delay, enc)
        return True

    def _push(self, due: float, enc: _Encounter) -> None:
        self.seq += 1
        heappush(self.heap, (due, self.seq, enc, enc.token))

    def _engage(self, enc: _Encounter, party: str, t: float) -> None:
        enc.engaged[party] = t
        load = self.load[party] = self.load[party] + 1
        stats = self.party[party]
        if party not in enc.ever:
            enc.ever.add(party)
            stats.cases += 1
        if load > stats.max_held:
            stats.max_held = load

    def _release(self, enc: _Encounter, party: str, t: float) -> None:
        since = enc.engaged.pop(party)
        self.load[party] -= 1
        stats = self.party[party]
        stats.held += t - since
        queue = self.queues[party]
        model = self.plan.parties[party]
        while queue and (model.capacity is None or self.load[party] < model.capacity):
            waiting, token, delay, asked = queue.popleft()
            if waiting.token != token or waiting.pending is None:
                continue  # the step moved on meanwhile
            stats.queue_wait += t - asked
            self._engage(waiting, party, t)
            self._push(self._on_duty(model, t) + delay, waiting)

    def _finish(self, enc: _Encounter, t: float, step: str | None) -> None:
        plan, samples = self.plan, self.samples
        for party in list(enc.engaged):
            self._release(enc, party, t)
        del self.active[enc.id]
        waited = t - enc.t0
        if enc.t_expert is not None:
            samples.expert.append(enc.t_expert)
        if enc.t_mayor is not None:
            samples.mayor.append(enc.t_mayor)
        if enc.t_report is not None:
            samples.report.append(enc.t_report)
        for step_key, count in enc.fired.items():
            encounters = samples.deadline_encounters
            encounters[step_key] = encounters.get(step_key, 0) + 1
            samples.deadline_firings[step_key] = samples.deadline_firings.get(step_key, 0) + count
        samples.escalated += enc.escalated
        breaches = samples.breaches
        bound = plan.max_wait_for_expert
        if bound is not None and (enc.t_expert if enc.t_expert is not None else waited) > bound:
            breaches["max_wait_for_expert"] = breaches.get("max_wait_for_expert", 0) + 1
        bound = plan.max_wait_for_mayor
        if bound is not None and (enc.t_mayor if enc.t_mayor is not None else waited) > bound:
            breaches["max_wait_for_mayor"] = breaches.get("max_wait_for_mayor", 0) + 1
        if step is None:
            samples.open_at_end += 1
            state = self.engine.get(enc.id).state
            samples.open_steps[state] = samples.open_steps.get(state, 0) + 1
        elif step in plan.closing:
            samples.closed += 1
            if plan.mayor_contact and enc.t_mayor is None:
                breaches["mayor_contact"] = breaches.get("mayor_contact", 0) + 1
            if plan.report_before_close and not enc.settled:
                breaches["report_before_close"] = breaches.get("report_before_close", 0) + 1
        elif "emergency" in plan.protocol.steps[step].tags:
            samples.emergency += 1
        else:
            samples.ended_other += 1


def _without(
    options: tuple[Option, ...], weights: tuple[float, ...], drop: Callable[[Option], bool]
) -> tuple[tuple[Option, ...], tuple[float, ...], tuple[float, ...]]:
    kept = [(o, w) for o, w in zip(options, weights, strict=True) if not drop(o)]
    new_weights = tuple(w for _, w in kept)
    return tuple(o for o, _ in kept), new_weights, tuple(accumulate(new_weights))


@functools.lru_cache(maxsize=32)
def plan_of(protocol: Protocol, config: SimulationConfig) -> ProtocolPlan:
    """The plan of ``protocol`` with ``config``, built once per process (both are frozen)."""
    return ProtocolPlan(protocol, config)


def _by(actor: str) -> Callable[[Option], bool]:
    return lambda option: option.actor == actor


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

    The cyclic garbage collector is paused while the chunk runs (unless it was
    off already) and switched back on after. A chunk makes hundreds of thousands
    of objects that live until it returns (its engine's store), so the
    collector's full passes over them free nothing; they cost about a tenth of
    the run. The chunk's objects are freed by reference counting when it returns
    (nothing of a chunk is in a reference cycle but a few hundred objects of its
    engine's plugin manager). In a thread pool a chunk may run with the
    collector on, when another chunk switched it back on first.

    :returns: one :class:`Samples` per protocol, in the order given.
    """
    pause = gc.isenabled()
    if pause:
        gc.disable()
    try:
        return [
            _Run(plan_of(p, config), config, seed, chunk, quota, plugins, entry_points).run()
            for p in protocols
        ]
    finally:
        if pause:
            gc.enable()
