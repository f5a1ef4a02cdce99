"""lastresort-meldcode: the Meldcode huiselijk geweld en kindermishandeling as a protocol.

Under the *Wet verplichte meldcode huiselijk geweld en kindermishandeling* (2013) every
organisation of professionals has a meldcode with five steps: (1) map the signals, (2) consult
a colleague and if needed Veilig Thuis, (3) talk with the child and/or the parents, (4) weigh
with the afwegingskader, (5) decide: report and/or give or organise help. Since 1 January 2019
the afwegingskader makes two decisions of step 5: acute or structural unsafety is always
reported to Veilig Thuis; help without a report only when it is possible, accepted and leads
to safety.

The protocol is data (``meldcode.toml``, for professionals, not the counter). This module adds:

- the guard ``meldcode_no_disclosure``: a case in which the child disclosed unsafety at home
  (fact ``disclosure = true``) cannot be closed as "no suspicion" (this protocol's rule: a
  child's own account is a suspicion);
- the verifier property ``meldcode-unsafety-reported``: from every step tagged ``unsafety``
  (acute or structural unsafety found) every path to a closing step passes a step tagged
  ``reported`` — the afwegingskader's first decision;
- the public desks in the party directory (Veilig Thuis 0800-2000, police 112).

Use it through the ``lastresort`` entry point (installed), or explicitly::

    import lastresort as lr
    import lastresort_meldcode

    engine = lr.Engine(plugins=[lastresort_meldcode], entry_points=False)
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator, Mapping, Sequence

import lastresort as lr

__all__ = [
    "GUARD_NO_DISCLOSURE",
    "PROPERTY_UNSAFETY_REPORTED",
    "PROTOCOL_ID",
    "lastresort_guard",
    "lastresort_guard_names",
    "lastresort_party_directory",
    "lastresort_protocol_properties",
    "lastresort_protocols",
    "protocol",
]

#: The protocol id this plugin provides.
PROTOCOL_ID = "meldcode"
#: Guard: no "no suspicion" ending after a child's disclosure (fact ``disclosure``).
GUARD_NO_DISCLOSURE = "meldcode_no_disclosure"
#: The verifier property this plugin adds.
PROPERTY_UNSAFETY_REPORTED = "meldcode-unsafety-reported"

_UNSAFETY = "unsafety"
_REPORTED = "reported"

_PUBLIC_DESKS: Mapping[str, str] = {
    "veilig_thuis": "Veilig Thuis 0800-2000 (24/7)",
    "police": "112",
}


@functools.cache
def protocol() -> lr.Protocol:
    """The ``meldcode`` protocol, loaded once from the package's ``meldcode.toml``.

    :raises lastresort.ProtocolError: when the data file is broken (every problem listed).
    """
    return lr.load_packaged_protocol(__name__, "meldcode.toml")


@lr.hookimpl
def lastresort_protocols() -> Sequence[lr.Protocol]:
    """Provide the ``meldcode`` protocol."""
    return [protocol()]


@lr.hookimpl
def lastresort_guard_names() -> Sequence[str]:
    """The guards this plugin answers."""
    return [GUARD_NO_DISCLOSURE]


@lr.hookimpl
def lastresort_guard(name: str, encounter: lr.Encounter) -> str | None:
    """Answer this plugin's guard; ``None`` allows, a string refuses with that reason.

    :param name: the transition's guard.
    :param encounter: the case as it is now.
    """
    if name == GUARD_NO_DISCLOSURE and encounter.facts.get("disclosure") is True:
        return (
            "the child disclosed unsafety at home (disclosure = true), which is a suspicion:"
            " the case cannot close as 'no suspicion'; go on to step 5 (suspicion_remains)"
        )
    return None


def _unsafety_reported(protocol: lr.Protocol) -> Iterator[lr.Violation]:
    """From each step tagged ``unsafety``, search the steps not tagged ``reported``; a
    closing step found is a path that ends without a report."""
    closing = set(protocol.closing_steps())
    for start, step in protocol.steps.items():
        if _UNSAFETY not in step.tags:
            continue
        seen = {start}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            if here in closing:
                yield lr.Violation(
                    f"from {start!r} (acute or structural unsafety) the case can close in"
                    f" {here!r} without a report to Veilig Thuis",
                    here,
                )
                break
            for transition in protocol.transitions:
                if here not in protocol.sources_of(transition):
                    continue
                target = transition.target
                if target not in seen and _REPORTED not in protocol.steps[target].tags:
                    seen.add(target)
                    queue.append(target)


@lr.hookimpl
def lastresort_protocol_properties(protocol: lr.Protocol) -> Sequence[lr.Property]:
    """The property ``meldcode-unsafety-reported`` for the ``meldcode`` protocol."""
    if protocol.id != PROTOCOL_ID:
        return []
    return [
        lr.Property(
            PROPERTY_UNSAFETY_REPORTED,
            "once acute or structural unsafety is found, every path to a closing step passes"
            " a report to Veilig Thuis",
            _unsafety_reported,
        )
    ]


@lr.hookimpl
def lastresort_party_directory(protocol: lr.Protocol, party: lr.Party) -> str | None:
    """The public desks of the ``meldcode`` protocol; ``None`` for the other roles."""
    if protocol.id != PROTOCOL_ID:
        return None
    return _PUBLIC_DESKS.get(party.key)
