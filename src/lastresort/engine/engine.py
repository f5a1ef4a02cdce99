"""The Engine: the embedding facade. Open encounters, fire events, tick deadlines,
deliver the outbox.

Every call either commits one complete change through the store or raises and
changes nothing. Side effects (observers, deliveries) run only after the commit.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NoReturn

from attrs import evolve

from .. import arguments as check
from ..clock import Clock, SystemClock, instant_after, zone_of
from ..errors import (
    ActorRefused,
    Category,
    ChannelRefused,
    ConcurrentUpdate,
    DeadlineGone,
    FactsRefused,
    GuardRefused,
    InvalidArgument,
    LastResortError,
    NotPermitted,
    ProtocolError,
    TransitionNotAllowed,
    UnknownEncounter,
    UnknownProtocol,
)
from ..events import (
    DeadlineDeferred,
    Event,
    NotificationDeadLettered,
    NotificationDelivered,
    NotificationQueued,
    ObserverFailed,
    StepEntered,
)
from ..outbox import (
    Backoff,
    DeliveryRefused,
    NotDelivered,
    Notification,
    check_delivery_settings,
    escalation_key,
    failure_text,
    hand_over,
    is_emergency,
    retry_delay,
)
from ..privacy import FACT_NAME, describe, error_text, exception_kind, role_problem
from ..protocol.model import CLOCK, Actor, Encounter, Protocol, Transition, WorkingDays
from ..protocol.validation import validate
from ..protocol.workdays import WorkingCalendar
from ..store.base import PendingDeadline, Store
from ..store.memory import MemoryStore
from ..store.refusals import (
    CODE,
    UNKNOWN_ROLE,
    Refusal,
    check_refusal,
    check_refusals_query,
    refusal_problem,
)
from ..verifier.verification import verify
from .changes import chosen_latest, dated, opened, stepped, unfired
from .dispatch import CompiledProtocol
from .loading import BrokenPlugin, leave_out_broken
from .plugins import REPLACEMENT, Hooks, delivery_replacement, make_plugin_manager

__all__ = ["Engine"]

log = logging.getLogger("lastresort.engine")

_CLOCK = Actor(CLOCK)
#: How long a tick's claim on a due deadline keeps other workers away by default.
DEFAULT_DEADLINE_LEASE = timedelta(minutes=1)
_MAX_LEASE = timedelta(days=1)
#: How often a deadline is tried again at once when its encounter moved meanwhile.
_RACES = 3


def _always(_: Transition) -> bool:
    return True


_OUTBOX = Actor("outbox")

#: The refusals the engine records in the refusal log when ``open`` or ``fire``
#: raises them: the actor was told no on grounds of who it is (``ActorRefused``,
#: ``NotPermitted``), of the encounter's state (``TransitionNotAllowed``,
#: ``GuardRefused``) or of data it tried to store (``FactsRefused``). Input errors are
#: not recorded: ``InvalidArgument``, ``ChannelRefused``, ``UnknownProtocol`` and
#: ``UnknownEncounter`` (nothing of an encounter to attach; an embedder that wants
#: them records them with :meth:`Engine.record_refusal`), nor ``ConcurrentUpdate``
#: (a race, not a refusal of the actor) and ``StoreError``.
RECORDED: tuple[type[LastResortError], ...] = (
    ActorRefused,
    NotPermitted,
    TransitionNotAllowed,
    GuardRefused,
    FactsRefused,
)
#: The ``action`` of a refusal whose event name had not a code's form (not kept).
UNREADABLE = "_unreadable"
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")


class Engine:
    """Runs protocols for encounters, on a store, with a clock and plugins.

    :param protocols: the protocols to run; ``None`` takes every protocol the
        plugins provide (the reference ``taskforce`` and installed plugins).
    :param plugins: plugin objects or modules, asked before installed plugins.
    :param store: where encounters live (default: a new :class:`MemoryStore`).
    :param clock: where the time comes from (default: :class:`SystemClock`).
    :param entry_points: load plugins from the ``lastresort`` entry point group.
    :param strict: refuse protocols that fail a safety property of the verifier.
    :param strict_plugins: an installed plugin that cannot be used (it fails to
        import or register, its protocols hook fails, a protocol it provides is
        invalid or collides with another's) is an error: the first one's
        :attr:`BrokenPlugin.error` is raised. By default it is left out, logged, and
        listed in :attr:`broken_plugins`, and everything else runs.
    :param backoff: the retry policy of outbox deliveries.
    :param ids: makes new encounter ids (default: random UUIDs, pseudonymous).
    :param deadline_lease: how long :meth:`tick` claims a due deadline: no other
        worker takes it meanwhile, and one that could not fire (the store failed)
        is tried again after it. A worker that outlives its lease may see another
        claim the deadline; it still fires once (default: one minute; more than
        zero, at most a day).
    :raises InvalidArgument: (a :class:`ValueError` too) for a ``deadline_lease``
        that is not such a timedelta, or a delivery setting out of range.
    :param delivery_timeout: seconds a ``lastresort_deliver`` call may take before
        the attempt counts as failed (``None``: no limit, called in the caller's
        thread; otherwise the hook runs in a daemon thread).
    :param delivery_lease: how long a claimed notification is hidden from other
        workers; longer than ``delivery_timeout``.
    :param max_attempts: failed attempts after which a notification is
        dead-lettered and escalated (see :meth:`deliver`).
    :raises ProtocolError: when a protocol is invalid (every problem listed).
    :raises PluginLoadError: when a plugin cannot be registered.
    """

    def __init__(
        self,
        protocols: Iterable[Protocol] | None = None,
        plugins: Iterable[object] = (),
        store: Store | None = None,
        clock: Clock | None = None,
        entry_points: bool = True,
        *,
        strict: bool = False,
        strict_plugins: bool = False,
        backoff: Backoff | None = None,
        ids: Callable[[], str] | None = None,
        deadline_lease: timedelta = DEFAULT_DEADLINE_LEASE,
        delivery_timeout: float | None = 30.0,
        delivery_lease: timedelta = timedelta(minutes=5),
        max_attempts: int = 5,
    ) -> None:
        protocols = None if protocols is None else _listed(protocols)
        check.check_engine(protocols, plugins, store, clock, store_type=Store)
        if (
            not isinstance(deadline_lease, timedelta)
            or not timedelta(0) < deadline_lease <= _MAX_LEASE
        ):
            raise InvalidArgument(
                call="Engine",
                argument="deadline_lease",
                problem=f"a timedelta of more than zero and at most {_MAX_LEASE},"
                f" not {deadline_lease!r}",
            )
        #: how long :meth:`tick` claims a due deadline
        self.deadline_lease = deadline_lease
        self.delivery_timeout, self.delivery_lease, self.max_attempts = check_delivery_settings(
            delivery_timeout, delivery_lease, max_attempts
        )
        self.store: Store = store if store is not None else MemoryStore()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.backoff = backoff or Backoff()
        self.strict = strict  # refuse protocols the verifier finds unsafe (see _check)
        self._ids = ids or random_id
        # the sequence number an encounter's next event will get, if the store can say
        # (``next_seq`` is an optional store method); without it events carry 0 and the
        # store numbers them
        self._predict: Callable[[str], int] | None = getattr(self.store, "next_seq", None)
        broken: list[BrokenPlugin] = []
        # protocols checked while loading, with the plugin manager's change count then
        self._checked: dict[int, tuple[Protocol, int | None, list[str]]] = {}
        pm = make_plugin_manager(plugins, entry_points, broken=broken)
        self.plugin_manager = pm
        # a test's recording delivery (lastresort.testing) replaces every other delivery
        replacement = delivery_replacement()
        if replacement is not None and not pm.is_registered(replacement):
            pm.register(replacement, name=REPLACEMENT)
        self.hooks = Hooks(
            pm, delivery_only=None if replacement is None else pm.get_name(replacement)
        )
        if entry_points:
            leave_out_broken(self.hooks, self._problems_of if protocols is None else None, broken)
        if strict_plugins and broken:
            raise broken[0].error
        found = self.hooks.protocols() if protocols is None else _by_id(protocols)
        self._check(found.values())
        self.hooks.delivery_scopes()
        self._compiled = {pid: CompiledProtocol(p) for pid, p in found.items()}
        # per protocol id: its working-day calendar, None when no deadline counts
        # working days (built on first use; the closing-days hook is asked per year)
        self._calendars: dict[str, WorkingCalendar | None] = {}
        #: the installed plugins left out because they cannot be used, and why (empty
        #: with ``strict_plugins=True``, which raises instead)
        self.broken_plugins: tuple[BrokenPlugin, ...] = tuple(broken)
        for plugin in self.broken_plugins:
            log.error(
                "plugin %s left out (%s): %s; protocols left out with it: %s",
                plugin.name,
                plugin.stage,
                plugin.reason,
                ", ".join(plugin.protocols) or "none",
            )

    # -- protocols ------------------------------------------------------------------

    def _problems_of(self) -> Callable[[Protocol], list[str]]:
        """The check of one protocol, as :meth:`_check` makes it (the guard names
        asked once). A protocol already checked while the same plugins were registered
        is not checked again: loading leaves broken plugins out by checking the
        installed protocols, and :meth:`_check` then checks the ones that remain."""
        guard_names = self.hooks.guard_names()
        changes = getattr(self.plugin_manager, "changes", None)
        memo = self._checked

        def problems(protocol: Protocol) -> list[str]:
            seen = memo.get(id(protocol))
            if seen is not None and changes is not None and seen[:2] == (protocol, changes):
                return list(seen[2])
            found = self._problems(protocol, guard_names)
            memo[id(protocol)] = (protocol, changes, list(found))
            return found

        return problems

    def _problems(self, protocol: Protocol, guard_names: set[str]) -> list[str]:
        """Every problem of ``protocol`` with the plugins registered now."""
        found = validate(protocol, extra=[self.hooks.validate_protocol])
        for i, transition in enumerate(protocol.transitions):
            if transition.guard is not None and transition.guard not in guard_names:
                found.append(
                    f"$.transitions[{i}].guard: no plugin answers guard {transition.guard!r}"
                    " (declare it in lastresort_guard_names)"
                )
        if self.strict and not found:
            # strict: the verifier's safety properties, on a structurally sound protocol
            report = verify(protocol, self.hooks.protocol_properties(protocol))
            found.extend(f"unsafe: {p}" for p in report.problems())
        return found

    def _check(self, protocols: Iterable[Protocol]) -> None:
        problems_of = self._problems_of()
        problems: list[str] = []
        for protocol in protocols:
            problems.extend(f"protocol {protocol.id!r}: {p}" for p in problems_of(protocol))
        if problems:
            raise ProtocolError(problems=problems)

    @property
    def protocols(self) -> Mapping[str, Protocol]:
        """The protocols this engine runs, by id."""
        return {pid: c.protocol for pid, c in self._compiled.items()}

    def protocol(self, protocol_id: str) -> Protocol:
        """The protocol ``protocol_id``. :raises UnknownProtocol, InvalidArgument:"""
        check.check_text("Engine.protocol", "protocol_id", protocol_id)
        return self._machine(protocol_id).protocol

    def _calendar(self, protocol: Protocol) -> WorkingCalendar | None:
        """The working-day calendar of ``protocol``, or ``None`` when it needs none."""
        try:
            return self._calendars[protocol.id]
        except KeyError:
            pass
        calendar = None
        if any(
            s.deadline is not None and isinstance(s.deadline.after, WorkingDays)
            for s in protocol.steps.values()
        ):
            hooks = self.hooks
            calendar = WorkingCalendar.of(protocol, lambda year: hooks.closing_days(protocol, year))
        self._calendars[protocol.id] = calendar
        return calendar

    def _machine(self, protocol_id: str) -> CompiledProtocol:
        try:
            return self._compiled[protocol_id]
        except KeyError:
            raise UnknownProtocol(protocol_id=protocol_id, known=list(self._compiled)) from None

    # -- reading ----------------------------------------------------------------------

    def get(self, encounter_id: str) -> Encounter:
        """The encounter as stored now. :raises UnknownEncounter, InvalidArgument:"""
        check.check_text("Engine.get", "encounter_id", encounter_id)
        return self.store.load(encounter_id)

    def timeline(self, encounter_id: str) -> list[Event]:
        """The encounter's events in order (sequence numbers 1, 2, 3, ...).

        :raises UnknownEncounter: no such encounter.
        :raises InvalidArgument: an argument of the wrong form."""
        check.check_text("Engine.timeline", "encounter_id", encounter_id)
        return self.store.timeline(encounter_id)

    def deadlines(self, encounter_id: str) -> list[PendingDeadline]:
        """The encounter's pending deadlines. :raises UnknownEncounter, InvalidArgument:"""
        check.check_text("Engine.deadlines", "encounter_id", encounter_id)
        self.store.load(encounter_id)
        return self.store.deadlines(encounter_id)

    def latest_until(
        self, encounter_id: str, step: str, zone: tzinfo | str | None = None
    ) -> datetime | None:
        """The latest ``until`` that :meth:`fire` accepts now for an event that enters
        ``step`` of the encounter, when that step's deadline is a date the actor chooses
        (``until = "chosen"``): its ``after`` past the last entry of its ``from`` step,
        and, for a duration, no later on the calendar in ``zone`` either (across a
        daylight saving change the earlier reading holds). ``None`` for a step whose
        deadline is not chosen. For a form that offers the date (the counter desk).

        :param zone: the time zone the date is given in (an IANA name or a tzinfo);
            ``None``: the protocol's ``[protocol] timezone``.
        :returns: a UTC moment.
        :raises UnknownEncounter: no such encounter.
        :raises InvalidArgument: ``step`` is not a step of the encounter's protocol, or
            ``zone`` is not a time zone.
        """
        check.check_text("Engine.latest_until", "encounter_id", encounter_id)
        check.check_text("Engine.latest_until", "step", step)
        encounter = self.store.load(encounter_id)
        protocol = self._machine(encounter.protocol).protocol
        if step not in protocol.steps:
            raise InvalidArgument(
                call="Engine.latest_until",
                argument="step",
                problem=f"a step of protocol {protocol.id!r}, not {step!r}",
            )
        read_in = zone_of(
            "Engine.latest_until", "zone", protocol.timezone if zone is None else zone
        )
        return chosen_latest(
            protocol, encounter, step, self.store.timeline, read_in, self._calendar(protocol)
        )

    def outbox(self, encounter_id: str | None = None) -> list[Notification]:
        """Notifications queued (delivered or not), for one encounter or all.

        :raises InvalidArgument: for an ``encounter_id`` that is not ``None`` or a string."""
        check.check_optional_text("Engine.outbox", "encounter_id", encounter_id)
        return self.store.outbox(encounter_id)

    def allowed(self, encounter_id: str, actor: Actor | str) -> list[str]:
        """The events ``actor`` may fire now (permissions, handover rule and guards).
        Deadline events are never listed: only :meth:`tick` fires them.

        :raises UnknownEncounter: no such encounter.
        :raises InvalidArgument: an argument of the wrong form."""
        check.check_text("Engine.allowed", "encounter_id", encounter_id)
        check.check_actor("Engine.allowed", actor)
        encounter = self.store.load(encounter_id)
        who = Actor.of(actor)
        return [] if who.role == CLOCK else self._allowed(encounter, who)

    def _allowed(self, encounter: Encounter, actor: Actor, *, lenient: bool = False) -> list[str]:
        """The events ``actor`` may fire now. ``lenient`` (for the ``allowed`` list of a
        refusal): a guard that raises counts as refusing, and is logged, so that a
        crashing guard of another event never replaces the refusal being raised."""
        machine = self._machine(encounter.protocol)
        allowed = []
        for event in machine.events(encounter.state):
            # the same permitted candidates fire() uses, so both answer alike
            for transition in machine.permitted_for(encounter.state, event, actor.role):
                if transition.guard is None or self._guard_allows(
                    transition.guard, encounter, event, actor, lenient
                ):
                    allowed.append(event)
                    break
        return allowed

    def _guard_allows(
        self, guard: str, encounter: Encounter, event: str, actor: Actor, lenient: bool
    ) -> bool:
        if not lenient:
            return self.hooks.guard(guard, encounter, event, actor) is None
        try:
            return self.hooks.guard(guard, encounter, event, actor) is None
        except Exception as exc:  # noqa: BLE001 - listed as not allowed; the refusal goes on
            log.error(
                "encounter %s: guard %s of %s raised %s while listing the allowed events"
                " of a refusal; listed as not allowed",
                encounter.id,
                guard,
                event,
                exception_kind(exc),
            )
            return False

    def on_duty(self, protocol_id: str, party: str, at: datetime | None = None) -> str | None:
        """Who is on duty for ``party`` (``lastresort_party_directory``), if a plugin knows.

        :param at: a timezone-aware moment (default: the clock's now).
        :raises UnknownProtocol: no such protocol.
        :raises NotPermitted: ``party`` is not one of its parties.
        :raises InvalidArgument: an argument of the wrong form."""
        check.check_text("Engine.on_duty", "party", party)
        check.check_moment("Engine.on_duty", "at", at, optional=True)
        protocol = self.protocol(protocol_id)
        if party not in protocol.parties:
            raise NotPermitted(
                event="on_duty", actor=party, allowed=list(protocol.parties), reason="unknown party"
            )
        return self.hooks.party_directory(protocol, protocol.parties[party], at or self.clock.now())

    # -- changing -----------------------------------------------------------------------

    def open(
        self,
        protocol_id: str,
        actor: Actor | str,
        facts: Mapping[str, str | bool] | None = None,
        channel: str | None = None,
    ) -> Encounter:
        """A child arrives: open an encounter in the protocol's initial step.

        :param actor: the role (or :class:`Actor`) opening it; must be a party of
            the protocol.
        :param facts: declared facts only (no names, no BSN, no free text).
        :param channel: how the child arrived: one of the protocol's ``channels``
            (``None``: the first of them, ``counter`` unless the protocol says otherwise).
        :raises UnknownProtocol: nothing is written (as for every error below).
        :raises ActorRefused: the actor carries no pseudonymous id.
        :raises NotPermitted: the actor may not open an encounter.
        :raises ChannelRefused: a channel the protocol does not declare.
        :raises FactsRefused: facts the protocol does not declare, or of the wrong value.
        :raises InvalidArgument: an argument of the wrong form.
        """
        check.check_open(protocol_id, actor, facts, channel)
        machine = self._machine(protocol_id)
        protocol = machine.protocol
        try:
            who = _person(actor)
            if channel is None:
                channel = protocol.channels[0]
            elif not isinstance(channel, str) or channel not in protocol.channels:
                # never echo it: a channel of free text could name the child
                raise ChannelRefused(
                    protocol_id=protocol.id, allowed=protocol.channels, given=describe(channel)
                )
            if who.role not in protocol.parties:
                raise NotPermitted(
                    step=protocol.initial,
                    event="open",
                    actor=who.role,
                    allowed=list(protocol.parties),
                    reason="only a party of the protocol can open an encounter",
                )
            clean = self._facts(machine, facts or {})
        except RECORDED as exc:
            self._refused(exc, actor, "open", protocol.id, None)
            raise
        change = opened(
            protocol, self._ids(), who, clean, self.clock.now(), channel, self._calendar(protocol)
        )
        encounter = change.encounter
        committed = self.store.commit(change)
        log.debug("encounter %s v1: opened in %s by %s", encounter.id, protocol.initial, who.role)
        self._observe(committed, encounter)
        return encounter

    def fire(
        self,
        encounter_id: str,
        event: str,
        actor: Actor | str,
        expected_version: int | None = None,
        *,
        until: datetime | None = None,
    ) -> list[Event]:
        """Fire ``event`` on an encounter as ``actor``.

        :param expected_version: refuse with :class:`ConcurrentUpdate` unless the
            stored version is this one (what the caller's screen showed).
        :param until: the date of the entered step's deadline, when the protocol lets
            the actor choose it (``until = "chosen"``): a timezone-aware moment later
            than now and no later than the deadline's ``after`` past the entry of its
            ``from`` step; stored as a UTC instant. Required for such a step, refused
            for any other.
        :returns: the committed events, then any :class:`ObserverFailed`.
        :raises TransitionNotAllowed: nothing is written (as for every error below).
        :raises NotPermitted: the actor's party may not fire the event.
        :raises GuardRefused: a guard refused the event.
        :raises UnknownEncounter: no such encounter.
        :raises ConcurrentUpdate: ``expected_version`` is not the stored version.
        :raises InvalidArgument: an argument of the wrong form.
        """
        check.check_fire(encounter_id, event, actor, expected_version)
        check.check_moment("Engine.fire", "until", until, optional=True)
        encounter = self.store.load(encounter_id)
        try:
            who = _person(actor)
            if who.role == CLOCK:
                raise NotPermitted(
                    encounter_id=encounter_id,
                    step=encounter.state,
                    event=event,
                    actor=CLOCK,
                    allowed=[],
                    reason="deadline events are fired only by tick()",
                )
            if expected_version is not None and encounter.version != expected_version:
                raise ConcurrentUpdate(
                    encounter_id=encounter_id, expected=expected_version, actual=encounter.version
                )
            return self._fire(encounter, event, who, self.clock.now(), until=until)
        except RECORDED as exc:
            self._refused(exc, actor, event, encounter.protocol, encounter)
            raise

    def _fire(
        self,
        encounter: Encounter,
        event: str,
        actor: Actor,
        now: datetime,
        missed: PendingDeadline | None = None,
        until: datetime | None = None,
    ) -> list[Event]:
        machine = self._machine(encounter.protocol)
        protocol = machine.protocol
        state = encounter.state
        route = machine.route(state, event, actor.role)
        if not route.permitted:
            self._refuse(machine, encounter, event, actor, route.candidates)
        guard: Callable[[Transition], bool] = _always
        refusals: list[tuple[str, str]] | None = None
        if route.guarded:
            refusals = []

            def guard(transition: Transition) -> bool:
                assert transition.guard is not None
                reason = self.hooks.guard(transition.guard, encounter, event, actor)
                if reason is not None:
                    assert refusals is not None
                    refusals.append((transition.guard, reason))
                return reason is None

        taken = machine.run(state, event, route.permit, guard, route.plain)
        if taken is None:
            name, reason = refusals[-1] if refusals else ("?", "refused")
            raise GuardRefused(
                encounter_id=encounter.id, step=state, event=event, guard=name, reason=reason
            )

        eid = encounter.id
        # events are numbered here when the store can predict the next sequence number
        # (it renumbers them if a delivery appended meanwhile), so that committing does
        # not have to copy every event
        first_seq = self._predict(eid) if self._predict is not None else 0
        pending = self.store.deadlines(eid)
        spec = machine.steps[taken.target].deadline
        due = (
            None
            if until is None and (spec is None or (spec.since is None and spec.until is None))
            else dated(
                protocol,
                encounter,
                taken.target,
                now,
                until,
                pending,
                self.store.timeline,
                self._calendar(protocol),
            )
        )
        change = stepped(
            protocol,
            machine.steps,
            encounter,
            taken,
            event,
            actor,
            now,
            pending,
            missed,
            first_seq,
            due,
            self._calendar(protocol),
        )
        committed = self.store.commit(change)
        after, step_key = change.encounter, taken.target
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "encounter %s v%d: %s --%s by %s--> %s",
                eid,
                after.version,
                state,
                event,
                actor.role,
                step_key,
            )
        failed = self._observe(committed, after)
        return committed + failed if failed else committed

    def _refuse(
        self,
        machine: CompiledProtocol,
        encounter: Encounter,
        event: str,
        actor: Actor,
        candidates: Sequence[Transition],
    ) -> NoReturn:
        """Raise why ``actor`` may not fire ``event`` now: it is not defined from the
        step (:class:`TransitionNotAllowed`) or not for this actor (:class:`NotPermitted`)."""
        state = encounter.state
        protocol = machine.protocol
        if not candidates:
            raise TransitionNotAllowed(
                encounter_id=encounter.id,
                step=state,
                event=event,
                allowed=self._allowed(encounter, actor, lenient=True),
                closed=state in protocol.steps and protocol.steps[state].terminal,
            )
        may = sorted(
            {role for t in candidates for role in t.by if machine.permitted(state, t, role)}
        )
        receiver = machine.receiver(state, candidates[0])
        reason = (
            f"handover to {receiver!r}: only the receiving party accepts it"
            if receiver and actor.role in candidates[0].by
            else None
        )
        raise NotPermitted(
            encounter_id=encounter.id,
            step=state,
            event=event,
            actor=actor.role,
            allowed=may,
            reason=reason,
        )

    # -- refusals ---------------------------------------------------------------------

    def _refused(
        self,
        exc: LastResortError,
        actor: Actor | str,
        action: str,
        protocol_id: str | None,
        encounter: Encounter | None,
    ) -> None:
        """Record ``exc``, the refusal of ``action`` by ``actor``, in the refusal log:
        codes and identifiers only (never facts, a guard's reason or a value that has
        not an identifier's form). When it cannot be recorded (the store fails, or the
        clock it is dated by) the failure is logged, and the caller still gets ``exc``."""
        refusal: Refusal | None = None
        try:
            refusal = self._refusal(exc, actor, action, protocol_id, encounter)
            self.store.record_refusal(refusal)
        except Exception as failure:  # noqa: BLE001 - the caller gets the refusal itself
            log.error(
                "refusal of %s by %s on encounter %s (%s) could not be recorded: %s",
                "?" if refusal is None else refusal.action,
                "?" if refusal is None else refusal.actor_role,
                (None if refusal is None else refusal.encounter_id) or "-",
                type(exc).__name__ if refusal is None else refusal.reason,
                exception_kind(failure),
            )

    def _refusal(
        self,
        exc: LastResortError,
        actor: Actor | str,
        action: str,
        protocol_id: str | None,
        encounter: Encounter | None,
    ) -> Refusal:
        """The refusal log's record of ``exc`` (see :meth:`_refused`)."""
        reason = type(exc).__name__
        if isinstance(exc, GuardRefused) and CODE.fullmatch(f"guard:{exc.guard}"):
            reason = f"guard:{exc.guard}"
        role, actor_id = _who(actor)
        # a name the protocol does not know is the caller's text, whatever its form
        # ("AnnaJansenGeslagen" is a code): only the protocol's own names are kept
        compiled = self._compiled.get(protocol_id) if protocol_id is not None else None
        protocol = None if compiled is None else compiled.protocol
        if role not in (UNKNOWN_ROLE, CLOCK) and (protocol is None or role not in protocol.parties):
            role = UNKNOWN_ROLE
        known = action == "open" or (
            protocol is not None and any(t.event == action for t in protocol.transitions)
        )
        step = None if encounter is None else encounter.state
        refusal = Refusal(
            at=self.clock.now().astimezone(UTC),
            actor_role=role,
            actor_id=actor_id,
            action=action if known and _code(action) else UNREADABLE,
            encounter_id=None if encounter is None else encounter.id,
            step=step if step is not None and _code(step) else None,
            version=None if encounter is None else encounter.version,
            category=exc.category,
            reason=reason if _code(reason) else type(exc).__name__,
            protocol=protocol_id,
        )
        if refusal_problem(refusal) is not None:  # an encounter or protocol id of a
            # foreign form (an embedder's ids=): kept without it rather than not at all
            refusal = evolve(refusal, encounter_id=None, protocol=None)
        return refusal

    def record_refusal(
        self,
        *,
        actor: Actor | str,
        action: str,
        category: Category,
        reason: str,
        encounter_id: str | None = None,
        protocol: str | None = None,
    ) -> Refusal:
        """Record a refused attempt the embedder refused itself (an HTTP service's
        401 or 403) in the refusal log, beside the ones the engine records.

        :param actor: who tried (an :class:`Actor`, or a role key; the id may be
            missing when the caller could not be identified).
        :param action: what was tried, a code (``"http:fire"``).
        :param category: the kind of refusal.
        :param reason: why, a code (``"unauthenticated"``, ``"NotPermitted"``): 1 to 80
            letters, digits, ``_ : . -``, no run of 8 digits; never free text.
        :param encounter_id: the encounter named, if any: when it is stored, its step,
            version and protocol are recorded with it.
        :param protocol: the protocol id, if known (default: the encounter's; another
            protocol than a stored encounter's is refused).
        :returns: the recorded refusal, numbered.
        :raises InvalidArgument: when an argument has not its form (the message never
            quotes it); nothing is written.
        :raises StoreError: when the store cannot record it; nothing is written.
        """
        call = "Engine.record_refusal"
        check.check_actor(call, actor)
        try:
            who = Actor.of(actor)
        except ActorRefused as exc:
            raise InvalidArgument(call=call, argument="actor", problem=exc.problem) from None
        if not isinstance(category, Category):
            raise InvalidArgument(
                call=call, argument="category", problem=f"a Category, not {describe(category)}"
            )
        step: str | None = None
        version: int | None = None
        refusal = Refusal(
            at=self.clock.now().astimezone(UTC),
            actor_role=who.role,
            actor_id=who.id,
            action=action,
            encounter_id=encounter_id,
            category=category,
            reason=reason,
            protocol=protocol,
        )
        check_refusal(call, refusal)
        if encounter_id is not None:
            try:
                encounter = self.store.load(encounter_id)
            except UnknownEncounter:
                pass
            else:
                if protocol is not None and protocol != encounter.protocol:
                    # an audit record that contradicts the store is refused, not kept
                    raise InvalidArgument(
                        call=call,
                        argument="protocol",
                        problem="None or the named encounter's protocol (its id is"
                        f" {encounter.protocol!r}), not another protocol",
                    )
                step = encounter.state if _code(encounter.state) else None
                version = encounter.version
                if (
                    protocol is None
                    and refusal_problem(evolve(refusal, protocol=encounter.protocol)) is None
                ):
                    protocol = encounter.protocol
                refusal = evolve(refusal, step=step, version=version, protocol=protocol)
        return self.store.record_refusal(refusal)

    def refusals(
        self,
        *,
        encounter_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[Refusal]:
        """Recorded refusals, oldest first: the engine's (refused ``open`` and ``fire``
        attempts) and an embedder's (:meth:`record_refusal`).

        :param encounter_id: only this encounter's.
        :param since: only those at or after this timezone-aware moment.
        :param limit: at most this many (a whole number of at least 1).
        :param after_seq: only those numbered after this (page on with the last
            ``seq`` of the previous page).
        :raises InvalidArgument: for an argument of the wrong type; nothing is read.
        """
        check_refusals_query("Engine.refusals", encounter_id, since, limit, after_seq)
        return self.store.refusals(
            encounter_id=encounter_id, since=since, limit=limit, after_seq=after_seq
        )

    def tick(self, now: datetime | None = None, limit: int | None = None) -> list[Event]:
        """Fire every deadline that is due: its event is fired as actor ``clock``
        if the encounter is still in the deadline's step. Each deadline fires
        exactly once, whatever fails and however many workers tick at once.

        Due deadlines are claimed for :attr:`deadline_lease`; the commit of the step
        a deadline fires also consumes it, so a worker that outlived its claim (and
        whose deadline another worker fired meanwhile) writes nothing.

        - A deadline that cannot fire now because the store failed (a
          :class:`StoreError`, ``database is locked``, any exception from the store)
          or a plugin raised stays pending: it is logged, reported as a
          :class:`DeadlineDeferred` in the returned list, and claimed again once
          the lease has run out.
        - A deadline whose event the protocol refuses now (a guard said no) is
          recorded as :class:`DeadlineMissed` and scheduled again, the same
          ``after`` from now: a waiting step never loses its deadline. Another
          clock transition of that event whose guard passes is taken instead.

        :param now: the timezone-aware moment to check against (default: the clock's now).
        :param limit: handle at most this many deadlines (``None``: all that are due).
        :returns: the committed events of every deadline fired (each followed by any
            :class:`ObserverFailed`), and a :class:`DeadlineDeferred` for each
            deadline left pending.
        :raises InvalidArgument: (a :class:`ValueError` too) for a ``now`` that is not
            ``None`` or an aware datetime, or a limit that is not ``None`` or a whole
            number ≥ 0; nothing is claimed.
        :raises StoreError: when the due deadlines cannot be claimed; nothing is
            claimed.
        """
        check.check_moment("Engine.tick", "now", now, optional=True)
        check.check_limit("Engine.tick", limit)
        now = now or self.clock.now()
        out: list[Event] = []
        for deadline in self.store.claim_deadlines(now, self.deadline_lease, limit):
            try:
                out.extend(self._fire_deadline(deadline, now))
            except Exception as exc:  # noqa: BLE001 - one deadline never stops the others
                out.append(self._deferred(deadline, now, exc))
        return out

    def _fire_deadline(self, deadline: PendingDeadline, now: datetime) -> list[Event]:
        """Fire one claimed deadline; raises what leaves it pending (to retry)."""
        raced: ConcurrentUpdate | None = None
        for _ in range(_RACES):
            try:
                encounter = self.store.load(deadline.encounter_id)
            except UnknownEncounter:
                self.store.release_deadline(deadline.id)
                return []
            if encounter.state != deadline.step:  # cannot happen with a consistent store
                self.store.release_deadline(deadline.id)
                return []
            try:
                try:
                    return self._fire(encounter, deadline.event, _CLOCK, now, deadline)
                except (GuardRefused, TransitionNotAllowed, NotPermitted) as exc:
                    return self._rearm(encounter, deadline, now, exc)
            except DeadlineGone:
                return []  # fired by another worker, or the encounter left the step
            except ConcurrentUpdate as exc:
                raced = exc  # the encounter moved on meanwhile: look again
        assert raced is not None
        raise raced

    def _rearm(
        self, encounter: Encounter, deadline: PendingDeadline, now: datetime, exc: Exception
    ) -> list[Event]:
        log.warning(
            "deadline %s of encounter %s could not fire %s (%s): recorded as missed and"
            " scheduled again",
            deadline.id,
            encounter.id,
            deadline.event,
            type(exc).__name__,
        )
        protocol = self._machine(encounter.protocol).protocol
        step = protocol.steps[deadline.step]
        first_seq = self._predict(encounter.id) if self._predict is not None else 0
        change = unfired(
            encounter, step, deadline, now, _CLOCK, first_seq, self._calendar(protocol)
        )
        committed = self.store.commit(change)
        return committed + self._observe(committed, change.encounter)

    def _deferred(self, deadline: PendingDeadline, now: datetime, exc: Exception) -> Event:
        error = error_text(exc)  # a foreign message could hold anything: only its class
        retry_at = instant_after(now, self.deadline_lease)
        log.error(
            "deadline %s of encounter %s (%s) could not fire now, retried after the lease"
            " at %s: %s",
            deadline.id,
            deadline.encounter_id,
            deadline.event,
            retry_at.isoformat(),
            error,
        )
        return DeadlineDeferred(
            encounter_id=deadline.encounter_id,
            at=now,
            actor=_CLOCK,
            deadline_id=deadline.id,
            step=deadline.step,
            event=deadline.event,
            due=deadline.due,
            error=error,
            retry_at=retry_at,
        )

    def next_deadline(self) -> datetime | None:
        """When the earliest pending deadline of any encounter falls due."""
        return self.store.next_due()

    def deliver(self, limit: int | None = None) -> list[Event]:
        """Hand each due outbox notification to the ``lastresort_deliver`` hook.

        Notifications are claimed one at a time, each for :attr:`delivery_lease`,
        so a hanging hook holds only its own; a call that exceeds
        :attr:`delivery_timeout` counts as a failed attempt. A failure is retried
        later with exponential backoff (:attr:`backoff`); after
        :attr:`max_attempts` failures (or at once when the hook raises
        :class:`DeliveryRefused`; a :class:`DeliveryDeferred`'s ``retry_after`` is
        honoured up to the backoff's cap) the notification is dead-lettered (recorded as
        :class:`NotificationDeadLettered` and never handed over again) and escalated
        to the parties responsible for the child (a ``NotificationQueued`` each,
        in the same commit). Nothing of it changes an encounter's state.

        :param limit: hand over at most this many (``None``: all that are due).
        :returns: the events recorded (:class:`NotificationDelivered`,
            :class:`NotificationDeadLettered` and the escalations'
            :class:`NotificationQueued`), then any :class:`ObserverFailed`.
        :raises InvalidArgument: (a :class:`ValueError` too) for a limit that is not
            ``None`` or a whole number ≥ 0; nothing is claimed.
        """
        check.check_limit("Engine.deliver", limit)
        out: list[Event] = []
        handed = 0
        while limit is None or handed < limit:
            now = self.clock.now()  # per claim: the lease runs from the moment it is taken
            claimed = self.store.claim_outbox(now, self.delivery_lease, 1)
            if not claimed:
                break
            handed += 1
            out.extend(self._deliver_one(claimed[0], now))
        return out

    def _deliver_one(self, note: Notification, now: datetime) -> list[Event]:
        attempt = note.attempts + 1
        # who the directory said is on duty, kept on the outbox row whatever the outcome
        # (a contact is staff's address, never the child's); set by hand(), which may run
        # in a thread of its own
        addressed: list[str | None] = [None]

        def hand() -> str:
            machine = self._machine(note.protocol)
            party = machine.protocol.parties[note.party]
            contact = self.hooks.party_directory(machine.protocol, party, now)
            addressed[0] = contact
            receipt = self.hooks.deliver(evolve(note, contact=contact, attempts=attempt))
            if receipt is None:
                raise NotDelivered("no plugin delivered it")
            return receipt

        try:
            receipt = hand_over(hand, self.delivery_timeout)
        except Exception as exc:  # noqa: BLE001 - a failed delivery is retried, never fatal
            if attempt >= self.max_attempts or isinstance(exc, DeliveryRefused):
                return self._dead_letter(note, attempt, now, exc, addressed[0])
            delay = retry_delay(self.backoff, attempt, exc)
            # the hook's message could hold anything (a child's name): never kept
            error = failure_text(exc)
            self.store.failed(
                note.key, attempt, instant_after(now, delay), error, contact=addressed[0]
            )
            log.warning(
                "delivery of %s to %s failed (attempt %d of %d), retry in %s: %s",
                note.key,
                note.party,
                attempt,
                self.max_attempts,
                delay,
                error,
            )
            return []
        event = self.store.delivered(
            note.key,
            NotificationDelivered(
                encounter_id=note.encounter_id,
                at=now,
                actor=_OUTBOX,
                key=note.key,
                party=note.party,
                receipt=receipt,
                attempts=attempt,
            ),
            contact=addressed[0],
        )
        if event is None:  # our lease ran out and another worker settled it meanwhile
            log.info("notification %s was settled by another worker; nothing recorded", note.key)
            return []
        return [event, *self._observe([event], self.store.load(note.encounter_id))]

    def _dead_letter(
        self,
        note: Notification,
        attempt: int,
        now: datetime,
        exc: Exception,
        contact: str | None = None,
    ) -> list[Event]:
        """Give up ``note`` after its last attempt and escalate, in one commit."""
        compiled = self._compiled.get(note.protocol)
        protocol = None if compiled is None else compiled.protocol
        emergency = is_emergency(note, protocol)
        parties = [] if note.escalates is not None else self._escalation_parties(note, protocol)
        escalations = [
            Notification(
                key=escalation_key(note.key, party),
                encounter_id=note.encounter_id,
                protocol=note.protocol,
                event=note.event,
                step=note.step,
                party=party,
                created_at=now,
                next_attempt_at=now,
            )
            for party in parties
        ]
        committed = self.store.dead_lettered(
            note.key,
            NotificationDeadLettered(
                encounter_id=note.encounter_id,
                at=now,
                actor=_OUTBOX,
                key=note.key,
                party=note.party,
                attempts=attempt,
                error_kind=exception_kind(exc),
                emergency=emergency,
            ),
            escalations,
            [
                NotificationQueued(
                    encounter_id=n.encounter_id,
                    at=now,
                    actor=_OUTBOX,
                    key=n.key,
                    party=n.party,
                    event=n.event,
                )
                for n in escalations
            ],
            contact=contact,
        )
        if not committed:  # another worker settled it meanwhile
            return []
        log.log(
            logging.CRITICAL if emergency else logging.ERROR,
            "%snotification %s to %s dead-lettered after %d attempts (%s); escalated to %s",
            "EMERGENCY: " if emergency else "",
            note.key,
            note.party,
            attempt,
            exception_kind(exc),
            ", ".join(parties) or "nobody (the host must act on the event)",
        )
        return [*committed, *self._observe(committed, self.store.load(note.encounter_id))]

    def _escalation_parties(self, note: Notification, protocol: Protocol | None) -> list[str]:
        """Who is told that ``note`` was dead-lettered: the parties responsible for the
        child in the step the notification's event left, in the step it entered, and
        now; never the party that could not be reached."""
        if protocol is None:
            return []
        left: str | None = None
        entered: StepEntered | None = None
        for event in self.store.timeline(note.encounter_id):
            if isinstance(event, StepEntered):
                entered = event
            elif isinstance(event, NotificationQueued) and event.key == note.key:
                left = None if entered is None else entered.from_step
                break
        steps = protocol.steps
        candidates = [
            None if left is None or left not in steps else steps[left].responsible,
            None if note.step not in steps else steps[note.step].responsible,
            self.store.load(note.encounter_id).responsible,
        ]
        found: list[str] = []
        for party in candidates:
            if (
                party is not None
                and party != note.party
                and party in protocol.parties
                and party not in found
            ):
                found.append(party)
        return found

    # -- helpers ----------------------------------------------------------------------

    def _facts(
        self, machine: CompiledProtocol, facts: Mapping[str, str | bool]
    ) -> dict[str, str | bool]:
        protocol = machine.protocol
        declared = machine.facts
        problems = []
        for key, value in facts.items():
            spec = declared.get(key)
            if spec is None:
                # a key that is no fact name could itself be about the child (a name
                # typed into the wrong field): named only when it has a fact name's form
                shown = repr(key) if isinstance(key, str) and FACT_NAME.fullmatch(key) else None
                problems.append(
                    f"unknown fact {shown or '(' + describe(key) + ', not a fact name)'}"
                    f" (declared: {', '.join(protocol.facts) or 'none'})"
                )
            elif not spec.allows(value):
                allowed = "true or false" if spec.kind.value == "bool" else ", ".join(spec.values)
                # never echo the value: it could be something about the child
                problems.append(f"fact {key!r}: value not allowed (allowed: {allowed})")
        if problems:
            raise FactsRefused(protocol_id=protocol.id, problems=problems)
        return dict(facts)

    def _observe(self, events: Sequence[Event], encounter: Encounter) -> list[Event]:
        if not self.hooks.has_observers():
            return []
        failed: list[Event] = []
        for event in events:
            for plugin, exc in self.hooks.on_event(event, encounter):
                log.error(
                    "observer %s failed on %s of encounter %s: %s",
                    plugin,
                    event.kind,
                    event.encounter_id,
                    type(exc).__name__,
                )
                failed.append(
                    ObserverFailed(
                        encounter_id=event.encounter_id,
                        seq=event.seq,
                        at=event.at,
                        actor=event.actor,
                        plugin=plugin,
                        error=error_text(exc),
                        observed_seq=event.seq,
                    )
                )
        return failed

    def __repr__(self) -> str:
        return f"Engine(protocols={sorted(self._compiled)}, store={self.store!r})"


def _person(actor: Actor | str) -> Actor:
    """``actor`` as an :class:`Actor` that may open or fire: the clock, or an actor
    with a pseudonymous id. :raises ActorRefused: otherwise."""
    who = Actor.of(actor)
    if who.id is None and who.role != CLOCK:
        raise ActorRefused(
            problem=f"actor {who.role!r} carries no id: every actor but the clock must carry"
            f" a pseudonymous id (Actor({who.role!r}, id)), so that who did what is recorded"
        )
    return who


def _who(actor: Actor | str) -> tuple[str, str | None]:
    """The role and id of ``actor`` as the refusal log keeps them: a role that has not a
    role key's form is kept as ``"?"`` (it could be a name)."""
    if isinstance(actor, Actor):
        return actor.role, actor.id
    if isinstance(actor, str) and role_problem(actor) is None:
        return actor, None
    return UNKNOWN_ROLE, None


def _code(text: str) -> bool:
    return CODE.fullmatch(text) is not None and _EIGHT_DIGITS.search(text) is None


def random_id() -> str:
    """A random version-4 UUID as 32 hex digits (what ``uuid.uuid4().hex`` gives,
    without building a ``uuid.UUID``, which costs a fifth of an ``open``)."""
    n = int.from_bytes(os.urandom(16), "big")
    n = (n & ~(0xF000 << 64)) | (4 << 76)  # version 4
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # variant RFC 4122
    return f"{n:032x}"


def _by_id(protocols: Iterable[Protocol]) -> dict[str, Protocol]:
    found: dict[str, Protocol] = {}
    problems = []
    for protocol in protocols:
        if protocol.id in found:
            problems.append(f"$.protocol.id: protocol id {protocol.id!r} given twice")
        found[protocol.id] = protocol
    if problems:
        raise ProtocolError(problems=problems)
    return found


def _listed(protocols: Iterable[Protocol]) -> Iterable[Protocol]:
    """``protocols`` as a list when it is an iterable (a generator is read once here,
    so that checking it does not use it up); anything else as given, to be refused."""
    if isinstance(protocols, Iterable) and not isinstance(protocols, str | bytes):
        return list(protocols)
    return protocols
