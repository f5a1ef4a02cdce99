"""What the desk shows, as plain values for the templates: the step's card, the
actions of this person, who is responsible, the next deadline, the timeline, the
work queue. Nothing here writes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from attrs import frozen

from ...engine.engine import Engine
from ...errors import LastResortError
from ...events import Event
from ...protocol.model import ACUTE_DANGER, CLOCK, Encounter, FactKind, Protocol
from ..auth import Credential
from .messages import Catalogue

__all__ = [
    "Action",
    "Deadline",
    "UntilField",
    "encounter_view",
    "facts_form",
    "queue",
    "target_of",
    "timeline_rows",
    "until_field",
]


@frozen
class Action:
    """A button: the event, its label and the label of the step it leads to, in the
    page's language (the protocol's bilingual labels; the key where it has none).

    :param until: for a step whose deadline date the actor chooses (``until =
        "chosen"``): the date field's bounds, else ``None``.
    """

    event: str
    label: str
    target: str
    until: UntilField | None = None


@frozen
class UntilField:
    """The date and time a person chooses for a deadline (a huisverbod's extension), in
    the protocol's time zone: ``min`` and ``max`` as a ``datetime-local`` field takes
    them (``YYYY-MM-DDTHH:MM``), the latest moment shown in words, and that moment as
    the instant the engine accepts at the latest (``last``)."""

    min: str
    max: str
    latest: str
    zone: str
    last: datetime


def _local_minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def until_field(engine: Engine, encounter: Encounter, target: str) -> UntilField | None:
    """The bounds of the date to choose when entering ``target``, if it asks for one."""
    protocol = engine.protocol(encounter.protocol)
    latest = engine.latest_until(encounter.id, target)
    if latest is None:
        return None
    zone = ZoneInfo(protocol.timezone)
    now = engine.clock.now().astimezone(UTC)
    # the first whole minute after now (the engine wants a moment later than now), counted
    # on the instant: on the clock it may be an hour back, in autumn's repeated hour
    first = (now + timedelta(minutes=1)).replace(second=0, microsecond=0).astimezone(zone)
    last = latest.astimezone(zone)
    return UntilField(
        min=_local_minute(first),
        max=_local_minute(last),
        latest=last.strftime("%d-%m-%Y %H:%M ") + (last.tzname() or ""),
        zone=protocol.timezone,
        last=latest,
    )


@frozen
class Deadline:
    """The next deadline: its event, the time left (server computed) and whether it passed."""

    event: str
    due: datetime
    text: str
    overdue: bool


def label(event: str) -> str:
    """A key as words (``age_band`` → ``age band``): a fact's name on the form."""
    return event.replace("_", " ")


def party_name(protocol: Protocol, party: str | None, lang: str, words: Catalogue) -> str:
    """A party's name in ``lang`` with its key, or *nobody* for a closed encounter."""
    if party is None:
        return words.text(lang, "nobody")
    if party == CLOCK:
        return party
    found = protocol.parties.get(party)
    return f"{found.name.get(lang)} ({party})" if found else party


def _clock_time(moment: datetime, now: datetime) -> str:
    local = moment.astimezone(now.tzinfo)
    return local.strftime("%H:%M ") + (local.tzname() or "")


def next_deadline(
    engine: Engine, encounter: Encounter, lang: str, words: Catalogue
) -> Deadline | None:
    """The encounter's next pending deadline, with the time left from the engine's clock."""
    pending = sorted(engine.deadlines(encounter.id), key=lambda d: d.due)
    if not pending:
        return None
    first = pending[0]
    now = engine.clock.now()
    left = (first.due - now).total_seconds()
    when = _clock_time(first.due, now)
    if left <= 0:
        text = words.text(lang, "overdue", time=when)
    else:
        text = words.text(lang, "minutes_left", minutes=math.ceil(left / 60), time=when)
    return Deadline(event=first.event, due=first.due, text=text, overdue=left <= 0)


def target_of(protocol: Protocol, state: str, event: str) -> str:
    """The step ``event`` leads to from ``state`` (the first transition's), or ``""``."""
    for transition in protocol.transitions:
        if transition.event == event and state in protocol.sources_of(transition):
            return transition.target
    return ""


def encounter_view(
    engine: Engine, encounter: Encounter, credential: Credential, lang: str, words: Catalogue
) -> dict[str, Any]:
    """Everything the encounter page shows to ``credential``'s holder."""
    protocol = engine.protocol(encounter.protocol)
    step = protocol.steps[encounter.state]
    allowed = (
        engine.allowed(encounter.id, credential.actor)
        if "act" in credential.scopes and credential.may_act_in(encounter.protocol)
        else []
    )
    actions = []
    for event in allowed:
        if event == ACUTE_DANGER:
            continue
        target = target_of(protocol, encounter.state, event)
        until = until_field(engine, encounter, target) if target else None
        to = protocol.step_title(target, lang) if target else ""
        actions.append(Action(event, protocol.event_title(event, lang), to, until))
    # the card of the current step: its transitions, who may fire each, where it leads
    card = [
        {
            "event": protocol.event_title(t.event, lang),
            "by": ", ".join(party_name(protocol, b, lang, words) for b in t.by),
            "target": protocol.step_title(t.target, lang),
            "guard": t.guard,
        }
        for t in protocol.transitions
        if t.event != ACUTE_DANGER and encounter.state in protocol.sources_of(t)
    ]
    return {
        "encounter": encounter,
        "protocol": protocol,
        "title": protocol.title.get(lang),
        "step": encounter.state,
        "step_title": protocol.step_title(encounter.state, lang),
        "step_kind": step.kind.value,
        "instructions": step.instructions.get(lang),
        "tags": step.tags,
        "responsible": party_name(protocol, encounter.responsible, lang, words),
        "responsible_is_you": encounter.responsible == credential.party,
        "deadline": next_deadline(engine, encounter, lang, words),
        "actions": actions,
        "acute": ACUTE_DANGER in allowed,
        "card": card,
        "closed": encounter.closed_at is not None,
        "timeline": timeline_rows(
            engine.timeline(encounter.id), engine.clock.now(), lang, words, protocol
        ),
    }


def timeline_rows(
    events: list[Event],
    now: datetime,
    lang: str,
    words: Catalogue,
    protocol: Protocol | None = None,
) -> list[dict[str, str]]:
    """One row per event: time (in the clock's zone, like ``now``), what happened (in
    ``lang``, steps and events by ``protocol``'s labels when given), who (role and id)."""
    rows = []
    for event in events:
        kind = type(event).__name__
        key = f"event.{kind}"
        fields = {
            name: getattr(event, name)
            for name in ("step", "event", "from_party", "to_party", "party", "due")
            if hasattr(event, name)
        }
        if isinstance(fields.get("due"), datetime):
            fields["due"] = _clock_time(fields["due"], now)
        if protocol is not None:
            if isinstance(fields.get("step"), str):
                fields["step"] = protocol.step_title(fields["step"], lang)
            if isinstance(fields.get("event"), str):
                fields["event"] = protocol.event_title(fields["event"], lang)
        what = words.text(lang, key, **fields) if key in words.texts["nl"] else kind
        who = event.actor.role + (f" · {event.actor.id}" if event.actor.id else "")
        rows.append(
            {
                "seq": str(event.seq),
                "at": event.at.astimezone(now.tzinfo).strftime("%H:%M:%S"),
                "what": what,
                "who": who,
            }
        )
    return rows


#: the longest work queue a page shows (the most urgent first)
QUEUE_LIMIT = 100


def queue(
    engine: Engine, credential: Credential, lang: str, words: Catalogue
) -> list[dict[str, Any]]:
    """The holder's work queue: open encounters their party is responsible for, or in
    which they may act now (the mayor asked to meet a child), the most urgent first.

    Two indexed store queries per protocol (``Store.find``), not a walk over every open
    encounter: by responsible party, and by the steps the party has an action in."""
    found: dict[str, Encounter] = {}
    for protocol_id, protocol in engine.protocols.items():
        if not credential.may_act_in(protocol_id):
            continue
        for encounter in engine.store.find(
            protocol=protocol_id, responsible=credential.party, limit=QUEUE_LIMIT
        ):
            found[encounter.id] = encounter
        # acute danger may be fired by many from every step: it puts nothing in a queue
        steps = {
            step
            for t in protocol.transitions
            if t.event != ACUTE_DANGER and credential.party in t.by
            for step in protocol.sources_of(t)
        }
        for encounter in engine.store.find(protocol=protocol_id, state=steps, limit=QUEUE_LIMIT):
            if encounter.id in found or encounter.responsible == credential.party:
                continue
            if set(engine.allowed(encounter.id, credential.actor)) - {ACUTE_DANGER}:
                found[encounter.id] = encounter
    items = []
    for encounter in found.values():
        protocol = engine.protocol(encounter.protocol)
        try:
            deadline = next_deadline(engine, encounter, lang, words)
        except LastResortError:
            continue  # purged meanwhile
        items.append(
            {
                "id": encounter.id,
                "protocol": protocol.title.get(lang),
                "step": protocol.step_title(encounter.state, lang),
                "responsible": party_name(protocol, encounter.responsible, lang, words),
                "deadline": deadline,
            }
        )

    never = datetime.max.replace(tzinfo=UTC)

    def urgency(item: dict[str, Any]) -> tuple[datetime, str]:
        deadline: Deadline | None = item["deadline"]
        return (deadline.due if deadline is not None else never, item["id"])

    items.sort(key=urgency)
    return items[:QUEUE_LIMIT]


def facts_form(protocol: Protocol) -> list[dict[str, Any]]:
    """The protocol's facts as choices (select for a set of values, radios for a boolean)."""
    return [
        {
            "name": name,
            "label": label(name),
            "kind": "bool" if fact.kind is FactKind.BOOL else "enum",
            "values": list(fact.values),
        }
        for name, fact in protocol.facts.items()
    ]
