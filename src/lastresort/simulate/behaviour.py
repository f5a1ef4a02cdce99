"""The behaviour model: how the parties respond to an encounter (see ``docs/simulation.md``).

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

:class:`Behaviour` keeps the parties' state in a chunk (their load and queues,
the responses due) and each encounter's :class:`EncounterNotes`, and records an
encounter's KPI samples when it ends. It is the base class of the chunk's event
loop (:mod:`lastresort.simulate.runner`) rather than an object the loop holds:
the loop calls these methods on every event, and as methods of one object they
cost no more than they did in one class.
"""

from __future__ import annotations

import math
from bisect import bisect
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from heapq import heappush
from itertools import accumulate
from statistics import NormalDist

from ..engine.engine import Engine
from .arrivals import Child, Draws, key
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

__all__ = ["Behaviour", "EncounterNotes"]

_exp = math.exp
_inv_cdf = NormalDist().inv_cdf
_POLICY = key("policy")


class EncounterNotes:
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


class Behaviour:
    """The parties of one protocol in one chunk, and what they do in its encounters.

    :param plan: the protocol's plan.
    :param engine: the chunk's engine (read only: an encounter's step when it ends).
    :param samples: where the chunk's KPI samples go.
    :param start: the moment the chunk's seconds count from.
    :param zone: the zone the parties' hours are in.
    """

    def __init__(
        self, plan: ProtocolPlan, engine: Engine, samples: Samples, start: datetime, zone: tzinfo
    ) -> None:
        self.plan = plan
        self.engine = engine
        self.start = start
        self.zone = zone
        self.samples = samples
        self.party = {key: PartySamples() for key in plan.parties}
        self.samples.parties = self.party
        self.load = dict.fromkeys(plan.parties, 0)
        self.queues: dict[str, deque[tuple[EncounterNotes, int, float, float]]] = {
            key: deque() for key in plan.parties
        }
        self.active: dict[str, EncounterNotes] = {}
        #: the responses due: (seconds, sequence, encounter, its token when asked)
        self.heap: list[tuple[float, int, EncounterNotes, int]] = []
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

    # -- hours -----------------------------------------------------------------------

    def _on_duty(self, model: PartyModel, t: float) -> float:
        """The first moment at or after ``t`` the party is on duty."""
        if model.hours.always:
            return t
        local = (self.start + timedelta(seconds=t)).astimezone(self.zone)
        if model.week[local.weekday() * 1440 + local.hour * 60 + local.minute]:
            return t
        opens = model.hours.next_open(local).astimezone(UTC)
        return max(t, (opens - self.start).total_seconds())

    # -- entering a step -------------------------------------------------------------

    def _entered(self, enc: EncounterNotes, step: str, t: float) -> None:
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

    def _release_others(self, enc: EncounterNotes, responsible: str | None, t: float) -> None:
        if len(enc.engaged) > 1 or responsible not in enc.engaged:
            acting = enc.pending.actor if enc.pending is not None else None
            for party in [p for p in enc.engaged if p != responsible and p != acting]:
                self._release(enc, party, t)

    def _choose(self, enc: EncounterNotes, step: str, t: float) -> None:
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

    def _request(self, enc: EncounterNotes, option: Option, t: float) -> bool:
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

    def _push(self, due: float, enc: EncounterNotes) -> None:
        self.seq += 1
        heappush(self.heap, (due, self.seq, enc, enc.token))

    def _engage(self, enc: EncounterNotes, party: str, t: float) -> None:
        enc.engaged[party] = t
        load = self.load[party] = self.load[party] + 1
        stats = self.party[party]
        if party not in enc.ever:
            enc.ever.add(party)
            stats.cases += 1
        if load > stats.max_held:
            stats.max_held = load

    def _release(self, enc: EncounterNotes, party: str, t: float) -> None:
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

    def _finish(self, enc: EncounterNotes, t: float, step: str | None) -> None:
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


def _by(actor: str) -> Callable[[Option], bool]:
    return lambda option: option.actor == actor
