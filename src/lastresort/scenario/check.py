"""The checks of a structured scenario file against its protocol.

Every problem is collected with its path (``$.steps[3].event: unknown event ...``);
nothing stops at the first one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..privacy import actor_id_problem
from ..protocol.conversion import format_duration, suggest
from ..protocol.model import CLOCK, Protocol
from .model import (
    DEFAULT_TIMEZONE,
    ERROR_KINDS,
    NOBODY,
    DeadlineExpectation,
    NotificationExpectation,
    ScenarioStep,
)

if TYPE_CHECKING:  # the file shapes import this module
    from .files import _DeadlineFile, _Header, _StepFile, _Time

__all__ = ["Checker"]


class Checker:
    """The checks of a structured scenario against its protocol."""

    def __init__(self, protocol: Protocol | None, problems: list[str]) -> None:
        self.protocol = protocol
        self.problems = problems
        self.events: dict[str, set[str]] = {}  # event -> roles that may fire it
        self.notifies: dict[str, set[str]] = {}  # event -> parties it notifies
        if protocol is not None:
            for transition in protocol.transitions:
                self.events.setdefault(transition.event, set()).update(transition.by)
                self.notifies.setdefault(transition.event, set()).update(transition.notify)

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # -- names of the protocol

    def _unknown(self, what: str, value: str, choices: Iterable[str]) -> str:
        assert self.protocol is not None
        listed = sorted(choices)
        hint = suggest(value, listed)
        if hint:
            return f"unknown {what} {value!r}{hint}"
        plural = "parties" if what == "party" else f"{what}s"
        return f"unknown {what} {value!r}; {plural} of {self.protocol.id!r}: {', '.join(listed)}"

    def event(self, path: str, event: str) -> bool:
        if self.protocol is None:
            return False
        if event not in self.events:
            self.add(path, self._unknown("event", event, self.events))
            return False
        return True

    def party(self, path: str, role: str, *, nobody: bool = False) -> bool:
        if self.protocol is None:
            return False
        if nobody and role == NOBODY:
            return True
        if role == CLOCK:
            self.add(
                path, "'clock' is not a party: deadline events fire by themselves as time passes"
            )
            return False
        if role not in self.protocol.parties:
            choices = [*self.protocol.parties, *([NOBODY] if nobody else [])]
            self.add(path, self._unknown("party", role, choices))
            return False
        return True

    def step_key(self, path: str, step: str) -> bool:
        if self.protocol is None:
            return False
        if step not in self.protocol.steps:
            self.add(path, self._unknown("step", step, self.protocol.steps))
            return False
        return True

    # -- times

    def start(self, header: _Header | None) -> tuple[datetime | None, ZoneInfo | None]:
        if header is None:
            return None, None
        try:
            zone = ZoneInfo(header.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.add(
                "$.scenario.timezone",
                f"unknown time zone {header.timezone!r}; use an IANA name such as {DEFAULT_TIMEZONE!r}",
            )
            return None, None
        start = header.start
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
        return start, zone

    def offset(
        self, path: str, time: _Time, start: datetime | None, zone: ZoneInfo | None
    ) -> timedelta | None:
        if time.offset is not None:
            return time.offset
        if start is None or zone is None or time.moment is None:
            return None
        moment = time.moment if time.moment.tzinfo else time.moment.replace(tzinfo=zone)
        if moment < start:
            self.add(path, f"{time.text} is before the scenario's start {start.isoformat()}")
            return None
        return moment.astimezone(start.tzinfo) - start

    # -- steps

    def steps(
        self,
        files: list[tuple[_StepFile | None, frozenset[str]]],
        start: datetime | None,
        zone: ZoneInfo | None,
    ) -> list[ScenarioStep | None]:
        out: list[ScenarioStep | None] = []
        previous: tuple[timedelta, str] | None = (timedelta(0), "the start")
        for index, (file, broken) in enumerate(files):
            path = f"$.steps[{index}]"
            if file is None or "at" in broken:
                previous = None  # a broken time: do not report order against it
            if file is None:
                out.append(None)
                continue
            at: timedelta | None
            if "at" in broken:
                at = None
            elif file.at is None:
                at = previous[0] if previous is not None else None
            else:
                at = self.offset(f"{path}.at", file.at, start, zone)
                if at is not None and previous is not None and at < previous[0]:
                    self.add(
                        f"{path}.at",
                        f"{file.at.text} is before {previous[1]}; steps must be in time order",
                    )
            previous = (at, f"$.steps[{index}] ({_offset_text(at)})") if at is not None else None
            step = self.step(path, file, at, start, zone)
            out.append(None if broken else step)
        return out

    def step(
        self,
        path: str,
        file: _StepFile,
        at: timedelta | None,
        start: datetime | None,
        zone: ZoneInfo | None,
    ) -> ScenarioStep | None:
        before = len(self.problems)
        self.action(path, file)
        if file.state is not None:
            self.step_key(f"{path}.state", file.state)
        if file.responsible is not None:
            self.party(f"{path}.responsible", file.responsible, nobody=True)
        for i, allowed in enumerate(file.allowed):
            sub = f"{path}.allowed[{i}]" if len(file.allowed) > 1 else f"{path}.allowed"
            self.party(f"{sub}.actor", allowed.actor)
            for j, event in enumerate(allowed.events):
                self.event(f"{sub}.events[{j}]", event)
        for key, notes in (("queued", file.queued), ("delivered", file.delivered)):
            for i, note in enumerate(notes):
                self.notification(f"{path}.{key}[{i}]", note)
        deadlines: list[DeadlineExpectation] = []
        for i, deadline in enumerate(file.deadlines or ()):
            due = None
            if deadline.due is not None:
                due = self.offset(f"{path}.deadlines[{i}].due", deadline.due, start, zone)
            deadlines.append(DeadlineExpectation(deadline.step, deadline.event, due))
            self.deadline(f"{path}.deadlines[{i}]", deadline)
        until = None
        if file.until is not None:
            until = self.offset(f"{path}.until", file.until, start, zone)
        if len(self.problems) > before or at is None:
            return None
        return ScenarioStep(
            at=at,
            note=file.note,
            actor=file.actor,
            actor_id=file.actor_id,
            until=until,
            event=file.event,
            expect_error=file.expect_error,
            state=file.state,
            responsible=file.responsible,
            allowed=file.allowed,
            queued=file.queued,
            delivered=file.delivered,
            deadlines=None if file.deadlines is None else tuple(deadlines),
            closed=file.closed,
        )

    def action(self, path: str, file: _StepFile) -> None:
        if file.actor is None and file.event is not None:
            self.add(f"{path}.actor", "an action needs the role that fires it (actor)")
        if file.event is None:
            if file.actor is not None:
                self.add(f"{path}.event", "an action needs the event its actor fires (event)")
            for key in ("actor_id", "until", "expect_error"):
                if getattr(file, key) is not None:
                    self.add(f"{path}.{key}", "only an action (a step with an event) has this key")
            return
        if file.expect_error is not None and file.expect_error not in ERROR_KINDS:
            hint = suggest(file.expect_error, ERROR_KINDS)
            self.add(
                f"{path}.expect_error",
                f"unknown error kind {file.expect_error!r}{hint}; one of {', '.join(ERROR_KINDS)}",
            )
        if file.actor_id is not None:
            self.actor_id(f"{path}.actor_id", file.actor_id)
        elif file.expect_error not in ("ActorRefused", "LastResortError"):
            self.add(
                f"{path}.actor_id",
                "an action needs the pseudonymous id of the person who fires it (every actor"
                ' but the clock carries one), e.g. actor_id = "clerk-07"; to check that an'
                ' actor without one is refused, add expect_error = "ActorRefused"',
            )
        known_event = self.event(f"{path}.event", file.event)
        if file.actor is None or not self.party(f"{path}.actor", file.actor):
            return
        if not known_event or file.expect_error is not None:
            return
        roles = self.events[file.event] - {CLOCK}
        if not roles:
            self.add(
                f"{path}.event",
                f"{file.event!r} is fired only by the clock when its deadline falls due;"
                " let time pass instead (a later 'at')",
            )
        elif file.actor not in roles:
            self.add(
                f"{path}.actor",
                f"{file.actor!r} may never fire {file.event!r} (by: {', '.join(sorted(roles))});"
                ' to check that it is refused, add expect_error = "NotPermitted"',
            )

    def actor_id(self, path: str, value: str) -> None:
        problem = actor_id_problem(value)
        if problem is not None:
            self.add(path, problem)

    def notification(self, path: str, note: NotificationExpectation) -> None:
        known_party = self.party(f"{path}.party", note.party)
        known_event = self.event(f"{path}.event", note.event)
        if note.count is not None and note.count < 0:
            self.add(f"{path}.count", f"expected a count of 0 or more, got {note.count}")
        if known_party and known_event and note.count != 0:
            told = self.notifies[note.event]
            if note.party not in told:
                who = ", ".join(sorted(told)) or "nobody"
                self.add(
                    path,
                    f"{note.event!r} never notifies {note.party!r} (it notifies: {who});"
                    " to check that it does not, add count = 0",
                )

    def deadline(self, path: str, deadline: _DeadlineFile) -> None:
        if not self.step_key(f"{path}.step", deadline.step):
            return
        assert self.protocol is not None
        spec = self.protocol.steps[deadline.step].deadline
        if spec is None:
            self.add(f"{path}.step", f"step {deadline.step!r} has no deadline")
        elif deadline.event is not None and deadline.event != spec.event:
            self.add(
                f"{path}.event",
                f"the deadline of step {deadline.step!r} fires {spec.event!r},"
                f" not {deadline.event!r}",
            )

    # -- the header

    def header(self, header: _Header) -> None:
        assert self.protocol is not None
        if not header.name.strip():
            self.add("$.scenario.name", "empty name; say in one line what the scenario shows")
        if header.opened_by is not None:
            self.party("$.scenario.opened_by", header.opened_by)
        if header.opened_by_id is None:
            self.add(
                "$.scenario.opened_by_id",
                "the pseudonymous id of the person who opens the encounter is missing"
                ' (every actor but the clock carries one), e.g. opened_by_id = "clerk-07"',
            )
        else:
            self.actor_id("$.scenario.opened_by_id", header.opened_by_id)
        if not header.channel.strip():
            self.add("$.scenario.channel", "empty channel")
        for key, value in header.facts.items():
            spec = self.protocol.facts.get(key)
            path = f"$.scenario.facts.{key}"
            if spec is None:
                declared = ", ".join(self.protocol.facts) or "none"
                self.add(
                    path,
                    f"unknown fact {key!r}{suggest(key, self.protocol.facts)};"
                    f" declared by {self.protocol.id!r}: {declared}",
                )
            elif not spec.allows(value):
                allowed = "true or false" if spec.kind.value == "bool" else ", ".join(spec.values)
                # never echo the value: facts are about a child
                self.add(path, f"value not allowed; allowed: {allowed}")


def _offset_text(offset: timedelta | None) -> str:
    if offset is None:
        return "?"
    return f"+{format_duration(offset)}" if offset else "+0m"
