"""The problems of a simulation configuration that depend on the protocols simulated."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..protocol.conversion import suggest
from ..protocol.hours import Hours
from ..protocol.model import ACUTE_DANGER, CLOCK, FactKind, Protocol
from .arrivals import can_arrive
from .config import ProtocolSettings, SimulationConfig
from .plan import options_from

__all__ = ["check_config", "defaulted_responses"]


def defaulted_responses(config: SimulationConfig, protocol: Protocol) -> tuple[str, ...]:
    """The parties of ``protocol`` that fire events in a simulation (a role in some
    transition's ``by``) but have no response model, neither in the protocol nor in
    ``config``'s ``[parties]``/``[protocols.<id>.parties]``: they need
    ``default_response``."""
    acting = {role for t in protocol.transitions for role in t.by if role != CLOCK}
    return tuple(
        key
        for key, party in protocol.parties.items()
        if key in acting
        and party.response is None
        and config.party(protocol.id, key).response is None
    )


def check_config(config: SimulationConfig, protocols: Iterable[Protocol]) -> list[str]:
    """The problems of ``config`` with these protocols (empty when it fits them).

    Checked: the children's facts against each protocol's declared facts, every
    ``[protocols.<id>]`` section of a simulated protocol (parties, policy steps and
    events), and that children can arrive while each protocol's counter is open.
    Sections for protocols not simulated, and ``[parties.<key>]`` for keys no
    simulated protocol has, are allowed (one file can serve several comparisons).
    """
    problems: list[str] = []
    add = problems.append
    children = config.children
    for protocol in protocols:
        pid = protocol.id
        facts = protocol.facts
        band = facts.get("age_band")
        if band is not None:
            if band.kind is not FactKind.ENUM:
                add(f"$.children.age_band: protocol {pid!r} declares 'age_band' as a bool")
            else:
                unknown = [v for v in children.age_band if v not in band.values]
                if unknown:
                    add(
                        f"$.children.age_band: protocol {pid!r} has no age band"
                        f" {', '.join(map(repr, unknown))} (it declares {', '.join(band.values)})"
                    )
        disclosure = facts.get("disclosure")
        if disclosure is not None and disclosure.kind is not FactKind.BOOL:
            add(f"$.children.disclosure: protocol {pid!r} declares 'disclosure' as an enum")
        for key, spec in children.facts.items():
            fact = facts.get(key)
            if fact is None:
                continue
            if isinstance(spec, Mapping) != (fact.kind is FactKind.ENUM):
                want = "a table of value shares" if fact.kind is FactKind.ENUM else "one share"
                add(f"$.children.facts.{key}: protocol {pid!r} needs {want} for this fact")
            elif isinstance(spec, Mapping):
                unknown = [v for v in spec if v not in fact.values]
                if unknown:
                    add(
                        f"$.children.facts.{key}: protocol {pid!r} has no value"
                        f" {', '.join(map(repr, unknown))} (it declares {', '.join(fact.values)})"
                    )
        if config.default_response is None:
            for key in defaulted_responses(config, protocol):
                add(
                    f"$.parties.{key}.response: party {key!r} of protocol {pid!r} fires events"
                    " but has no response model; give it a `response` in the protocol or"
                    f" here ([parties.{key}] response), or set default_response (it is then"
                    " named in the report)"
                )
        settings = config.protocols.get(pid)
        if settings is not None:
            problems.extend(_check_settings(protocol, settings))
        opener = protocol.steps[protocol.initial].responsible
        if opener is not None:
            hours = config.party(pid, opener).hours or protocol.parties[opener].hours
            if not can_arrive(config.arrivals, Hours.parse(hours)):
                add(
                    f"$.arrivals: no child can ever arrive at protocol {pid!r}: every hour in"
                    f" which its counter ({opener!r}, {hours!r}) is open has weight 0"
                )
    return problems


def _check_settings(protocol: Protocol, settings: ProtocolSettings) -> list[str]:
    problems: list[str] = []
    base = f"$.protocols.{protocol.id}"
    for key in settings.parties:
        if key not in protocol.parties:
            problems.append(
                f"{base}.parties.{key}: protocol {protocol.id!r} has no party {key!r}"
                f"{suggest(key, protocol.parties)}"
            )
    for step, weights in settings.policy.items():
        path = f"{base}.policy.{step}"
        if step not in protocol.steps:
            problems.append(f"{path}: unknown step {step!r}{suggest(step, protocol.steps)}")
            continue
        events = {option.event for option in options_from(protocol, step)}
        for event in weights:
            if event == ACUTE_DANGER:
                problems.append(
                    f"{path}.{event}: acute_danger is fired for acute children only"
                    " (set [children] acute)"
                )
            elif event not in events:
                clock_only = any(
                    t.event == event and t.by == (CLOCK,) for t in protocol.transitions
                )
                why = (
                    "a deadline event, fired by the clock"
                    if clock_only
                    else f"not fired by a party from step {step!r}"
                )
                problems.append(
                    f"{path}.{event}: {why}; events here: {', '.join(sorted(events)) or 'none'}"
                    f"{suggest(event, events)}"
                )
    return problems
