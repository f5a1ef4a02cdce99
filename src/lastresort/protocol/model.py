"""Frozen domain values: the protocol as pure data, and the encounter it runs.

Nothing here executes a protocol: the machine (``engine/dispatch.py``) compiles it and
the engine (``engine/engine.py``) runs it. Every value is frozen and slotted; change one with
:func:`attrs.evolve`.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from attrs import evolve, field, frozen

from ..errors import ActorRefused
from ..privacy import DEFAULT_CHANNELS, actor_id_problem, role_problem

__all__ = [
    "ACUTE_DANGER",
    "CLOCK",
    "DEFAULT_TIMEZONE",
    "Actor",
    "Deadline",
    "DeadlineDate",
    "Encounter",
    "Fact",
    "FactKind",
    "FrozenMap",
    "MayorPromise",
    "Party",
    "PartyKind",
    "Protocol",
    "ProtocolKind",
    "Requirements",
    "ResponseModel",
    "Step",
    "StepKind",
    "Text",
    "Transition",
    "WorkingDays",
]

#: The reserved event that leads from every non-terminal step to an emergency step.
ACUTE_DANGER = "acute_danger"
#: The pseudo-role that fires deadline events.
CLOCK = "clock"
#: The time zone of a protocol whose file names none (``[protocol] timezone``).
DEFAULT_TIMEZONE = "Europe/Amsterdam"
#: ``from = "*"``: every non-terminal step.
ANY_STEP = "*"

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """An immutable, hashable, picklable mapping that keeps insertion order.

    Used for every mapping inside a domain value, so that plugins receive values
    they cannot mutate.
    """

    __slots__ = ("__weakref__", "_data", "_hash")

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(data)
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (self._data,))


def _tuple(items: Iterable[str]) -> tuple[str, ...]:
    if isinstance(items, str):
        return (items,)
    return tuple(items)


class PartyKind(enum.Enum):
    """What kind of adult a party is; the verifier's rules depend on it."""

    MUNICIPAL_STAFF = "municipal_staff"
    EXPERT = "expert"
    MAYOR = "mayor"
    EMERGENCY = "emergency"
    ESCALATION = "escalation"


class StepKind(enum.Enum):
    """``active``: the responsible party acts; ``waiting``: it waits on another
    party (needs a deadline); ``terminal``: the encounter is closed."""

    ACTIVE = "active"
    WAITING = "waiting"
    TERMINAL = "terminal"


class ProtocolKind(enum.Enum):
    """An ``encounter`` is a child at the counter; an ``order`` is a measure such
    as a huisverbod (temporary restraining order) that runs for days."""

    ENCOUNTER = "encounter"
    ORDER = "order"


class MayorPromise(enum.Enum):
    """What an encounter protocol promises about the mayor (``[requirements] mayor``).

    ``informed``: the mayor's office is always told (the mayor carries responsibility);
    the expert decides whether and when the mayor meets the child (Taskforce letter of
    27 January 2014). ``met``: the mayor speaks to the child on every closing path.
    """

    INFORMED = "informed"
    MET = "met"


class FactKind(enum.Enum):
    """``enum``: one of the declared values; ``bool``: true or false."""

    ENUM = "enum"
    BOOL = "bool"


#: A language tag of a text's key: ``nl``, ``en``, ``fy``, ``pl``, ``pt-BR`` (BCP 47's
#: language, optionally with a region or script).
LANGUAGE_TAG = r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$"


def _more_texts(items: Mapping[str, str]) -> Mapping[str, str]:
    return items if isinstance(items, FrozenMap) else FrozenMap(items)


@frozen
class Text:
    """A text shown to people, in Dutch (``nl``) and English (``en``), and in any further
    language a municipality adds (file keys such as ``fy`` or ``pl``; no code change).

    :param more: the texts in further languages, by language tag.
    """

    nl: str
    en: str
    more: Mapping[str, str] = field(factory=FrozenMap, converter=_more_texts, kw_only=True)

    def get(self, lang: str) -> str:
        """The text in ``lang``; English when the text has none in ``lang``."""
        if lang == "nl":
            return self.nl
        if lang == "en":
            return self.en
        return self.more.get(lang, self.en)

    def has(self, lang: str) -> bool:
        """Whether the text is written in ``lang`` (not a fallback)."""
        return lang in ("nl", "en") or lang in self.more

    def languages(self) -> tuple[str, ...]:
        """``nl``, ``en`` and the further languages, in that order."""
        return ("nl", "en", *self.more)


@frozen
class ResponseModel:
    """How fast a party responds (simulation model): median and 90th percentile.

    :param example: the figures are an example value a municipality sets for itself
        (file key ``example = true``), not a measured or agreed one.
    """

    median: timedelta
    p90: timedelta
    example: bool = False


@frozen
class Party:
    """A role (not a person) that can hold responsibility or fire events.

    :param key: the role key, e.g. ``counter`` (filled from the protocol's table key).
    :param name: bilingual display name.
    :param kind: what kind of adult this is.
    :param hours: availability, ``always`` or e.g. ``mon-fri 08:00-18:00``.
    :param response: response-time model for simulation, if known.
    """

    name: Text
    kind: PartyKind
    hours: str = "always"
    response: ResponseModel | None = None
    no_show: float = 0.0
    capacity: int | None = None
    key: str = ""


class DeadlineDate(enum.Enum):
    """Where a dated deadline's moment comes from (file key ``until``).

    ``chosen``: the caller gives it when firing the transition into the step
    (``Engine.fire(..., until=moment)``), as a decision such as a huisverbod's
    extension date; ``kept``: the deadline pending in the step the encounter leaves
    keeps its moment (an order suspended still ends when it would have ended).
    """

    CHOSEN = "chosen"
    KEPT = "kept"


@frozen
class WorkingDays:
    """A duration of whole working days (file form ``"2wd"``), counted in the
    protocol's time zone on its working-day calendar (Monday to Friday, less Dutch
    public holidays and the closing days plugins name): ``n`` working days after a
    moment on a working day is the same wall-clock time on the ``n``-th working day
    after it; from a moment on a day that is not a working day, counting starts at
    00:00 of the next working day. See docs/protocol-format.md, "Working days".
    """

    count: int

    def __str__(self) -> str:
        return f"{self.count}wd"


@frozen
class Deadline:
    """When the encounter is still in the step at the deadline, the clock fires ``event``.

    Plain (``{ after, event }``): due ``after`` entering the step. With ``since``
    (file key ``from``, a step key) the deadline counts from the moment the encounter
    last entered that step instead: due ``after`` that entry. With ``until`` the moment
    is :class:`DeadlineDate` ``chosen`` or ``kept``, and ``after`` (counted from
    ``since``) is the latest it may be. In every form ``after`` is the longest the
    step can last from entering it, which is what the verifier's bounds count.

    ``after`` is a duration of elapsed time (:class:`~datetime.timedelta`) or of
    :class:`WorkingDays`.

    :param example: ``after`` is an example value a municipality sets for itself (file
        key ``example = true``); the card labels it so.
    """

    after: timedelta | WorkingDays
    event: str
    example: bool = field(default=False, kw_only=True)
    until: DeadlineDate | None = field(default=None, kw_only=True)
    since: str | None = field(default=None, kw_only=True)


@frozen
class Step:
    """One step of a protocol.

    :param responsible: the party responsible for the child in this step (terminal
        steps may have none).
    :param kind: active, waiting or terminal.
    :param deadline: optional deadline fired by the clock.
    :param tags: markers the verifier and simulator read, e.g. ``emergency``,
        ``child_with_expert``, ``mayor_involved``, ``reported``, ``safe_arrangement``.
    :param instructions: bilingual instructions for the responsible party.
    :param label: a short bilingual name of the step, shown on cards, pages and
        diagrams instead of its key (e.g. `Wachten op de deskundige`).
    """

    kind: StepKind
    instructions: Text
    responsible: str | None = None
    deadline: Deadline | None = None
    tags: tuple[str, ...] = field(default=(), converter=_tuple)
    key: str = ""
    label: Text | None = field(default=None, kw_only=True)

    def title(self, lang: str) -> str:
        """The step's label in ``lang``, or its key when it has no label."""
        return self.label.get(lang) if self.label is not None else self.key

    @property
    def terminal(self) -> bool:
        """Whether the encounter is closed in this step."""
        return self.kind is StepKind.TERMINAL


@frozen
class Transition:
    """A move from ``sources`` to ``target`` on ``event``.

    :param sources: step keys, or ``("*",)`` for every non-terminal step
        (file key ``from``).
    :param target: the step entered (file key ``to``).
    :param by: roles that may fire it; ``clock`` for deadline events.
    :param notify: parties told when it happens (through the outbox).
    :param guard: optional named condition answered by the ``lastresort_guard`` hook.
    :param label: a short bilingual name of the event (e.g. `Deskundige neemt over`),
        shown instead of the event's name; transitions of one event share it (give it
        on one of them, or the same on each).
    """

    event: str
    sources: tuple[str, ...] = field(converter=_tuple)
    target: str
    by: tuple[str, ...] = field(converter=_tuple)
    notify: tuple[str, ...] = field(default=(), converter=_tuple)
    guard: str | None = None
    label: Text | None = field(default=None, kw_only=True)


@frozen
class Fact:
    """A fact an encounter may carry: a declared set of values, or a boolean.

    Facts are the only data about the child: no names, no BSN, no free text.
    """

    kind: FactKind
    values: tuple[str, ...] = field(default=(), converter=_tuple)

    def allows(self, value: object) -> bool:
        """Whether ``value`` is an allowed value of this fact."""
        if self.kind is FactKind.BOOL:
            return isinstance(value, bool)
        return isinstance(value, str) and value in self.values


@frozen
class Requirements:
    """What the protocol promises, checked by the verifier and the simulator.

    :param mayor: what the protocol promises about the mayor: ``informed`` (every
        closing path informs a party of kind ``mayor`` or passes a step tagged
        ``mayor_involved``) or ``met`` (every closing path passes ``mayor_involved``);
        ``None``: no promise.
    :param mayor_contact: deprecated; ``true`` is read as ``mayor = "met"``
        (see :attr:`mayor_promise`).
    :param max_wait_for_expert: worst-case time until a step tagged ``child_with_expert``.
    :param max_wait_for_mayor: worst-case time until a step tagged ``mayor_involved``.
    :param report_before_close: every closing path passes ``reported`` or ``safe_arrangement``.
    :param max_order_duration: for ``kind = "order"``: the most time the order may be in
        force in total (the sum of the deadlines of steps tagged ``order_in_force``).
    :param reminders_end_wait: a reminder (a step's own deadline event leading back to
        that step) ends the wait the bounds measure: the verifier counts such a loop's
        deadline once, up to the first reminder, instead of calling the wait unbounded.
    """

    mayor_contact: bool = False
    max_wait_for_expert: timedelta | None = None
    max_wait_for_mayor: timedelta | None = None
    report_before_close: bool = True
    max_order_duration: timedelta | None = None
    mayor: MayorPromise | None = None
    reminders_end_wait: bool = False

    @property
    def mayor_promise(self) -> MayorPromise | None:
        """The promise about the mayor in force: ``mayor``, or ``met`` for the
        deprecated ``mayor_contact = true``."""
        if self.mayor is not None:
            return self.mayor
        return MayorPromise.MET if self.mayor_contact else None


def _keyed_parties(items: Mapping[str, Party]) -> Mapping[str, Party]:
    return FrozenMap((k, v if v.key == k else evolve(v, key=k)) for k, v in items.items())


def _keyed_steps(items: Mapping[str, Step]) -> Mapping[str, Step]:
    return FrozenMap((k, v if v.key == k else evolve(v, key=k)) for k, v in items.items())


def _facts(items: Mapping[str, Fact]) -> Mapping[str, Fact]:
    return items if isinstance(items, FrozenMap) else FrozenMap(items)


#: the facts of every encounter opened without facts (one shared, immutable map)
_NO_FACTS: FrozenMap[str, str | bool] = FrozenMap()


#: the fact maps of the encounters alive in this process, so that equal facts share one
#: map (thousands of open encounters hold a handful of distinct maps). The index is weak:
#: an entry dies with the last encounter holding its map, so it never keeps a child's
#: facts alive after their encounter is gone (closed and dropped, or purged).
_LIVE_FACTS: weakref.WeakValueDictionary[
    frozenset[tuple[str, type, object]], FrozenMap[str, str | bool]
] = weakref.WeakValueDictionary()


def _values(items: Mapping[str, str | bool]) -> Mapping[str, str | bool]:
    if isinstance(items, FrozenMap):
        return items
    if not items:
        return _NO_FACTS
    try:
        key = frozenset((k, type(v), v) for k, v in items.items())
    except TypeError:  # an unhashable value: not a declared fact, but keep it frozen
        return FrozenMap(items)
    found = _LIVE_FACTS.get(key)
    if found is None:
        found = FrozenMap(items)
        if len(_LIVE_FACTS) < 4096:  # bounded: facts come from callers
            _LIVE_FACTS[key] = found
    return found


def _transitions(items: Iterable[Transition]) -> tuple[Transition, ...]:
    return tuple(items)


@frozen
class Protocol:
    """A municipality's arrangement, as data.

    Build one with :func:`lastresort.load_protocol`; it is checked structurally by
    :func:`lastresort.validate` and compiled by the engine.

    :param channels: how an encounter may arrive (file key ``protocol.channels``):
        short slugs, the first is the default of :meth:`lastresort.Engine.open`;
        :data:`lastresort.privacy.DEFAULT_CHANNELS` when the file declares none.
    :param timezone: the IANA time zone working days are counted in (file key
        ``protocol.timezone``), :data:`DEFAULT_TIMEZONE` when the file names none.
    :param source: where the arrangement comes from, as written (the English text when
        the file gives ``source`` in several languages).
    :param municipality_text: the municipality in every language, when the file gives
        it as a text table (``municipality`` is then its English text).
    :param source_text: the source in every language, when the file gives it as a text
        table (``source = { nl = "...", en = "..." }``); ``None`` for a plain string.
    """

    id: str
    version: str
    municipality: str
    title: Text
    initial: str
    source: str
    parties: Mapping[str, Party] = field(converter=_keyed_parties)
    steps: Mapping[str, Step] = field(converter=_keyed_steps)
    transitions: tuple[Transition, ...] = field(converter=_transitions)
    facts: Mapping[str, Fact] = field(factory=dict, converter=_facts)
    requirements: Requirements = field(factory=Requirements)
    kind: ProtocolKind = ProtocolKind.ENCOUNTER
    channels: tuple[str, ...] = field(default=DEFAULT_CHANNELS, converter=_tuple)
    timezone: str = field(default=DEFAULT_TIMEZONE, kw_only=True)
    source_text: Text | None = field(default=None, kw_only=True)
    municipality_text: Text | None = field(default=None, kw_only=True)

    def sources_of(self, transition: Transition) -> tuple[str, ...]:
        """The step keys ``transition`` leaves from, with ``*`` expanded to every
        non-terminal step (in declaration order)."""
        if ANY_STEP in transition.sources:
            return tuple(key for key, step in self.steps.items() if not step.terminal)
        return transition.sources

    def event_label(self, event: str) -> Text | None:
        """The label of ``event``: the first one its transitions give, if any."""
        for transition in self.transitions:
            if transition.event == event and transition.label is not None:
                return transition.label
        return None

    def event_title(self, event: str, lang: str) -> str:
        """``event``'s label in ``lang``, or the event's name when it has no label."""
        label = self.event_label(event)
        return label.get(lang) if label is not None else event

    def transition_title(self, transition: Transition, lang: str) -> str:
        """``transition``'s own label in ``lang``, else its event's, else the event's name."""
        if transition.label is not None:
            return transition.label.get(lang)
        return self.event_title(transition.event, lang)

    def source_in(self, lang: str) -> str:
        """The source in ``lang``: :attr:`source_text` when the file gave the source in
        several languages, else :attr:`source` as written."""
        return self.source_text.get(lang) if self.source_text is not None else self.source

    def municipality_in(self, lang: str) -> str:
        """The municipality in ``lang`` (see :meth:`source_in`)."""
        if self.municipality_text is not None:
            return self.municipality_text.get(lang)
        return self.municipality

    def step_title(self, key: str, lang: str) -> str:
        """The label of step ``key`` in ``lang``, or ``key`` when it has none."""
        step = self.steps.get(key)
        return step.title(lang) if step is not None else key

    def closing_steps(self) -> tuple[str, ...]:
        """Terminal steps that close the encounter normally (not tagged ``emergency``)."""
        return tuple(
            key
            for key, step in self.steps.items()
            if step.terminal and "emergency" not in step.tags
        )


def _valid_role(_: Any, __: Any, value: str) -> None:
    problem = role_problem(value)
    if problem is not None:
        raise ActorRefused(problem=problem)


def _valid_id(_: Any, __: Any, value: str | None) -> None:
    if value is not None:
        problem = actor_id_problem(value)
        if problem is not None:
            raise ActorRefused(problem=problem)


@frozen
class Actor:
    """Who fires an event: a role key, and an optional pseudonymous identifier of
    the person.

    The id is recorded in the timeline, never interpreted. Both are checked when an
    actor is made (see :mod:`lastresort.privacy`): the role is 1 to 64 letters,
    digits, ``_`` or ``-``; the id 1 to 64 letters, digits, ``.``, ``_``, ``:`` or
    ``-`` starting with a letter or digit, and not a citizen service number. So no
    name, BSN or free text can enter the timeline through an actor.

    :raises ActorRefused: when the role or the id has not that form.
    """

    role: str = field(validator=_valid_role)
    id: str | None = field(default=None, validator=_valid_id)

    @classmethod
    def of(cls, actor: Actor | str) -> Actor:
        """Accept a role key or an :class:`Actor`. Role keys map to one shared
        :class:`Actor` each (they are frozen), so timelines do not repeat them.

        :raises ActorRefused: when ``actor`` is neither an :class:`Actor` nor a role key.
        """
        if isinstance(actor, Actor):
            return actor
        found = _ROLES.get(actor) if isinstance(actor, str) else None
        if found is None:
            found = cls(actor)
            if len(_ROLES) < 4096:  # role keys come from callers: keep the cache bounded
                _ROLES[actor] = found
        return found


_ROLES: dict[str, Actor] = {}


@frozen
class Encounter:
    """One child's encounter with the protocol: a small frozen record.

    :param facts: only declared facts (no names, no BSN, no free text).
    :param version: increases by one with every committed change.
    """

    id: str
    protocol: str
    protocol_version: str
    state: str
    responsible: str | None
    facts: Mapping[str, str | bool] = field(converter=_values)
    version: int
    opened_at: datetime
    closed_at: datetime | None = None
    channel: str = "counter"

    @property
    def closed(self) -> bool:
        """Whether the encounter has reached a terminal step."""
        return self.closed_at is not None
