"""lastresort-amsterdam: Amsterdam's "mayor as last resort" arrangement as a lastresort plugin.

When a maltreated child reports at the counter, a worker of *GGD Vangnet* (the public health
service's outreach team) comes to the city hall, takes over responsibility and judges when
the mayor is engaged; the aim is that the mayor speaks to the child in person as soon as
possible (Taskforce kindermishandeling en seksueel misbruik, letter of 27 January 2014).

The protocol itself is data (``amsterdam.toml`` in this package). This module adds what the
data cannot say, as a check on the ``amsterdam`` protocol (the engine refuses a protocol
``amsterdam`` that breaks it, and ``lastresort check`` reports each rule as a property):

- ``amsterdam-vangnet-takes-over``: responsibility leaves the counter only to GGD Vangnet
  (or, in acute danger, to the police);
- ``amsterdam-mayor-in-person``: the mayor's conversation is recorded by the mayor alone:
  no one else may move the child into a step tagged ``mayor_involved``.

and the police's public number in the party directory. Use it through the ``lastresort``
entry point (installed), or explicitly::

    import lastresort as lr
    import lastresort_amsterdam

    engine = lr.Engine(plugins=[lastresort_amsterdam], entry_points=False)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from attrs import frozen

import lastresort as lr

__all__ = [
    "PROPERTY_MAYOR_IN_PERSON",
    "PROPERTY_VANGNET",
    "PROTOCOL_ID",
    "lastresort_party_directory",
    "lastresort_protocol_properties",
    "lastresort_protocols",
    "lastresort_validate_protocol",
    "protocol",
]

#: The protocol id this plugin provides.
PROTOCOL_ID = "amsterdam"
#: Verifier property: responsibility leaves the counter only for GGD Vangnet.
PROPERTY_VANGNET = "amsterdam-vangnet-takes-over"
#: Verifier property: only the mayor records the conversation with the child.
PROPERTY_MAYOR_IN_PERSON = "amsterdam-mayor-in-person"

_COUNTER = "counter"
_VANGNET = "vangnet"
_MAYOR = "mayor"
_MAYOR_TAG = "mayor_involved"


@functools.cache
def protocol() -> lr.Protocol:
    """The ``amsterdam`` protocol, loaded once from the package's ``amsterdam.toml``.

    :raises lastresort.ProtocolError: when the data file is broken (every problem listed).
    """
    return lr.load_packaged_protocol(__name__, "amsterdam.toml")


@lr.hookimpl
def lastresort_protocols() -> Sequence[lr.Protocol]:
    """Provide the ``amsterdam`` protocol."""
    return [protocol()]


@frozen
class _Breach:
    """One transition that breaks a rule: where in the file, and where in the graph (for
    the verifier's counterexample)."""

    rule: str
    path: str
    message: str
    step: str | None = None
    event: str | None = None


def _breaches(protocol: lr.Protocol) -> list[_Breach]:
    breaches: list[_Breach] = []
    steps = protocol.steps
    if _VANGNET not in protocol.parties:
        breaches.append(
            _Breach(
                PROPERTY_VANGNET,
                "$.parties",
                "the amsterdam protocol needs the party 'vangnet' (GGD Vangnet)",
            )
        )
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
                breaches.append(
                    _Breach(
                        PROPERTY_VANGNET,
                        f"$.transitions[{i}].to",
                        "from the counter, responsibility goes to GGD Vangnet ('vangnet'),"
                        f" not to {target.responsible!r} (step {transition.target!r},"
                        f" from {source!r})",
                        source,
                        transition.event,
                    )
                )
            if (
                _MAYOR_TAG in target.tags
                and _MAYOR_TAG not in here.tags
                and transition.by != (_MAYOR,)
            ):
                breaches.append(
                    _Breach(
                        PROPERTY_MAYOR_IN_PERSON,
                        f"$.transitions[{i}].by",
                        "only the mayor records that the mayor has spoken to the child in"
                        f" person (into {transition.target!r} from {source!r}),"
                        f" not {list(transition.by)}",
                        source,
                        transition.event,
                    )
                )
    return breaches


@lr.hookimpl
def lastresort_validate_protocol(protocol: lr.Protocol) -> Sequence[str]:
    """Keep Amsterdam's two defining rules (only for the protocol ``amsterdam``): the
    engine refuses an ``amsterdam`` protocol that breaks them.

    :param protocol: a protocol the engine is about to accept.
    :returns: one problem per transition that breaks a rule, with its path in the file.
    """
    if protocol.id != PROTOCOL_ID:
        return []
    return [f"{b.path}: {b.message}" for b in _breaches(protocol)]


_RULES = {
    PROPERTY_VANGNET: "responsibility leaves the counter only for GGD Vangnet (or an emergency step)",
    PROPERTY_MAYOR_IN_PERSON: "only the mayor moves the child into a step tagged"
    " 'mayor_involved' (the mayor speaks to the child in person)",
}


def _property(name: str) -> lr.Property:
    return lr.Property(
        name=name,
        rule=_RULES[name],
        check=lambda p: [
            lr.Violation(b.message, step=b.step, event=b.event)
            for b in _breaches(p)
            if b.rule == name
        ],
    )


@lr.hookimpl
def lastresort_protocol_properties(protocol: lr.Protocol) -> Sequence[lr.Property]:
    """The same rules as verifier properties (``amsterdam-vangnet-takes-over``,
    ``amsterdam-mayor-in-person``), so that ``lastresort check`` reports them with a
    counterexample path (only for ``amsterdam``)."""
    if protocol.id != PROTOCOL_ID:
        return []
    return [_property(name) for name in _RULES]


@lr.hookimpl
def lastresort_party_directory(protocol: lr.Protocol, party: lr.Party) -> str | None:
    """The police's public number (112) in the ``amsterdam`` protocol; ``None`` otherwise."""
    if protocol.id != PROTOCOL_ID:
        return None
    return "112" if party.kind is lr.PartyKind.EMERGENCY else None
