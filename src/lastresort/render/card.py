"""Readable texts for people: a protocol's card and an encounter's timeline table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

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
from ..protocol.model import (
    ACUTE_DANGER,
    CLOCK,
    MayorPromise,
    Protocol,
    ProtocolKind,
    WorkingDays,
)
from .catalogue import Catalogue, catalogue_for
from .tables import text_table

__all__ = ["protocol_card", "timeline_table"]


def protocol_card(
    protocol: Protocol, lang: str = "en", *, catalogue: Catalogue | None = None
) -> str:
    """A card a counter clerk, an expert or the mayor's office can read: steps in
    order, who is responsible, what they must do, deadlines and what follows.

    The card is entirely in ``lang``: the protocol's texts (title, source, party names,
    step and event labels, instructions) in that language, every other word from the
    language's message catalogue. A step or event without a label shows its key.

    :param protocol: the protocol.
    :param lang: ``nl``, ``en``, or a further language given with ``catalogue``.
    :param catalogue: the words of a further language (:func:`lastresort.load_catalogue`).
    :raises InvalidArgument: for a language without a catalogue.
    """
    words = catalogue_for(lang, catalogue, call="protocol_card")
    parties = protocol.parties

    def who(key: str | None) -> str:
        if key is None:
            return words["card.nobody"]
        if key == CLOCK:
            return words["card.clock"]
        party = parties.get(key)
        return party.name.get(lang) if party else key

    def duration(delta: timedelta | WorkingDays) -> str:
        return words.duration(delta)

    out = [
        f"{protocol.title.get(lang)}",
        f"{protocol.municipality_in(lang)} · {protocol.id} {protocol.version}"
        f" · {words.word('protocol_kind', protocol.kind.value)}",
        f"{words['card.source']}: {protocol.source_in(lang)}",
        "",
        f"{words['card.parties']}:",
    ]
    for party in parties.values():
        kind = words.word("party_kind", party.kind.value)
        out.append(
            f"  - {party.name.get(lang)} ({kind}; {words['card.hours']}: {words.hours(party.hours)})"
        )
    out += ["", f"{words['card.steps']}:"]
    acute = [t for t in protocol.transitions if t.event == ACUTE_DANGER]
    for number, (key, step) in enumerate(protocol.steps.items(), start=1):
        marker = f" [{words['card.terminal']}]" if step.terminal else ""
        tags = ", ".join(words.word("tag", tag) for tag in step.tags)
        tags = f"  ({words['card.tags']}: {tags})" if tags else ""
        out.append(f"{number}. {step.title(lang)}{marker}{tags}")
        out.append(f"   {words['card.responsible']}: {who(step.responsible)}")
        out.append(f"   {step.instructions.get(lang)}")
        if step.deadline is not None:
            deadline = step.deadline
            after = duration(deadline.after)
            if deadline.since is not None:
                form = "after_step" if deadline.until is None else deadline.until.value
                since = protocol.step_title(deadline.since, lang)
                after = words[f"card.{form}"].format(after=after, step=since)
            example = f" * ({words['card.example']})" if deadline.example else ""
            event = protocol.event_title(deadline.event, lang)
            out.append(f"   {words['card.deadline']}: {after} → {event}{example}")
        actions = [
            t
            for t in protocol.transitions
            if t.event != ACUTE_DANGER and key in protocol.sources_of(t)
        ]
        if actions:
            out.append(f"   {words['card.events']}:")
            for t in actions:
                notify = (
                    f"; {words['card.notify']} {', '.join(who(n) for n in t.notify)}"
                    if t.notify
                    else ""
                )
                guard = (
                    f" [{words['card.guard']}: {t.guard}]" if t.guard and t.label is None else ""
                )
                by = ", ".join(who(b) for b in t.by)
                title = protocol.transition_title(t, lang)
                target = protocol.step_title(t.target, lang)
                out.append(f"     - {title}{guard} ({words['card.by']} {by}) → {target}{notify}")
    if acute:
        target = acute[0].target
        out += [
            "",
            f"{words['card.acute']} → {protocol.step_title(target, lang)}"
            f" ({who(protocol.steps[target].responsible)}).",
        ]
    if any(s.deadline is not None and s.deadline.example for s in protocol.steps.values()):
        out += ["", words["card.examples"]]
    req = protocol.requirements
    lines = []
    if req.mayor_promise is MayorPromise.MET:
        lines.append(f"  - {words['card.mayor_met']}")
    elif req.mayor_promise is MayorPromise.INFORMED:
        lines.append(f"  - {words['card.mayor_informed']}")
    if req.max_wait_for_expert is not None:
        lines.append(f"  - {words['card.max_wait']}: {duration(req.max_wait_for_expert)}")
    if req.max_wait_for_mayor is not None:
        lines.append(f"  - {words['card.max_wait_mayor']}: {duration(req.max_wait_for_mayor)}")
    if req.report_before_close and protocol.kind is ProtocolKind.ENCOUNTER:
        lines.append(f"  - {words['card.report_before_close']}")
    if req.max_order_duration is not None:
        lines.append(f"  - {words['card.max_order']}: {duration(req.max_order_duration)}")
    if lines:
        out += ["", f"{words['card.requirements']}:", *lines]
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
