"""lastresort-veilig-thuis: the Taskforce letter's BJZ/AMK option, as it exists since 2015.

A worker of **Veilig Thuis** (the advice and reporting centre for domestic violence and
child abuse, which absorbed the AMK on 1 January 2015) comes to the city hall counter when a
maltreated child asks for the mayor, takes over the child (a warm handover: the worker
accepts it), and the mayor is informed at the agreed moment and in the agreed manner; the
worker decides whether and when the mayor meets the child. Then the worker decides between a
**report** (*melding*: Veilig Thuis accepts it, and with it the responsibility for the child's
safety, and assesses safety within 5 working days) and, without signs of unsafety, a
**referral** (De Kindertelefoon 0800-0432, wijkteam, huisarts). *Advice* (*advies*) is what a
professional gets by phone (Meldcode step 2): the clerk's call to 0800-2000. Outside
office hours the same number, 0800-2000, reaches the **crisis service**, which keeps the child
safe until a Veilig Thuis worker takes over on the next working day.

The protocol is data (``veilig_thuis.toml`` in this package). This module adds what the data
cannot say:

- the guards ``veilig_thuis_office_hours`` and ``veilig_thuis_after_hours``: one phone call
  (``call_veilig_thuis``) brings a Veilig Thuis worker in office hours (Monday to Friday,
  09:00-17:00, Dutch time) and the crisis service outside them, judged by the moment the child
  arrived (``Encounter.opened_at``); public holidays are not known to it;
- the guard ``arrangement_reports_disclosure``: a referral without a report is refused when
  the child disclosed unsafety at home (fact ``disclosure = true``). That is this
  arrangement's rule, in line with the Meldcode's afwegingskader (2019), which counts a
  disclosure as a reason to report; it is not a statutory duty to report;
- a check that the ``veilig-thuis`` protocol keeps these rules where they belong;
- the public desks in the party directory (Veilig Thuis 0800-2000, police 112).

The guards answer for any protocol that names them, so another municipality's protocol can
reuse them. Use the plugin through the ``lastresort`` entry point (installed), or explicitly::

    import lastresort as lr
    import lastresort_veilig_thuis

    engine = lr.Engine(plugins=[lastresort_veilig_thuis], entry_points=False)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

import lastresort as lr

__all__ = [
    "GUARD_AFTER_HOURS",
    "GUARD_OFFICE_HOURS",
    "GUARD_REPORTS_DISCLOSURE",
    "OFFICE_HOURS",
    "PROTOCOL_ID",
    "is_office_hours",
    "lastresort_guard",
    "lastresort_guard_names",
    "lastresort_party_directory",
    "lastresort_protocols",
    "lastresort_validate_protocol",
    "protocol",
]

#: The protocol id this plugin provides.
PROTOCOL_ID = "veilig-thuis"
#: Guard: the child arrived in Veilig Thuis's office hours (a worker comes).
GUARD_OFFICE_HOURS = "veilig_thuis_office_hours"
#: Guard: the child arrived outside office hours (the crisis service comes).
GUARD_AFTER_HOURS = "veilig_thuis_after_hours"
#: Guard: a referral without a report is allowed (no disclosure of unsafety at home);
#: this arrangement's rule, in line with the Meldcode's afwegingskader (2019).
GUARD_REPORTS_DISCLOSURE = "arrangement_reports_disclosure"
#: Veilig Thuis's office hours as the guards apply them, in the protocol's ``hours`` syntax.
OFFICE_HOURS = "mon-fri 09:00-17:00"

_DUTCH_TIME = ZoneInfo("Europe/Amsterdam")
_OPENS, _CLOSES = time(9, 0), time(17, 0)
_WORKER = "vt_worker"
_TEAM = "veilig_thuis"

#: Public desks only; a municipality registers its own directory for the counter, the
#: mayor's staff and the mayor (an explicitly given plugin is asked first).
_PUBLIC_DESKS: Mapping[str, str] = {
    _WORKER: "Veilig Thuis 0800-2000 (24/7)",
    "crisis": "Veilig Thuis 0800-2000 (24/7; crisis service outside office hours)",
    _TEAM: "Veilig Thuis 0800-2000 (24/7)",
    "police": "112",
}


def is_office_hours(moment: datetime) -> bool:
    """Whether ``moment`` falls in Veilig Thuis's office hours: Monday to Friday,
    09:00 to 17:00, Dutch time (public holidays are not known).

    :param moment: a timezone-aware moment.
    :raises ValueError: for a naive moment (its Dutch time would be a guess).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time {moment} has no time zone; use a timezone-aware datetime")
    local = moment.astimezone(_DUTCH_TIME)
    return local.weekday() < 5 and _OPENS <= local.time() < _CLOSES


@functools.cache
def protocol() -> lr.Protocol:
    """The ``veilig-thuis`` protocol, loaded once from the package's ``veilig_thuis.toml``.

    :raises lastresort.ProtocolError: when the data file is broken (every problem listed).
    """
    return lr.load_packaged_protocol(__name__, "veilig_thuis.toml")


@lr.hookimpl
def lastresort_protocols() -> Sequence[lr.Protocol]:
    """Provide the ``veilig-thuis`` protocol."""
    return [protocol()]


@lr.hookimpl
def lastresort_guard_names() -> Sequence[str]:
    """The guards this plugin answers."""
    return [GUARD_OFFICE_HOURS, GUARD_AFTER_HOURS, GUARD_REPORTS_DISCLOSURE]


@lr.hookimpl
def lastresort_guard(name: str, encounter: lr.Encounter) -> str | None:
    """Answer this plugin's guards; ``None`` allows, a string refuses with that reason.

    :param name: the transition's guard.
    :param encounter: the encounter as it is now.
    """
    if name == GUARD_OFFICE_HOURS and not is_office_hours(encounter.opened_at):
        return (
            "the child arrived outside Veilig Thuis's office hours (Monday to Friday"
            " 09:00-17:00): 0800-2000 reaches the crisis service, which comes instead"
        )
    if name == GUARD_AFTER_HOURS and is_office_hours(encounter.opened_at):
        return (
            "the child arrived in Veilig Thuis's office hours (Monday to Friday"
            " 09:00-17:00): 0800-2000 sends a Veilig Thuis worker"
        )
    if name == GUARD_REPORTS_DISCLOSURE and encounter.facts.get("disclosure") is True:
        return (
            "no referral without a report here: under this arrangement a child's disclosure of"
            " unsafety at home is always reported (the Meldcode's afwegingskader counts it as a"
            " reason to report); Veilig Thuis accepts a report (report_accepted) instead"
        )
    return None


@lr.hookimpl
def lastresort_validate_protocol(protocol: lr.Protocol) -> Sequence[str]:
    """Keep the ``veilig-thuis`` protocol's rules where they belong (only for that id).

    - the Veilig Thuis worker's ``hours`` are the office hours the guards apply;
    - ``report_accepted`` is fired only by the Veilig Thuis team (the report moves the
      responsibility to Veilig Thuis, so Veilig Thuis accepts it);
    - ``refer_on`` is under the guard ``arrangement_reports_disclosure``.

    :param protocol: a protocol the engine is about to accept.
    :returns: one problem per broken rule, with its path.
    """
    if protocol.id != PROTOCOL_ID:
        return []
    problems: list[str] = []
    worker = protocol.parties.get(_WORKER)
    if worker is None:
        problems.append("$.parties: the veilig-thuis protocol needs the party 'vt_worker'")
    elif worker.hours != OFFICE_HOURS:
        problems.append(
            f"$.parties.vt_worker.hours: must be {OFFICE_HOURS!r}, the office hours the guards"
            f" {GUARD_OFFICE_HOURS!r} and {GUARD_AFTER_HOURS!r} apply, not {worker.hours!r}"
        )
    seen = {"report_accepted": False, "refer_on": False}
    for i, transition in enumerate(protocol.transitions):
        if transition.event == "report_accepted":
            seen["report_accepted"] = True
            if transition.by != (_TEAM,):
                problems.append(
                    f"$.transitions[{i}].by: report_accepted may be fired only by"
                    f" {_TEAM!r} (a report moves the responsibility to Veilig Thuis, which"
                    f" accepts it), not by {list(transition.by)}"
                )
        elif transition.event == "refer_on":
            seen["refer_on"] = True
            if transition.guard != GUARD_REPORTS_DISCLOSURE:
                problems.append(
                    f"$.transitions[{i}].guard: refer_on must be guarded by"
                    f" {GUARD_REPORTS_DISCLOSURE!r}, not {transition.guard!r}"
                )
    for event, found in seen.items():
        if not found:
            problems.append(f"$.transitions: the veilig-thuis protocol needs the event {event!r}")
    return problems


@lr.hookimpl
def lastresort_party_directory(protocol: lr.Protocol, party: lr.Party) -> str | None:
    """The public desks of the ``veilig-thuis`` protocol; ``None`` for the other roles."""
    if protocol.id != PROTOCOL_ID:
        return None
    return _PUBLIC_DESKS.get(party.key)
