"""Readable texts for people: a protocol's card and an encounter's timeline table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..events import (
    DeadlineCleared,
    DeadlineMissed,
    DeadlineScheduled,
    EncounterClosed,
    EncounterOpened,
    Event,
    NotificationDelivered,
    NotificationQueued,
    ResponsibilityTransferred,
    StepEntered,
)
from ..protocol.conversion import format_duration
from ..protocol.model import ACUTE_DANGER, CLOCK, MayorPromise, Protocol, ProtocolKind
from .tables import text_table

__all__ = ["protocol_card", "timeline_table"]

_LABELS = {
    "nl": {
        "responsible": "Verantwoordelijk",
        "nobody": "niemand (afgesloten)",
        "deadline": "Termijn",
        "then": "daarna",
        "events": "Handelingen",
        "by": "door",
        "notify": "informeert",
        "parties": "Partijen",
        "steps": "Stappen",
        "source": "Bron",
        "terminal": "eindstap",
        "acute": "Acuut gevaar: bel 112. Vanuit elke stap mogelijk",
        "requirements": "Afspraken",
        "mayor_met": "de burgemeester spreekt het kind vóór afsluiting",
        "mayor_informed": "de burgemeester wordt altijd geïnformeerd; de deskundige beslist of en"
        " wanneer de burgemeester het kind spreekt",
        "example": "voorbeeldwaarde: de gemeente stelt deze termijn zelf vast",
        "examples": "Termijnen met * zijn voorbeeldwaarden: de gemeente stelt ze zelf vast.",
        "max_wait": "maximale wachttijd op een deskundige",
        "max_wait_mayor": "maximale wachttijd op de burgemeester",
        "report_before_close": "melding of veilige regeling vóór afsluiting",
        "max_order": "maximale duur van de maatregel",
        "hours": "bereikbaar",
        "after_step": "{after} na het begin van stap {step}",
        "chosen": "de gekozen datum, uiterlijk {after} na het begin van stap {step}",
        "kept": "dezelfde datum als de vorige stap, uiterlijk {after} na het begin van stap {step}",
    },
    "en": {
        "responsible": "Responsible",
        "nobody": "nobody (closed)",
        "deadline": "Deadline",
        "then": "then",
        "events": "Actions",
        "by": "by",
        "notify": "notifies",
        "parties": "Parties",
        "steps": "Steps",
        "source": "Source",
        "terminal": "final step",
        "acute": "Acute danger: call 112. Possible from every step",
        "requirements": "Commitments",
        "mayor_met": "the mayor speaks to the child before closing",
        "mayor_informed": "the mayor is always informed; the expert decides whether and when"
        " the mayor meets the child",
        "example": "example value: the municipality sets this deadline itself",
        "examples": "Deadlines marked * are example values: the municipality sets them itself.",
        "max_wait": "maximum wait for an expert",
        "max_wait_mayor": "maximum wait for the mayor",
        "report_before_close": "a report or a safe arrangement before closing",
        "max_order": "maximum duration of the order",
        "hours": "available",
        "after_step": "{after} after step {step} began",
        "chosen": "the date chosen, at the latest {after} after step {step} began",
        "kept": "the same date as the step before, at the latest {after} after step {step} began",
    },
}


def protocol_card(protocol: Protocol, lang: str = "en") -> str:
    """A card a counter clerk, an expert or the mayor's office can read: steps in
    order, who is responsible, what they must do, deadlines and what follows."""
    words = _LABELS["nl" if lang == "nl" else "en"]
    parties = protocol.parties

    def who(key: str | None) -> str:
        if key is None:
            return words["nobody"]
        if key == CLOCK:
            return "clock" if lang != "nl" else "de klok"
        party = parties.get(key)
        return f"{party.name.get(lang)} ({key})" if party else key

    out = [
        f"{protocol.title.get(lang)}",
        f"{protocol.municipality} · {protocol.id} {protocol.version} · {protocol.kind.value}",
        f"{words['source']}: {protocol.source}",
        "",
        f"{words['parties']}:",
    ]
    for key, party in parties.items():
        out.append(
            f"  - {party.name.get(lang)} ({key}, {party.kind.value}; {words['hours']}: {party.hours})"
        )
    out += ["", f"{words['steps']}:"]
    acute = [t for t in protocol.transitions if t.event == ACUTE_DANGER]
    for number, (key, step) in enumerate(protocol.steps.items(), start=1):
        marker = f" [{words['terminal']}]" if step.terminal else ""
        tags = f"  #{' #'.join(step.tags)}" if step.tags else ""
        out.append(f"{number}. {key}{marker}{tags}")
        out.append(f"   {words['responsible']}: {who(step.responsible)}")
        out.append(f"   {step.instructions.get(lang)}")
        if step.deadline is not None:
            deadline = step.deadline
            after = format_duration(deadline.after)
            if deadline.since is not None:
                form = "after_step" if deadline.until is None else deadline.until.value
                after = words[form].format(after=after, step=deadline.since)
            example = f" * ({words['example']})" if deadline.example else ""
            out.append(f"   {words['deadline']}: {after} → {deadline.event}{example}")
        actions = [
            t
            for t in protocol.transitions
            if t.event != ACUTE_DANGER and key in protocol.sources_of(t)
        ]
        if actions:
            out.append(f"   {words['events']}:")
            for t in actions:
                notify = f"; {words['notify']} {', '.join(t.notify)}" if t.notify else ""
                guard = f" [{t.guard}]" if t.guard else ""
                by = ", ".join(who(b) for b in t.by)
                out.append(f"     - {t.event}{guard} ({words['by']} {by}) → {t.target}{notify}")
    if acute:
        out += [
            "",
            f"{words['acute']} → {acute[0].target} ({who(protocol.steps[acute[0].target].responsible)}).",
        ]
    if any(s.deadline is not None and s.deadline.example for s in protocol.steps.values()):
        out += ["", words["examples"]]
    req = protocol.requirements
    lines = []
    if req.mayor_promise is MayorPromise.MET:
        lines.append(f"  - {words['mayor_met']}")
    elif req.mayor_promise is MayorPromise.INFORMED:
        lines.append(f"  - {words['mayor_informed']}")
    if req.max_wait_for_expert is not None:
        lines.append(f"  - {words['max_wait']}: {format_duration(req.max_wait_for_expert)}")
    if req.max_wait_for_mayor is not None:
        lines.append(f"  - {words['max_wait_mayor']}: {format_duration(req.max_wait_for_mayor)}")
    if req.report_before_close and protocol.kind is ProtocolKind.ENCOUNTER:
        lines.append(f"  - {words['report_before_close']}")
    if req.max_order_duration is not None:
        lines.append(f"  - {words['max_order']}: {format_duration(req.max_order_duration)}")
    if lines:
        out += ["", f"{words['requirements']}:", *lines]
    return "\n".join(out)


def _when(moment: datetime, now: datetime) -> str:
    """``HH:MM`` on the same day, the date as well otherwise (in the zone of
    ``now``: deadlines are stored as UTC instants)."""
    moment = moment.astimezone(now.tzinfo)
    return f"{moment:%H:%M}" if moment.date() == now.date() else f"{moment:%a %d %b %H:%M}"


def _describe(event: Event) -> tuple[str, str]:
    if isinstance(event, EncounterOpened):
        return "opened", f"in {event.step}"
    if isinstance(event, StepEntered):
        return "step", f"{event.event}: {event.from_step} → {event.step}"
    if isinstance(event, ResponsibilityTransferred):
        return "HANDOVER", f"{event.from_party} → {event.to_party}"
    if isinstance(event, DeadlineScheduled):
        return "deadline set", f"{event.event} at {_when(event.due, event.at)}"
    if isinstance(event, DeadlineMissed):
        return "DEADLINE MISSED", f"{event.event} (due {_when(event.due, event.at)})"
    if isinstance(event, DeadlineCleared):
        return "deadline cleared", event.event
    if isinstance(event, NotificationQueued):
        return "notify", f"{event.party} of {event.event}"
    if isinstance(event, NotificationDelivered):
        return "delivered", f"{event.party} ({event.receipt}, attempt {event.attempts})"
    if isinstance(event, EncounterClosed):
        return "closed", f"in {event.step}"
    return event.kind, ""


def timeline_table(events: Sequence[Event], start: datetime | None = None) -> str:
    """The timeline as a table: time, who acted, what happened, and who held
    responsibility after each event."""
    if not events:
        return "(no events)"
    start = start or events[0].at
    rows = [("#", "time", "+min", "actor", "what", "detail", "responsible")]
    holder: str | None = None
    for event in events:
        if isinstance(event, EncounterOpened | StepEntered):
            holder = event.responsible
        what, detail = _describe(event)
        minutes = int((event.at - start).total_seconds() // 60)
        rows.append(
            (
                str(event.seq),
                f"{event.at:%a %d %b %H:%M}",
                f"+{minutes}",
                event.actor.role,
                what,
                detail,
                holder or "-",
            )
        )
    return "\n".join(text_table(rows, rule=True))
