"""KPIs of a Monte Carlo run: raw samples per chunk, merged in chunk order, and
the frozen figures computed from them.

Percentiles are nearest-rank values of the merged raw samples, so they do not
depend on how the run was split over workers: the same seed gives the same KPIs.
Times are in minutes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from attrs import define, field, frozen

from ..protocol.conversion import format_duration
from ..protocol.model import MayorPromise, Protocol

__all__ = [
    "Breach",
    "Comparison",
    "DeadlineRate",
    "PartyLoad",
    "PartySamples",
    "ProtocolKPIs",
    "Samples",
    "Wait",
    "kpis",
    "merge",
    "percentile",
]


@define
class PartySamples:
    """What one party did in a chunk (mergeable by adding up).

    :param held: seconds it held cases (accepted and not yet done, or responsible).
    """

    cases: int = 0
    requests: int = 0
    no_shows: int = 0
    queued: int = 0
    queue_wait: float = 0.0
    held: float = 0.0
    max_held: int = 0

    def merge(self, other: PartySamples) -> None:
        """Add ``other`` to this one."""
        self.cases += other.cases
        self.requests += other.requests
        self.no_shows += other.no_shows
        self.queued += other.queued
        self.queue_wait += other.queue_wait
        self.held += other.held
        self.max_held = max(self.max_held, other.max_held)


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for key, value in other.items():
        into[key] = into.get(key, 0) + value


@define
class Samples:
    """Raw results of one protocol in one chunk (or several, merged in chunk order).

    Waiting times are seconds after arrival, only of encounters that got there;
    deadline counts are keyed by the step whose deadline fired.
    """

    protocol: str
    encounters: int = 0
    arrived_closed: int = 0
    acute: int = 0
    events: int = 0
    refused: int = 0
    deferred: int = 0
    expert: list[float] = field(factory=list)
    mayor: list[float] = field(factory=list)
    report: list[float] = field(factory=list)
    closed: int = 0
    emergency: int = 0
    ended_other: int = 0
    open_at_end: int = 0
    escalated: int = 0
    open_steps: dict[str, int] = field(factory=dict)
    deadline_encounters: dict[str, int] = field(factory=dict)
    deadline_firings: dict[str, int] = field(factory=dict)
    breaches: dict[str, int] = field(factory=dict)
    parties: dict[str, PartySamples] = field(factory=dict)
    observed: float = 0.0

    def merge(self, other: Samples) -> None:
        """Append ``other`` (the next chunk) to this one."""
        self.encounters += other.encounters
        self.arrived_closed += other.arrived_closed
        self.acute += other.acute
        self.events += other.events
        self.refused += other.refused
        self.deferred += other.deferred
        self.expert.extend(other.expert)
        self.mayor.extend(other.mayor)
        self.report.extend(other.report)
        self.closed += other.closed
        self.emergency += other.emergency
        self.ended_other += other.ended_other
        self.open_at_end += other.open_at_end
        self.escalated += other.escalated
        _add(self.open_steps, other.open_steps)
        _add(self.deadline_encounters, other.deadline_encounters)
        _add(self.deadline_firings, other.deadline_firings)
        _add(self.breaches, other.breaches)
        for key, party in other.parties.items():
            self.parties.setdefault(key, PartySamples()).merge(party)
        self.observed += other.observed


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@frozen
class Wait:
    """How long children waited for something, in minutes.

    :param reached: encounters that got there; the percentiles are over these.
    :param share: ``reached`` / encounters.
    """

    reached: int
    share: float
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, seconds: Sequence[float], encounters: int) -> Wait:
        """The distribution of ``seconds`` among ``encounters``."""
        if not seconds:
            return cls(0, 0.0, None, None, None, None)
        ordered = sorted(seconds)
        minutes = [percentile(ordered, p) / 60.0 for p in (50, 90, 99)]
        return cls(
            len(ordered),
            len(ordered) / encounters if encounters else 0.0,
            minutes[0],
            minutes[1],
            minutes[2],
            ordered[-1] / 60.0,
        )


@frozen
class DeadlineRate:
    """How often the deadline of ``step`` fired.

    :param share: share of encounters in which it fired at least once.
    :param firings: how often it fired in total.
    """

    step: str
    event: str
    share: float
    firings: int


@frozen
class Breach:
    """Encounters that broke a requirement the protocol states (``[requirements]``).

    :param requirement: ``max_wait_for_expert``, ``max_wait_for_mayor``,
        ``mayor_contact`` or ``report_before_close``.
    :param bound: the stated bound (``1h45m``), for the waiting-time requirements.
    """

    requirement: str
    bound: str | None
    count: int
    share: float


@frozen
class PartyLoad:
    """How loaded a party was.

    :param cases: encounters it took part in (was asked and came, or held).
    :param busy_hours: hours it held cases (summed over cases).
    :param mean_cases: average number of cases held at once (busy / observed time).
    :param utilisation: ``mean_cases / capacity`` when it has a capacity.
    :param max_cases: most cases held at once.
    :param queued: requests that waited because it was at capacity.
    :param mean_queue_wait: their average wait, in minutes.
    :param no_shows: requests it did not come for.
    """

    party: str
    cases: int
    busy_hours: float
    mean_cases: float
    utilisation: float | None
    max_cases: int
    capacity: int | None
    queued: int
    mean_queue_wait: float | None
    no_shows: int


@frozen
class ProtocolKPIs:
    """Every KPI of one protocol.

    :param encounters: children who got in (the counter was open).
    :param arrived_closed: children who came while the counter was closed.
    :param events: steps the engine committed (opens, fired events, deadlines).
    :param with_expert: time until a step tagged ``child_with_expert``.
    :param mayor: time until a step tagged ``mayor_involved``.
    :param report: time until a step tagged ``reported``.
    :param closed: ended in a closing step; ``emergency``: in an emergency step.
    :param open_at_end: still open when the run stopped (see ``drain``).
    :param escalated: passed a step tagged ``escalated``.
    :param refused: chosen events a guard (or the handover rule) refused.
    :param deferred: deadlines that could not fire when due because a plugin (or the
        store) failed, each time (``DeadlineDeferred``): retried when the lease ran out.
    """

    protocol: str
    version: str
    encounters: int
    arrived_closed: int
    acute: int
    events: int
    with_expert: Wait
    mayor: Wait
    report: Wait
    deadlines: tuple[DeadlineRate, ...]
    breaches: tuple[Breach, ...]
    parties: tuple[PartyLoad, ...]
    closed: int
    emergency: int
    open_at_end: int
    escalated: int
    refused: int
    observed_days: float
    deferred: int = 0


@frozen
class Comparison:
    """The KPIs of every protocol of a run, in the order given.

    :param seed: the run's seed; ``encounters`` per protocol; ``chunk`` size.
    """

    seed: int
    encounters: int
    chunk: int
    protocols: tuple[ProtocolKPIs, ...]

    def __getitem__(self, protocol_id: str) -> ProtocolKPIs:
        for item in self.protocols:
            if item.protocol == protocol_id:
                return item
        raise KeyError(protocol_id)


def _requirements(protocol: Protocol) -> list[tuple[str, str | None]]:
    req = protocol.requirements
    out: list[tuple[str, str | None]] = []
    if protocol.kind.value != "encounter":
        return out
    if req.max_wait_for_expert is not None:
        out.append(("max_wait_for_expert", format_duration(req.max_wait_for_expert)))
    if req.max_wait_for_mayor is not None:
        out.append(("max_wait_for_mayor", format_duration(req.max_wait_for_mayor)))
    if req.mayor_promise is MayorPromise.MET:
        out.append(("mayor_contact", None))
    if req.report_before_close:
        out.append(("report_before_close", None))
    return out


def kpis(
    protocol: Protocol, samples: Samples, capacities: Mapping[str, int | None]
) -> ProtocolKPIs:
    """The KPIs of ``protocol`` from its merged ``samples``.

    :param capacities: each party's capacity in the run (after overrides).
    """
    n = samples.encounters
    share = (lambda k: k / n) if n else (lambda k: 0.0)
    deadlines = tuple(
        DeadlineRate(
            key,
            step.deadline.event,
            share(samples.deadline_encounters.get(key, 0)),
            samples.deadline_firings.get(key, 0),
        )
        for key, step in protocol.steps.items()
        if step.deadline is not None
    )
    breaches = tuple(
        Breach(name, bound, samples.breaches.get(name, 0), share(samples.breaches.get(name, 0)))
        for name, bound in _requirements(protocol)
    )
    observed = samples.observed
    parties = []
    for key in protocol.parties:
        ps = samples.parties.get(key, PartySamples())
        mean = ps.held / observed if observed else 0.0
        capacity = capacities.get(key)
        parties.append(
            PartyLoad(
                party=key,
                cases=ps.cases,
                busy_hours=ps.held / 3600.0,
                mean_cases=mean,
                utilisation=mean / capacity if capacity else None,
                max_cases=ps.max_held,
                capacity=capacity,
                queued=ps.queued,
                mean_queue_wait=ps.queue_wait / ps.queued / 60.0 if ps.queued else None,
                no_shows=ps.no_shows,
            )
        )
    return ProtocolKPIs(
        protocol=protocol.id,
        version=protocol.version,
        encounters=n,
        arrived_closed=samples.arrived_closed,
        acute=samples.acute,
        events=samples.events,
        with_expert=Wait.of(samples.expert, n),
        mayor=Wait.of(samples.mayor, n),
        report=Wait.of(samples.report, n),
        deadlines=deadlines,
        breaches=breaches,
        parties=tuple(parties),
        closed=samples.closed,
        emergency=samples.emergency,
        open_at_end=samples.open_at_end,
        escalated=samples.escalated,
        refused=samples.refused,
        observed_days=observed / 86400.0,
        deferred=samples.deferred,
    )


def merge(chunks: Iterable[Samples], protocol_id: str) -> Samples:
    """Merge chunk samples in the order given (chunk order)."""
    total = Samples(protocol_id)
    for chunk in chunks:
        total.merge(chunk)
    return total
