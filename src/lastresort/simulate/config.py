"""The Monte Carlo simulation's configuration: arrivals, children, parties, policies.

A :class:`SimulationConfig` is a frozen value, loaded from TOML (or JSON, or a
mapping) through its own converter by :func:`load_config`: unknown keys, wrong
types and out-of-range numbers are errors, all reported at once with their path
(``$.arrivals.hours: ...``). ``check_config`` (``check.py``) adds the problems
that depend on the protocols simulated (an unknown step or event in a policy, an
age band a protocol does not declare). Every key is described in
``docs/simulation.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import field, frozen
from cattrs import Converter
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ..errors import ProtocolError, SimulationConfigError
from ..protocol.conversion import Invalid, problems_of, suggest
from ..protocol.conversion import make_converter as make_protocol_converter
from ..protocol.files import read_document
from ..protocol.hours import Hours
from ..protocol.model import FrozenMap, ResponseModel

__all__ = [
    "WEEKDAYS",
    "Arrivals",
    "Children",
    "PartySettings",
    "ProtocolSettings",
    "SimulationConfig",
    "SimulationConfigError",
    "dump_config",
    "load_config",
]

#: Keys of ``[arrivals] weekdays``, Monday first.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_AGE_BANDS = ("0-7", "8-11", "12-15", "16-17")


def _frozen_map(items: Mapping[str, Any]) -> Mapping[str, Any]:
    return items if isinstance(items, FrozenMap) else FrozenMap(items)


def _floats(items: Iterable[float]) -> tuple[float, ...]:
    return tuple(float(x) for x in items)


@frozen
class Arrivals:
    """When children come to the city hall (the demand).

    :param per_week: expected number of children who come in a week (168 hours),
        whether or not the counter is open; those who come while it is closed are
        counted as ``arrived_closed`` and not simulated.
    :param weekdays: relative weight of each day (``mon`` ... ``sun``; missing days 1).
    :param hours: 24 relative weights of the local hours of the day (00-01 first).
    """

    per_week: float = 1.0
    weekdays: Mapping[str, float] = field(
        factory=lambda: FrozenMap((d, 1.0) for d in WEEKDAYS), converter=_frozen_map
    )
    hours: tuple[float, ...] = field(default=(1.0,) * 24, converter=_floats)


@frozen
class Children:
    """Shares of the children's facts, drawn once per child and shared by every protocol.

    :param acute: share of children in acute danger: the responsible party of the
        first step fires ``acute_danger`` (nobody else does in the simulation).
    :param disclosure: share of children who disclose (the bool fact ``disclosure``).
    :param age_band: share of each age band (the enum fact ``age_band``); sums to 1.
    :param facts: any other declared fact: a share (a bool fact) or a table of
        value shares summing to 1 (an enum fact).
    """

    acute: float = 0.05
    disclosure: float = 0.5
    age_band: Mapping[str, float] = field(
        factory=lambda: FrozenMap((b, 0.25) for b in _AGE_BANDS), converter=_frozen_map
    )
    facts: Mapping[str, float | Mapping[str, float]] = field(
        factory=FrozenMap, converter=_frozen_map
    )


@frozen
class PartySettings:
    """Overrides of a party's simulation model; unset keys keep the protocol's values.

    :param hours: availability (``always`` or e.g. ``mon-fri 08:00-18:00``).
    :param response: response time, median and 90th percentile (a lognormal).
    :param no_show: probability that the party, asked from outside, does not come.
    :param capacity: how many children it can hold at once.
    """

    hours: str | None = None
    response: ResponseModel | None = None
    no_show: float | None = None
    capacity: int | None = None


@frozen
class ProtocolSettings:
    """Settings that apply to one protocol (``[protocols.<id>]``).

    :param parties: party overrides for this protocol only (they win over ``[parties]``).
    :param policy: per step, the weight of each event; a step with a policy fires
        only the events it lists.
    """

    parties: Mapping[str, PartySettings] = field(factory=FrozenMap, converter=_frozen_map)
    policy: Mapping[str, Mapping[str, float]] = field(factory=FrozenMap, converter=_frozen_map)


def _default_start() -> datetime:
    return datetime(2026, 1, 5, tzinfo=ZoneInfo("Europe/Amsterdam"))  # a Monday


@frozen
class SimulationConfig:
    """Everything a Monte Carlo run needs besides the protocols, the seed and the size.

    :param start: when every chunk's virtual time starts (timezone-aware).
    :param timezone: the local time zone of hours and profiles (IANA name).
    :param chunk: encounters per chunk; chunks are the unit of parallel work and
        of determinism (changing it changes the random numbers).
    :param drain: how long a chunk keeps running after its last arrival; what is
        still open then is counted as open at the end.
    :param default_response: response model of parties that have none, when set
        (``None``, the default: such a party is a problem of :func:`check_config`
        naming it, since a made-up response time would skew every figure). When set,
        the parties it stands in for are listed in the result and the report.
    """

    start: datetime = field(factory=_default_start)
    timezone: str = "Europe/Amsterdam"
    chunk: int = 250
    drain: timedelta = timedelta(days=14)
    default_response: ResponseModel | None = None
    arrivals: Arrivals = field(factory=Arrivals)
    children: Children = field(factory=Children)
    parties: Mapping[str, PartySettings] = field(factory=FrozenMap, converter=_frozen_map)
    protocols: Mapping[str, ProtocolSettings] = field(factory=FrozenMap, converter=_frozen_map)

    @property
    def zone(self) -> ZoneInfo:
        """The local time zone."""
        return ZoneInfo(self.timezone)

    def party(self, protocol_id: str, party: str) -> PartySettings:
        """The overrides for ``party`` of protocol ``protocol_id`` (protocol-specific
        keys win over ``[parties]``)."""
        common = self.parties.get(party, PartySettings())
        settings = self.protocols.get(protocol_id)
        own = settings.parties.get(party) if settings else None
        if own is None:
            return common
        return PartySettings(
            hours=own.hours if own.hours is not None else common.hours,
            response=own.response if own.response is not None else common.response,
            no_show=own.no_show if own.no_show is not None else common.no_show,
            capacity=own.capacity if own.capacity is not None else common.capacity,
        )


# -- structure hooks: every range check is located by the converter -------------------


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise Invalid(f"expected a number, got {type(value).__name__} {value!r}")
    return float(value)


def _share(value: Any, _: Any = None) -> float:
    number = _number(value)
    if not 0.0 <= number <= 1.0:
        raise Invalid(f"expected a share between 0 and 1, got {value!r}")
    return number


def _weight(value: Any, _: Any = None) -> float:
    number = _number(value)
    if not 0.0 <= number < math.inf:
        raise Invalid(f"expected a weight of at least 0, got {value!r}")
    return number


def _positive(value: Any, _: Any) -> float:
    number = _number(value)
    if not 0.0 < number < math.inf:
        raise Invalid(f"expected a number above 0, got {value!r}")
    return number


def _count(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(f"expected a whole number of at least 1, got {value!r}")
    return value


def _optional_count(value: Any, _: Any) -> int | None:
    return None if value is None else _count(value, _)


def _optional_share(value: Any, _: Any) -> float | None:
    return None if value is None else _share(value)


def _hours_text(value: Any, _: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"expected hours such as 'mon-fri 08:00-18:00', got {value!r}")
    try:
        Hours.parse(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return value


def _timezone(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a time zone name such as 'Europe/Amsterdam', got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/Amsterdam'"
        ) from None
    return value


def _drain(value: Any, _: Any) -> timedelta:
    delta = converter.structure(value, timedelta)
    if delta <= timedelta(0):
        raise Invalid(f"expected a duration longer than zero, got {value!r}")
    return delta


def _response(value: Any, _: Any) -> ResponseModel | None:
    if value is None:
        return None
    model = converter.structure(value, ResponseModel)
    if model.median <= timedelta(0):
        raise Invalid("median: expected a duration longer than zero")
    if model.p90 < model.median:
        raise Invalid(f"p90 ({model.p90}) is below the median ({model.median})")
    return model


def _table(value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a table, got {type(value).__name__} {value!r}")
    return value


def _weekdays(value: Any, _: Any) -> Mapping[str, float]:
    table = _table(value)
    problems = [
        f"unknown day {key!r}{suggest(str(key), WEEKDAYS)}; use {', '.join(WEEKDAYS)}"
        for key in table
        if key not in WEEKDAYS
    ]
    if problems:
        raise Invalid("; ".join(problems))
    weights = {day: _weight(table.get(day, 1.0)) for day in WEEKDAYS}
    if not any(weights.values()):
        raise Invalid("every day has weight 0: no child would ever come")
    return FrozenMap(weights)


def _hour_weights(value: Any, _: Any) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or len(value) != 24:
        raise Invalid(f"expected a list of 24 weights (hours 00-01 ... 23-24), got {value!r}")
    weights = tuple(_weight(v) for v in value)
    if not any(weights):
        raise Invalid("every hour has weight 0: no child would ever come")
    return weights


def _shares(value: Any, _: Any = None) -> Mapping[str, float]:
    table = _table(value)
    if not table:
        raise Invalid("expected at least one value with its share")
    shares = {str(key): _share(v) for key, v in table.items()}
    total = sum(shares.values())
    if abs(total - 1.0) > 1e-9:
        raise Invalid(f"shares must add up to 1, they add up to {total:g}")
    return FrozenMap(shares)


def _fact_shares(value: Any, _: Any) -> Mapping[str, float | Mapping[str, float]]:
    table = _table(value)
    out: dict[str, float | Mapping[str, float]] = {}
    problems = []
    for key, spec in table.items():
        if key in {"age_band", "disclosure"}:
            problems.append(f"{key}: set it as [children] {key}, not under facts")
            continue
        try:
            out[key] = _shares(spec) if isinstance(spec, Mapping) else _share(spec)
        except Invalid as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise Invalid("; ".join(problems))
    return FrozenMap(out)


def _policy(value: Any, _: Any) -> Mapping[str, Mapping[str, float]]:
    table = _table(value)
    out: dict[str, Mapping[str, float]] = {}
    problems = []
    for step, events in table.items():
        try:
            weights = {str(event): _weight(w) for event, w in _table(events).items()}
        except Invalid as exc:
            problems.append(f"{step}: {exc}")
            continue
        if not any(weights.values()):
            problems.append(f"{step}: every event has weight 0 (leave the step out instead)")
        out[str(step)] = FrozenMap(weights)
    if problems:
        raise Invalid("; ".join(problems))
    return FrozenMap(out)


def make_converter() -> Converter:
    """The simulator's converter: the protocol converter, and the configuration's
    hooks (shares, weights, hours, response models, policies)."""
    conv = make_protocol_converter()
    conv.register_structure_hook(
        Arrivals,
        make_dict_structure_fn(
            Arrivals,
            conv,
            per_week=override(struct_hook=_positive),
            weekdays=override(struct_hook=_weekdays),
            hours=override(struct_hook=_hour_weights),
        ),
    )
    conv.register_structure_hook(
        Children,
        make_dict_structure_fn(
            Children,
            conv,
            acute=override(struct_hook=_share),
            disclosure=override(struct_hook=_share),
            age_band=override(struct_hook=_shares),
            facts=override(struct_hook=_fact_shares),
        ),
    )
    conv.register_structure_hook(
        PartySettings,
        make_dict_structure_fn(
            PartySettings,
            conv,
            hours=override(struct_hook=_hours_text),
            response=override(struct_hook=_response),
            no_show=override(struct_hook=_optional_share),
            capacity=override(struct_hook=_optional_count),
        ),
    )
    conv.register_structure_hook(
        ProtocolSettings,
        make_dict_structure_fn(ProtocolSettings, conv, policy=override(struct_hook=_policy)),
    )
    conv.register_structure_hook(
        SimulationConfig,
        make_dict_structure_fn(
            SimulationConfig,
            conv,
            timezone=override(struct_hook=_timezone),
            chunk=override(struct_hook=_count),
            drain=override(struct_hook=_drain),
            default_response=override(struct_hook=_response),
        ),
    )
    # every value is written (a dump says exactly what a run used), except unset overrides
    for cls in (Arrivals, Children, PartySettings, ProtocolSettings, SimulationConfig):
        conv.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=cls is PartySettings)
        )
    return conv


converter: Converter = make_converter()


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> SimulationConfig:
    """Load a simulation configuration from a TOML or JSON file, or a mapping.

    :param source: a path to a ``.toml`` or ``.json`` file, or a mapping of the same shape.
    :raises SimulationConfigError: listing every problem with its path.
    """
    try:
        data, name = read_document(source)
    except ProtocolError as exc:
        raise SimulationConfigError(problems=exc.problems, source=exc.source) from exc
    if not isinstance(data, Mapping):
        raise SimulationConfigError(
            problems=[f"$: expected a table, got {type(data).__name__}"], source=name
        )
    try:
        return converter.structure(data, SimulationConfig)
    except Exception as exc:
        raise SimulationConfigError(problems=problems_of(exc), source=name) from exc


def dump_config(config: SimulationConfig) -> dict[str, Any]:
    """The configuration as JSON/TOML-compatible data; ``load_config(dump_config(c)) == c``."""
    data: dict[str, Any] = converter.unstructure(config)
    data["start"] = config.start.isoformat()
    if data.get("default_response") is None:
        data.pop("default_response", None)  # unset: TOML has no null
    return data
