"""What the simulator reads from a protocol and its configuration, computed once.

For each party a response model (lognormal from median and p90), its hours,
no-show probability and capacity; for each step the options the behaviour
policy chooses from, with their weights; the tags the KPIs look for.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import time, timedelta
from statistics import NormalDist
from typing import NamedTuple

from attrs import frozen

from ..protocol.hours import Hours
from ..protocol.model import (
    ACUTE_DANGER,
    CLOCK,
    MayorPromise,
    Protocol,
    ProtocolKind,
    Requirements,
    ResponseModel,
)
from .config import SimulationConfig

__all__ = [
    "Option",
    "PartyModel",
    "ProtocolPlan",
    "acute_option",
    "options_from",
    "plan_of",
    "week_of",
]

_NORMAL = NormalDist()
#: The standard normal's 90th percentile: sigma = ln(p90 / median) / Z90.
Z90 = _NORMAL.inv_cdf(0.9)
_inv_cdf = _NORMAL.inv_cdf


class Option(NamedTuple):
    """One thing a party can do in a step: fire ``event`` as ``actor``.

    A named tuple rather than an attrs value: the event loop hashes it for
    every step entered, and a tuple of two strings hashes in C.
    """

    event: str
    actor: str


#: Bits of :attr:`ProtocolPlan.marks`: what entering a step means for the KPIs.
EXPERT, MAYOR, REPORT, SETTLED, ESCALATED, TERMINAL = 1, 2, 4, 8, 16, 32


@frozen
class PartyModel:
    """How a party behaves in the simulation.

    :param median: median response time in seconds.
    :param sigma: the lognormal's shape, ``ln(p90 / median) / Z90`` (0: always the median).
    """

    key: str
    hours: Hours
    week: bytes
    median: float
    sigma: float
    no_show: float
    capacity: int | None

    def delay(self, u: float) -> float:
        """The response time (seconds) at quantile ``u`` of the lognormal."""
        if self.sigma == 0.0:
            return self.median
        return self.median * math.exp(self.sigma * _inv_cdf(min(max(u, 1e-12), 1 - 1e-12)))


def week_of(hours: Hours) -> bytes:
    """One byte per local minute of the week (0 = Monday 00:00): 1 when on duty."""
    if hours.always:
        return b"\x01" * 10080
    week = bytearray(10080)
    for day, begin, end in hours.windows:
        first = day * 1440 + begin.hour * 60 + begin.minute
        last = day * 1440 + (1440 if end == time.max else end.hour * 60 + end.minute)
        week[first:last] = b"\x01" * (last - first)
    return bytes(week)


def _actor(protocol: Protocol, step: str, by: tuple[str, ...], target: str) -> str | None:
    roles = [role for role in by if role != CLOCK]
    if not roles:
        return None
    here = protocol.steps[step].responsible
    receiver = protocol.steps[target].responsible
    if receiver != here and receiver is not None:
        # a handover is accepted by the receiving party, nobody else
        return receiver if receiver in roles else None
    return here if here in roles else roles[0]


def options_from(protocol: Protocol, step: str) -> list[Option]:
    """The options of ``step`` in declaration order: every transition from it that
    a party may fire (not the clock, not ``acute_danger``), each with one actor:
    the receiving party for a handover, else the responsible party when it may,
    else the first role of ``by``."""
    found: list[Option] = []
    for transition in protocol.transitions:
        if transition.event == ACUTE_DANGER or step not in protocol.sources_of(transition):
            continue
        actor = _actor(protocol, step, transition.by, transition.target)
        if actor is not None and Option(transition.event, actor) not in found:
            found.append(Option(transition.event, actor))
    return found


def acute_option(protocol: Protocol, step: str) -> Option | None:
    """Who fires ``acute_danger`` in ``step``: the responsible party when it may,
    else the first role that may; ``None`` when it is not defined there."""
    for transition in protocol.transitions:
        if transition.event == ACUTE_DANGER and step in protocol.sources_of(transition):
            roles = [role for role in transition.by if role != CLOCK]
            if roles:
                here = protocol.steps[step].responsible
                return Option(ACUTE_DANGER, here if here in roles else roles[0])
    return None


def _tagged(protocol: Protocol, *tags: str) -> frozenset[str]:
    return frozenset(k for k, s in protocol.steps.items() if any(t in s.tags for t in tags))


#: The model of a party that never acts (only told, or only responsible): never sampled.
_IDLE = ResponseModel(timedelta(minutes=1), timedelta(minutes=1))


class ProtocolPlan:
    """A protocol prepared for simulation with a configuration (built once per process)."""

    def __init__(self, protocol: Protocol, config: SimulationConfig) -> None:
        self.protocol = protocol
        pid = protocol.id
        steps = protocol.steps
        self.opener: str = steps[protocol.initial].responsible or next(iter(protocol.parties))
        self.parties: dict[str, PartyModel] = {}
        for key, party in protocol.parties.items():
            own = config.party(pid, key)
            # a party without any model never fires an event (check_config refuses
            # one that does unless default_response is set): its figures are never drawn
            response = own.response or party.response or config.default_response or _IDLE
            # at least a second: time must move on, or a cycle of instant responses never ends
            median = max(response.median.total_seconds(), 1.0)
            p90 = max(response.p90.total_seconds(), median)
            hours = Hours.parse(own.hours if own.hours is not None else party.hours)
            self.parties[key] = PartyModel(
                key=key,
                hours=hours,
                week=week_of(hours),
                median=median,
                sigma=math.log(p90 / median) / Z90 if p90 > median > 0 else 0.0,
                no_show=own.no_show if own.no_show is not None else party.no_show,
                capacity=own.capacity if own.capacity is not None else party.capacity,
            )
        self.counter_week = self.parties[self.opener].week
        self.responsible: dict[str, str | None] = {k: s.responsible for k, s in steps.items()}
        settings = config.protocols.get(pid)
        policy: Mapping[str, Mapping[str, float]] = settings.policy if settings else {}
        self.options: dict[str, tuple[Option, ...]] = {}
        self.weights: dict[str, tuple[float, ...]] = {}
        self.acute: dict[str, Option] = {}
        for key, step in steps.items():
            if step.terminal:
                continue
            options = options_from(protocol, key)
            weights = policy.get(key)
            chosen = [(o, 1.0 if weights is None else weights.get(o.event, 0.0)) for o in options]
            chosen = [(o, w) for o, w in chosen if w > 0]
            self.options[key] = tuple(o for o, _ in chosen)
            self.weights[key] = tuple(w for _, w in chosen)
            acute = acute_option(protocol, key)
            if acute is not None:
                self.acute[key] = acute
        self.keeps: dict[str, frozenset[Option]] = {
            k: frozenset(v) for k, v in self.options.items()
        }
        self.terminal = frozenset(k for k, s in steps.items() if s.terminal)
        self.closing = frozenset(protocol.closing_steps())
        self.expert_steps = _tagged(protocol, "child_with_expert")
        self.mayor_steps = _tagged(protocol, "mayor_involved")
        self.report_steps = _tagged(protocol, "reported")
        self.settled_steps = _tagged(protocol, "reported", "safe_arrangement")
        self.escalated_steps = _tagged(protocol, "escalated")
        self.marks: dict[str, int] = {
            k: (EXPERT if k in self.expert_steps else 0)
            | (MAYOR if k in self.mayor_steps else 0)
            | (REPORT if k in self.report_steps else 0)
            | (SETTLED if k in self.settled_steps else 0)
            | (ESCALATED if k in self.escalated_steps else 0)
            | (TERMINAL if k in self.terminal else 0)
            for k in steps
        }
        self.fact_keys = tuple(protocol.facts)
        req = protocol.requirements
        if protocol.kind is not ProtocolKind.ENCOUNTER:  # the encounter-only rules do not apply
            req = Requirements(report_before_close=False)
        self.max_wait_for_expert = (
            req.max_wait_for_expert.total_seconds() if req.max_wait_for_expert else None
        )
        self.max_wait_for_mayor = (
            req.max_wait_for_mayor.total_seconds() if req.max_wait_for_mayor else None
        )
        self.mayor_contact = req.mayor_promise is MayorPromise.MET
        self.report_before_close = req.report_before_close
        self.has_deadline = frozenset(k for k, s in steps.items() if s.deadline is not None)
        #: (step, event) -> the step entered, where that cannot depend on a guard
        self.target: dict[tuple[str, str], str] = {}
        for key in steps:
            found = [t for t in protocol.transitions if key in protocol.sources_of(t)]
            for event in {t.event for t in found}:
                same = [t for t in found if t.event == event]
                if len(same) == 1 and same[0].guard is None:
                    self.target[(key, event)] = same[0].target
        self.deadlines: tuple[tuple[str, str], ...] = tuple(
            (k, s.deadline.event) for k, s in steps.items() if s.deadline is not None
        )


@functools.lru_cache(maxsize=32)
def plan_of(protocol: Protocol, config: SimulationConfig) -> ProtocolPlan:
    """The plan of ``protocol`` with ``config``, built once per process (both are frozen)."""
    return ProtocolPlan(protocol, config)
