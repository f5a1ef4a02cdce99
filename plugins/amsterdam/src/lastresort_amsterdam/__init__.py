"""lastresort-amsterdam: Amsterdam's "mayor as last resort" arrangement as a lastresort plugin.

When a maltreated child reports at the counter, a worker of *GGD Vangnet* (the public health
service's outreach team) comes to the city hall, takes over responsibility and judges when
the mayor is engaged; the aim is that the mayor speaks to the child in person as soon as
possible (Taskforce kindermishandeling en seksueel misbruik, letter of 27 January 2014).

The protocol itself is data (``amsterdam.toml`` in this package). This module adds what the
data cannot say, as a check on the ``amsterdam`` protocol:

- responsibility leaves the counter only to GGD Vangnet (or, in acute danger, to the police);
- the mayor's conversation is recorded by the mayor alone: no one else may move the child into
  a step tagged ``mayor_involved``.

and the police's public number in the party directory. Use it through the ``lastresort``
entry point (installed), or explicitly::

    import lastresort as lr
    import lastresort_amsterdam

    engine = lr.Engine(plugins=[lastresort_amsterdam], entry_points=False)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources

import lastresort as lr

__all__ = [
    "PROTOCOL_ID",
    "lastresort_party_directory",
    "lastresort_protocols",
    "lastresort_validate_protocol",
    "protocol",
]

#: The protocol id this plugin provides.
PROTOCOL_ID = "amsterdam"

_COUNTER = "counter"
_VANGNET = "vangnet"
_MAYOR = "mayor"
_MAYOR_TAG = "mayor_involved"


@functools.cache
def protocol() -> lr.Protocol:
    """The ``amsterdam`` protocol, loaded once from the package's ``amsterdam.toml``.

    :raises lastresort.ProtocolError: when the data file is broken (every problem listed).
    """
    source = resources.files(__name__).joinpath("amsterdam.toml")
    with resources.as_file(source) as path:
        return lr.load_protocol(path)


@lr.hookimpl
def lastresort_protocols() -> Sequence[lr.Protocol]:
    """Provide the ``amsterdam`` protocol."""
    return [protocol()]


@lr.hookimpl
def lastresort_validate_protocol(protocol: lr.Protocol) -> Sequence[str]:
    """Keep Amsterdam's two defining rules (only for the protocol ``amsterdam``).

    :param protocol: a protocol the engine is about to accept.
    :returns: one problem per transition that breaks a rule, with its path.
    """
    if protocol.id != PROTOCOL_ID:
        return []
    problems: list[str] = []
    steps = protocol.steps
    if _VANGNET not in protocol.parties:
        problems.append("$.parties: the amsterdam protocol needs the party 'vangnet' (GGD Vangnet)")
    for i, transition in enumerate(protocol.transitions):
        target = steps.get(transition.target)
        if target is None:  # the core reports unknown steps
            continue
        for source in protocol.sources_of(transition):
            here = steps.get(source)
            if here is None:
                continue
            if (
                here.responsible == _COUNTER
                and target.responsible not in (None, _COUNTER, _VANGNET)
                and "emergency" not in target.tags
            ):
                problems.append(
                    f"$.transitions[{i}].to: from the counter, responsibility goes to GGD"
                    f" Vangnet ('vangnet'), not to {target.responsible!r} (step"
                    f" {transition.target!r}, from {source!r})"
                )
            if (
                _MAYOR_TAG in target.tags
                and _MAYOR_TAG not in here.tags
                and transition.by != (_MAYOR,)
            ):
                problems.append(
                    f"$.transitions[{i}].by: only the mayor records that the mayor has spoken"
                    f" to the child in person (into {transition.target!r} from {source!r}),"
                    f" not {list(transition.by)}"
                )
    return problems


@lr.hookimpl
def lastresort_party_directory(protocol: lr.Protocol, party: lr.Party) -> str | None:
    """The police's public number (112) in the ``amsterdam`` protocol; ``None`` otherwise."""
    if protocol.id != PROTOCOL_ID:
        return None
    return "112" if party.kind is lr.PartyKind.EMERGENCY else None
