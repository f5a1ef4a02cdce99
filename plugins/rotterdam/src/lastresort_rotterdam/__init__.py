"""lastresort-rotterdam: Rotterdam's "mayor as last resort" arrangement as a lastresort plugin.

The city hall is an *Ok-punt*: the counter clerk helps and engages Veilig Thuis; when the
request warrants it, a staff member of the mayor (*kabinetsmedewerker*) takes over; help
that has stagnated goes to the *Jeugdconsul*, who can push a stalled case through
(Taskforce kindermishandeling en seksueel misbruik, letter of 27 January 2014).

The protocol itself is data (``rotterdam.toml`` in this package). This module adds what the
data cannot say:

- the guard ``jeugdconsul_line``: the Jeugdconsul takes a case straight from the first step
  only when the contact came in on the Jeugdconsul's own line (``channel="jeugdconsul"``);
  at the counter, the clerk refers first;
- the guard ``push_through_signed``: using the push-through authority (*doorzettingsmacht*)
  is a formal decision, so it must be fired by an identified official
  (``Actor("jeugdconsul", id=...)``), and the timeline records who used it;
- a check that the ``rotterdam`` protocol keeps the push-through authority with the
  Jeugdconsul (an escalation official) and under that guard: the engine refuses a protocol
  that breaks it, and ``lastresort check`` reports it as the property
  ``rotterdam-push-through``;
- the public desks in the party directory (Veilig Thuis 0800-2000, police 112).

Use it through the ``lastresort`` entry point (installed), or explicitly::

    import lastresort as lr
    import lastresort_rotterdam

    engine = lr.Engine(plugins=[lastresort_rotterdam], entry_points=False)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from attrs import frozen

import lastresort as lr

__all__ = [
    "GUARD_JEUGDCONSUL_LINE",
    "GUARD_PUSH_THROUGH_SIGNED",
    "JEUGDCONSUL_CHANNEL",
    "PROPERTY_PUSH_THROUGH",
    "PROTOCOL_ID",
    "lastresort_guard",
    "lastresort_guard_names",
    "lastresort_party_directory",
    "lastresort_protocol_properties",
    "lastresort_protocols",
    "lastresort_validate_protocol",
    "open_jeugdconsul_contact",
    "protocol",
]

#: The protocol id this plugin provides.
PROTOCOL_ID = "rotterdam"
#: The channel of a contact on the Jeugdconsul's own line (``Engine.open(channel=...)``).
JEUGDCONSUL_CHANNEL = "jeugdconsul"
#: Guard: the Jeugdconsul takes a case without referral only on his own line.
GUARD_JEUGDCONSUL_LINE = "jeugdconsul_line"
#: Guard: the push-through authority is used by an identified official.
GUARD_PUSH_THROUGH_SIGNED = "push_through_signed"
#: The verifier property that keeps the push-through authority with the Jeugdconsul.
PROPERTY_PUSH_THROUGH = "rotterdam-push-through"

_JEUGDCONSUL = "jeugdconsul"
_PUSH_THROUGH = "push_through"
_TAKES_CASE = "jeugdconsul_takes_case"

#: Public desks only; a municipality registers its own directory for the counter, the
#: mayor's staff and the Jeugdconsul (an explicitly given plugin is asked first).
_PUBLIC_DESKS: Mapping[str, str] = {
    "veilig_thuis": "Veilig Thuis 0800-2000 (24/7)",
    "police": "112",
}


@functools.cache
def protocol() -> lr.Protocol:
    """The ``rotterdam`` protocol, loaded once from the package's ``rotterdam.toml``.

    :raises lastresort.ProtocolError: when the data file is broken (every problem listed).
    """
    return lr.load_packaged_protocol(__name__, "rotterdam.toml")


@lr.hookimpl
def lastresort_protocols() -> Sequence[lr.Protocol]:
    """Provide the ``rotterdam`` protocol."""
    return [protocol()]


@lr.hookimpl
def lastresort_guard_names() -> Sequence[str]:
    """The guards this plugin answers."""
    return [GUARD_JEUGDCONSUL_LINE, GUARD_PUSH_THROUGH_SIGNED]


@lr.hookimpl
def lastresort_guard(name: str, encounter: lr.Encounter, actor: lr.Actor) -> str | None:
    """Answer ``jeugdconsul_line`` and ``push_through_signed``; ``None`` allows.

    :param name: the transition's guard.
    :param encounter: the encounter as it is now.
    :param actor: who fires the event.
    """
    if name == GUARD_JEUGDCONSUL_LINE and encounter.channel != JEUGDCONSUL_CHANNEL:
        return (
            f"this contact came in on channel {encounter.channel!r}, not on the Jeugdconsul's"
            f" own line ({JEUGDCONSUL_CHANNEL!r}): at the Ok-punt the counter clerk refers"
            " first (engage_jeugdconsul), then the Jeugdconsul takes the case"
        )
    if name == GUARD_PUSH_THROUGH_SIGNED and not (actor.id or "").strip():
        return (
            "the push-through authority (doorzettingsmacht) is a formal decision of the"
            " Jeugdconsul: fire it as Actor('jeugdconsul', id=<your staff id>) so the"
            " timeline records who used it"
        )
    return None


@frozen
class _Breach:
    """One way a protocol breaks a rule of this plugin: where in the file, and where in
    the graph (for the verifier's counterexample)."""

    path: str
    message: str
    step: str | None = None
    event: str | None = None


def _push_through_breaches(protocol: lr.Protocol) -> list[_Breach]:
    breaches: list[_Breach] = []
    consul = protocol.parties.get(_JEUGDCONSUL)
    if consul is None:
        breaches.append(
            _Breach(
                "$.parties",
                "the rotterdam protocol needs the party 'jeugdconsul' (escalation official)",
            )
        )
    elif consul.kind is not lr.PartyKind.ESCALATION:
        breaches.append(
            _Breach(
                "$.parties.jeugdconsul.kind",
                f"must be 'escalation', not {consul.kind.value!r} (the Jeugdconsul is the"
                " escalation official for help that stagnates)",
            )
        )
    found = False
    for i, transition in enumerate(protocol.transitions):
        if transition.event != _PUSH_THROUGH:
            continue
        found = True
        source = next(iter(protocol.sources_of(transition)), None)
        if transition.by != (_JEUGDCONSUL,):
            breaches.append(
                _Breach(
                    f"$.transitions[{i}].by",
                    "push_through may be fired only by 'jeugdconsul' (the push-through"
                    f" authority is his own), not by {list(transition.by)}",
                    source,
                    _PUSH_THROUGH,
                )
            )
        if transition.guard != GUARD_PUSH_THROUGH_SIGNED:
            breaches.append(
                _Breach(
                    f"$.transitions[{i}].guard",
                    f"push_through must be guarded by {GUARD_PUSH_THROUGH_SIGNED!r},"
                    f" not {transition.guard!r}",
                    source,
                    _PUSH_THROUGH,
                )
            )
    if not found:
        breaches.append(
            _Breach(
                "$.transitions",
                "the rotterdam protocol needs the event 'push_through' (the Jeugdconsul's"
                " push-through authority)",
            )
        )
    return breaches


@lr.hookimpl
def lastresort_validate_protocol(protocol: lr.Protocol) -> Sequence[str]:
    """Keep the push-through authority where Rotterdam put it (only for ``rotterdam``):
    the engine refuses a ``rotterdam`` protocol that breaks it.

    :param protocol: a protocol the engine is about to accept.
    :returns: one problem per broken rule, with its path in the file.
    """
    if protocol.id != PROTOCOL_ID:
        return []
    return [f"{b.path}: {b.message}" for b in _push_through_breaches(protocol)]


@lr.hookimpl
def lastresort_protocol_properties(protocol: lr.Protocol) -> Sequence[lr.Property]:
    """The same rule as a verifier property, ``rotterdam-push-through``, so that
    ``lastresort check`` reports it with a counterexample path (only for ``rotterdam``)."""
    if protocol.id != PROTOCOL_ID:
        return []
    return [
        lr.Property(
            name=PROPERTY_PUSH_THROUGH,
            rule="push_through is the Jeugdconsul's own (an escalation official),"
            f" fired under the guard {GUARD_PUSH_THROUGH_SIGNED!r}",
            check=lambda p: [
                lr.Violation(b.message, step=b.step, event=b.event)
                for b in _push_through_breaches(p)
            ],
        )
    ]


@lr.hookimpl
def lastresort_party_directory(protocol: lr.Protocol, party: lr.Party) -> str | None:
    """The public desks of the ``rotterdam`` protocol; ``None`` for the other roles."""
    if protocol.id != PROTOCOL_ID:
        return None
    return _PUBLIC_DESKS.get(party.key)


def open_jeugdconsul_contact(
    engine: lr.Engine,
    actor: lr.Actor | str,
    facts: Mapping[str, str | bool] | None = None,
) -> lr.Encounter:
    """Open a contact that came in on the Jeugdconsul's own line, and take the case.

    Opens a ``rotterdam`` encounter on channel ``"jeugdconsul"`` and fires
    ``jeugdconsul_takes_case`` as ``actor``, so the Jeugdconsul is responsible from the
    first minute.

    :param engine: an engine that runs the ``rotterdam`` protocol.
    :param actor: the Jeugdconsul: role ``jeugdconsul`` with a pseudonymous staff id
        (``lr.Actor("jeugdconsul", "jc-0042")``; without one the engine refuses with
        :class:`lastresort.ActorRefused`, and records the refusal).
    :param facts: declared facts only (``age_band``, ``contact_by``, ...).
    :returns: the encounter, in step ``with_jeugdconsul``.
    :raises lastresort.NotPermitted: when ``actor`` is not the Jeugdconsul; nothing is written.
    :raises lastresort.FactsRefused: for undeclared facts; nothing is written.
    """
    who = lr.Actor.of(actor)
    if who.role != _JEUGDCONSUL:
        raise lr.NotPermitted(
            step=engine.protocol(PROTOCOL_ID).initial,
            event=_TAKES_CASE,
            actor=who.role,
            allowed=[_JEUGDCONSUL],
            reason="only the Jeugdconsul opens a contact on the Jeugdconsul's own line",
        )
    encounter = engine.open(PROTOCOL_ID, who, facts=facts, channel=JEUGDCONSUL_CHANNEL)
    engine.fire(encounter.id, _TAKES_CASE, who)
    return engine.get(encounter.id)
