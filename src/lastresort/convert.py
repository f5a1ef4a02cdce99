"""The one cattrs converter: protocol files, scenario files, stored rows, exported JSON.

Strict: unknown keys, wrong types and malformed durations are errors, and every
problem is reported at once with its path (``$.transitions[3].to: ...``).
"""

from __future__ import annotations

import difflib
import json
import re
import reprlib
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
from cattrs import Converter
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mutable_sequence,
    is_sequence,
    list_structure_factory,
)
from cattrs.errors import (
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.strategies import configure_tagged_union

from .errors import ProtocolError, StoreError
from .events import Event
from .model import (
    ANY_STEP,
    Actor,
    Encounter,
    Fact,
    FactKind,
    FrozenMap,
    Party,
    PartyKind,
    ProtocolKind,
    Step,
    StepKind,
    Transition,
)

__all__ = [
    "StoredEvent",
    "canonical_json",
    "configure_stored_rows",
    "converter",
    "dump_event",
    "dump_row",
    "encounter_canonical_json",
    "event_canonical_json",
    "format_duration",
    "load_encounter",
    "load_event",
    "load_plain",
    "load_row",
    "parse_duration",
    "structure",
    "suggest",
]

T = TypeVar("T")

_SHORT = re.compile(
    r"^(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$",
    re.ASCII,  # no other scripts' digits
)
_ISO = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.ASCII,
)


class Invalid(ValueError):
    """A structuring failure whose message is meant for people as it stands."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 60, 60


def _show(value: Any) -> str:
    """``type value`` for messages, with long or deeply nested values shortened."""
    text = _REPR.repr(value)
    return f"{type(value).__name__} {text if len(text) <= 100 else text[:97] + '...'}"


def parse_duration(text: str) -> timedelta:
    """Parse ``45m``, ``2h``, ``10d``, ``1h30m``, ``2w`` or ISO 8601 (``PT45M``, ``P10D``).

    :raises ValueError: for anything else (negative and empty durations included).
    """
    if not isinstance(text, str):
        raise Invalid(f"expected a duration string such as '45m', got {_show(text)}")
    raw = text.strip()
    match = _SHORT.match(raw) or _ISO.match(raw.upper())
    if not raw or raw in {"P", "PT"} or match is None or not any(match.groupdict().values()):
        raise Invalid(
            f"invalid duration {_REPR.repr(text)}; use e.g. '45m', '2h', '10d', '1h30m'"
            " or ISO 8601 'PT45M'"
        )
    parts = match.groupdict()
    # seconds are read exactly (no float), so that format_duration(parse_duration(x)) is exact
    whole, _, fraction = (parts["s"] or "0").partition(".")
    if fraction[6:].strip("0"):
        raise Invalid(f"duration {text!r} is finer than a microsecond")
    try:
        return timedelta(
            weeks=int(parts["w"] or 0),
            days=int(parts["d"] or 0),
            hours=int(parts["h"] or 0),
            minutes=int(parts["m"] or 0),
            seconds=int(whole),
            microseconds=int(fraction[:6].ljust(6, "0")),
        )
    except (OverflowError, ValueError):  # beyond timedelta's range, or absurdly many digits
        raise Invalid(f"duration {_REPR.repr(text)} is too long") from None


def format_duration(delta: timedelta) -> str:
    """The compact form of a duration (``1h30m``, ``10d``); inverse of :func:`parse_duration`.

    Durations with a fraction of a second use ISO 8601 (``PT1M0.5S``).

    :raises ValueError: for a negative duration.
    """
    if delta < timedelta(0):
        raise ValueError(f"negative duration {delta}")
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if delta.microseconds:
        fraction = f"{delta.microseconds:06d}".rstrip("0")
        days = f"{delta.days}D" if delta.days else ""
        clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M")) if n)
        return f"P{days}T{clock}{seconds}.{fraction}S"
    units = ((delta.days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
    return "".join(f"{n}{u}" for n, u in units if n) or "0s"


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: attribute name -> the key it has in files
_RENAMES = {"sources": "from", "target": "to"}


def _strict(kind: type[T], label: str) -> Callable[[Any, Any], T]:
    def hook(value: Any, _: Any) -> T:
        # bool is an int subclass: never accept True for a number or a number for a bool
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise Invalid(f"expected {label}, got {_show(value)}")
        return value

    return hook


def _enum_hook(kind: type[Enum], what: str) -> Callable[[Any, Any], Enum]:
    choices = [str(member.value) for member in kind]

    def hook(value: Any, _: Any) -> Enum:
        if isinstance(value, str):
            for member in kind:
                if member.value == value:
                    return member
        if not isinstance(value, str):
            raise Invalid(f"expected a {what} ({', '.join(choices)}), got {_show(value)}")
        raise Invalid(
            f"unknown {what} {value!r}{suggest(value, choices)}; one of {', '.join(choices)}"
        )

    return hook


def _names(value: Any, _: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise Invalid(f"expected a name or a list of names, got {_show(value)}")


def _fact(value: Any, _: Any) -> Fact:
    if value == "bool":
        return Fact(FactKind.BOOL)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        if len(set(value)) != len(value):
            raise Invalid(f"duplicate values in {_REPR.repr(value)}")
        return Fact(FactKind.ENUM, tuple(value))
    raise Invalid(f'expected "bool" or a non-empty list of allowed values, got {_show(value)}')


def _unfact(fact: Fact) -> Any:
    return "bool" if fact.kind is FactKind.BOOL else list(fact.values)


def _fact_value(value: Any, _: Any) -> str | bool:
    if isinstance(value, str | bool):
        return value
    raise Invalid(f"expected a string or a boolean, got {_show(value)}")


def _datetime(value: Any, _: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(f"invalid date-time {value!r}; use ISO 8601") from None
    else:
        raise Invalid(f"expected an ISO 8601 date-time, got {_show(value)}")
    if parsed.tzinfo is None:
        raise Invalid(f"date-time {value!r} has no time zone")
    return parsed


def _structure_timedelta(value: Any, _: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


def _is_homogeneous_sequence(kind: Any) -> bool:
    if not is_sequence(kind):
        return False
    args = get_args(kind)
    return (get_origin(kind) or kind) is not tuple or (len(args) == 2 and args[1] is Ellipsis)


def _strict_sequence(kind: Any, conv: Converter) -> Callable[[Any, Any], Any]:
    """cattrs would take a string or a table as a list of its characters or keys;
    lastresort wants an actual list."""
    base = (
        list_structure_factory(kind, conv)
        if is_mutable_sequence(kind)
        else homogenous_tuple_structure_factory(kind, conv)
    )

    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise Invalid(f"expected a list, got {_show(value)}")
        return base(value, kind)

    return hook


def _unsources(sources: tuple[str, ...]) -> str | list[str]:
    # ``from = "*"`` is how files say "every non-terminal step"; keep it that way
    return ANY_STEP if sources == (ANY_STEP,) else list(sources)


def make_converter() -> Converter:
    """Build the converter; :data:`converter` is the one instance everything uses."""
    conv = Converter(forbid_extra_keys=True, omit_if_default=True)
    configure_converter(conv)
    return conv


def configure_converter(conv: Converter) -> None:
    """Register lastresort's hooks on ``conv``."""
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook(int, _strict(int, "a whole number"))
    conv.register_structure_hook(float, lambda v, _: float(_strict((int, float), "a number")(v, _)))  # type: ignore[arg-type]
    conv.register_structure_hook(timedelta, _structure_timedelta)
    conv.register_unstructure_hook(timedelta, format_duration)
    conv.register_structure_hook(datetime, _datetime)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(str | bool, _fact_value)
    conv.register_structure_hook_factory(
        _is_homogeneous_sequence, lambda kind: _strict_sequence(kind, conv)
    )
    for enum_type, what in (
        (PartyKind, "party kind"),
        (StepKind, "step kind"),
        (ProtocolKind, "protocol kind"),
        (FactKind, "fact kind"),
    ):
        conv.register_structure_hook(enum_type, _enum_hook(enum_type, what))
    conv.register_structure_hook(Fact, _fact)
    conv.register_unstructure_hook(Fact, _unfact)
    conv.register_unstructure_hook(
        FrozenMap, lambda m: {k: conv.unstructure(v) for k, v in m.items()}
    )
    conv.register_structure_hook(
        Party, make_dict_structure_fn(Party, conv, key=override(omit=True))
    )
    conv.register_unstructure_hook(
        Party,
        make_dict_unstructure_fn(
            Party, conv, _cattrs_omit_if_default=True, key=override(omit=True)
        ),
    )
    conv.register_structure_hook(
        Step,
        make_dict_structure_fn(
            Step, conv, key=override(omit=True), tags=override(struct_hook=_names)
        ),
    )
    conv.register_unstructure_hook(
        Step,
        make_dict_unstructure_fn(
            Step,
            conv,
            _cattrs_omit_if_default=True,
            key=override(omit=True),
            tags=override(unstruct_hook=list),
        ),
    )
    names = override(struct_hook=_names)
    conv.register_structure_hook(
        Transition,
        make_dict_structure_fn(
            Transition,
            conv,
            sources=override(rename="from", struct_hook=_names),
            target=override(rename="to"),
            by=names,
            notify=names,
        ),
    )
    as_list = override(unstruct_hook=list)
    conv.register_unstructure_hook(
        Transition,
        make_dict_unstructure_fn(
            Transition,
            conv,
            _cattrs_omit_if_default=True,
            sources=override(rename="from", unstruct_hook=_unsources),
            target=override(rename="to"),
            by=as_list,
            notify=as_list,
        ),
    )


converter: Converter = make_converter()
"""The one converter. Use :func:`structure` for located errors."""


# -- errors with paths ------------------------------------------------------------


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _key_path(path: str, key: object) -> str:
    if isinstance(key, str) and _IDENT.match(key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


def _allowed_keys(cls: type) -> list[str]:
    if not attrs.has(cls):
        return []
    return [
        _RENAMES.get(a.name, a.name) if cls is Transition else a.name
        for a in attrs.fields(cls)
        if a.name != "key"
    ]


def _expects_table(expected: Any) -> bool:
    origin = get_origin(expected) or expected
    return attrs.has(origin) or (isinstance(origin, type) and issubclass(origin, Mapping))


def _message(exc: BaseException, expected: Any) -> str:
    if isinstance(exc, Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, TypeError | AttributeError) and _expects_table(expected):
        return "expected a table (mapping)"
    if isinstance(exc, AttributeError) and ("items" in str(exc) or "keys" in str(exc)):
        return "expected a table (mapping)"
    if isinstance(exc, TypeError) and "not iterable" in str(exc):
        return "expected a list"
    name = getattr(expected, "__name__", None) or (repr(expected) if expected else "")
    if isinstance(exc, TypeError | ValueError):
        return f"invalid value, expected {name}" if name else f"invalid value ({exc})"
    return f"unexpected error {type(exc).__name__}: {exc}"


def problems_of(exc: BaseException, path: str = "$") -> list[str]:
    """Turn a (nested) cattrs validation error into ``"<path>: <problem>"`` lines."""
    out: list[str] = []
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = _allowed_keys(exc.cl)
        for key in sorted(exc.extra_fields):
            out.append(f"{_key_path(path, key)}: unknown key {key!r}{suggest(key, allowed)}")
        return out
    if isinstance(exc, IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            index = note.index
            sub_path = f"{path}[{index}]" if isinstance(index, int) else _key_path(path, index)
            out.extend(_leaf(sub, sub_path, note.type))
        for sub in without:
            out.extend(_leaf(sub, path, None))
        return out
    if isinstance(exc, ClassValidationError):
        with_notes_c, without_c = exc.group_exceptions()
        for sub, cnote in with_notes_c:
            out.extend(_leaf(sub, f"{path}.{_RENAMES.get(cnote.name, cnote.name)}", cnote.type))
        for sub in without_c:
            out.extend(_leaf(sub, path, None))
        return out
    return _leaf(exc, path, None)


def _leaf(exc: BaseException, path: str, expected: Any) -> list[str]:
    if isinstance(exc, BaseValidationError | ForbiddenExtraKeysError):
        return problems_of(exc, path)
    # A missing attribute arrives as KeyError('name') located at the class: point at the key
    if isinstance(exc, KeyError) and path.rsplit(".", 1)[-1] in {str(a) for a in exc.args}:
        return [f"{path}: required key missing"]
    return [f"{path}: {_message(exc, expected)}"]


def structure(data: Any, cls: type[T], path: str = "$") -> T:
    """Structure ``data`` into ``cls`` with the one converter.

    :raises ProtocolError: listing every problem with its path.
    """
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        raise ProtocolError(problems_of(exc, path)) from exc


# -- stored rows: events, encounters, notifications, deadlines -------------------------


def _event_classes() -> tuple[type[Event], ...]:
    """Every concrete event class of :mod:`lastresort.events`, in its ``__all__`` order."""
    from . import events

    found = []
    for name in events.__all__:
        cls = getattr(events, name)
        if isinstance(cls, type) and issubclass(cls, Event) and cls is not Event:
            found.append(cls)
    return tuple(found)


#: The union of every event class; stored and exported tagged by class name (``kind``).
StoredEvent: Any = Union.__getitem__(_event_classes())


def configure_stored_rows(conv: Converter) -> None:
    """Register on ``conv`` how events are stored: tagged with their class name."""
    configure_tagged_union(StoredEvent, conv, tag_generator=_kind, tag_name="kind")


def _kind(cls: type) -> str:
    return cls.__name__


configure_stored_rows(converter)


def canonical_json(data: Any) -> str:
    """The one canonical JSON text of ``data``: sorted keys, no spaces, UTF-8 text.

    What the audit trail hashes, so it never changes for the same data.
    """
    return _CANONICAL.encode(data)


# one encoder, built once: json.dumps with options builds a new one on every call
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def dump_event(event: Event) -> dict[str, Any]:
    """An event as data: its fields, tagged with its class name under ``kind``
    (``seq`` is left out while it is ``0``)."""
    data: dict[str, Any] = converter.unstructure(event, StoredEvent)
    return data


def load_event(data: Mapping[str, Any]) -> Event:
    """The event that :func:`dump_event` gave ``data`` for.

    :raises StoreError: naming every problem with its path (an unknown ``kind``
        included).
    """
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind not in _KINDS:
        known = ", ".join(sorted(_KINDS))
        raise StoreError(f"$.kind: unknown event kind {kind!r}; one of {known}")
    try:
        event: Event = converter.structure(dict(data), StoredEvent)
    except Exception as exc:
        raise StoreError("; ".join(problems_of(exc))) from exc
    return event


_KINDS = frozenset(cls.__name__ for cls in _event_classes())


def dump_row(value: Any) -> dict[str, Any]:
    """A stored value (:class:`Encounter`, :class:`Notification`,
    :class:`PendingDeadline`) as data, for a row or for export."""
    data: dict[str, Any] = converter.unstructure(value)
    return data


def load_row(data: Mapping[str, Any], cls: type[T]) -> T:
    """``data`` read from a stored row, structured into ``cls`` by the one converter.

    :raises StoreError: naming every problem with its path.
    """
    try:
        return converter.structure(dict(data), cls)
    except Exception as exc:
        raise StoreError("; ".join(problems_of(exc))) from exc


# -- fast row codecs ----------------------------------------------------------------
#
# A durable fire encodes a few events and one snapshot and decodes one encounter and
# its deadlines. Through the converter each costs more than its SQL does, so these
# codecs give what the converter gives, directly, for values whose fields are plain
# (strings, whole numbers, booleans, None, aware datetimes, actors), and hand
# anything else to the converter. Tests compare them with the converter on
# generated values.

_escape = json.encoder.encode_basestring  # what canonical_json uses (ensure_ascii=False)


class _NotPlain(Exception):
    """A value the fast codecs leave to the converter."""


_PLAIN = frozenset({str, int, bool, type(None)})


def _json_plain(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _escape(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    raise _NotPlain


def _json_time(value: Any) -> str:
    global _last_time
    last = _last_time
    if value is last[0]:  # the events of one step share their time: write it once
        return last[1]
    if type(value) is datetime:
        text = f'"{value.isoformat()}"'  # digits, '-', ':', '+', 'T', '.': nothing to escape
        _last_time = (value, text)  # datetimes are immutable; the pair keeps it alive
        return text
    if value is None:
        return "null"
    raise _NotPlain


_last_time: tuple[object, str] = (object(), "")


def _json_actor(value: Any) -> str:
    global _last_actor
    last = _last_actor
    if value is last[0]:  # one actor causes all the events of a step
        return last[1]
    if type(value) is not Actor:
        raise _NotPlain
    role = _json_plain(value.role)
    if value.id is None:  # the converter omits the default
        text = f'{{"role":{role}}}'
    else:
        text = f'{{"id":{_json_plain(value.id)},"role":{role}}}'
    _last_actor = (value, text)  # actors are frozen; the pair keeps it alive
    return text


_last_actor: tuple[object, str] = (object(), "")


def _encoder_of(kind: Any) -> Callable[[Any], str] | None:
    """How the converter writes a field of type ``kind``, when it writes it as it is
    (plain values), as ISO 8601 text (datetimes) or as an actor's table."""
    options = set(get_args(kind)) if get_origin(kind) in (Union, UnionType) else {kind}
    if options <= _PLAIN:
        return _json_plain
    if options - {type(None)} == {datetime}:
        return _json_time
    if options == {Actor}:
        return _json_actor
    return None


#: the expression the generated writers use for each kind of field (``{v}``, its value):
#: the common case inline, anything else through the function
_WRITE: dict[Callable[[Any], str], str] = {
    _json_plain: "(_escape({v}) if {v}.__class__ is str else _plain({v}))",
    _json_time: "_time({v})",
    _json_actor: "_actor({v})",
}


def _not_plain(value: Any) -> str:
    raise _NotPlain


class _CanonicalFields:
    """``canonical_json(converter.unstructure(value))`` of one attrs class, without
    the intermediate dict: one generated function that writes its fields in key
    order; ``ok`` is false for a class with a field it cannot write (then the
    converter must)."""

    def __init__(self, cls: type, skip: frozenset[str], tag: str | None) -> None:
        try:
            hints = typing.get_type_hints(cls)
        except NameError:  # an annotation that does not resolve: leave it to the converter
            hints = {}
        self.ok = True
        self.write: Callable[[Any], str] = _not_plain
        names: dict[str, Any] = {
            "_escape": _escape,
            "_plain": _json_plain,
            "_time": _json_time,
            "_actor": _json_actor,
            "_datetime": datetime,
        }
        # key -> the expression of ``,"key":value`` (empty when the field is omitted)
        parts: dict[str, str] = {}
        for index, attribute in enumerate(attrs.fields(cls)):
            if attribute.name in skip:
                continue
            encode = _encoder_of(hints.get(attribute.name))
            default = attribute.default
            if encode is None or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                self.ok = False
                break
            value = f"value.{attribute.name}"
            part = f"{',' + _escape(attribute.name) + ':'!r} + {_WRITE[encode].format(v=value)}"
            if default is not attrs.NOTHING:  # the converter omits a field at its default
                names[f"_default{index}"] = default
                part = f"({part} if {value} != _default{index} else '')"
            parts[attribute.name] = part
        if tag is not None:
            parts["kind"] = repr("," + _escape("kind") + ":" + _escape(tag))
        text = " + ".join(parts[key] for key in sorted(parts)) or "''"  # sorted keys
        if self.ok:
            # one expression: ",k1:v1,k2:v2" without its first comma, in braces
            exec(f"def write(value):\n    return '{{' + ({text})[1:] + '}}'", names)
            self.write = names["write"]


_CANONICAL_FIELDS: dict[tuple[type, str], _CanonicalFields] = {}


def _canonical_fields(cls: type, skip: str, tagged: bool) -> _CanonicalFields:
    found = _CANONICAL_FIELDS.get((cls, skip))
    if found is None:
        found = _CanonicalFields(cls, frozenset({skip}), cls.__name__ if tagged else None)
        _CANONICAL_FIELDS[(cls, skip)] = found
    return found


def event_canonical_json(event: Event) -> str:
    """``canonical_json`` of :func:`dump_event` without ``seq``: the text the audit
    trail stores and hashes for an event."""
    fields = _canonical_fields(type(event), "seq", True)
    if fields.ok:
        try:
            return fields.write(event)
        except _NotPlain:
            pass
    data = dump_event(event)
    data.pop("seq", None)
    return canonical_json(data)


def encounter_canonical_json(encounter: Encounter) -> tuple[str, str]:
    """``canonical_json`` of :func:`dump_row` of an encounter: of its facts, and of
    the rest (what the audit trail calls its snapshot)."""
    fields = _canonical_fields(type(encounter), "facts", False)
    if fields.ok:
        try:
            facts = encounter.facts
            return (
                "{"
                + ",".join(f"{_escape(k)}:{_json_plain(facts[k])}" for k in sorted(facts))
                + "}",
                fields.write(encounter),
            )
        except (_NotPlain, TypeError):  # TypeError: a key that is not a string
            pass
    data = dump_row(encounter)
    return canonical_json(data.pop("facts", {})), canonical_json(data)


def _when(value: Any) -> datetime:
    if type(value) is not str:
        raise _NotPlain
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise _NotPlain
    return moment


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _NotPlain
    return value


def load_encounter(row: Sequence[Any]) -> Encounter:
    """The encounter of a stored row ``(id, protocol, protocol_version, state,
    responsible, facts, version, opened_at, closed_at, channel)``, ``facts`` as
    stored (its canonical JSON text; ``None`` once purged): what :func:`load_row`
    gives for it.

    :raises StoreError: naming every problem with its path.
    :raises ValueError: when the facts are not JSON.
    """
    (
        ident,
        protocol,
        protocol_version,
        state,
        responsible,
        text,
        version,
        opened,
        closed,
        channel,
    ) = row
    try:
        known = text is None or text in _FACTS_READ
        facts: Any = {} if text is None else _FACTS_READ.get(text)
        if facts is None:
            facts = json.loads(text)
            if type(facts) is not dict:
                raise _NotPlain
            for key, value in facts.items():
                if type(key) is not str or type(value) not in (str, bool):
                    raise _NotPlain
        if type(version) is not int:
            raise _NotPlain
        encounter = Encounter(
            id=_text(ident),
            protocol=_text(protocol),
            protocol_version=_text(protocol_version),
            state=_text(state),
            responsible=None if responsible is None else _text(responsible),
            facts=facts,
            version=version,
            opened_at=_when(opened),
            closed_at=None if closed is None else _when(closed),
            channel=_text(channel),
        )
    except (_NotPlain, ValueError):  # let the converter say what is wrong, with its path
        data = {} if text is None else json.loads(text)
        names = attrs.fields_dict(Encounter)
        values = (*row[:5], data, *row[6:])
        return load_row(dict(zip(names, values, strict=True)), Encounter)
    if not known and len(_FACTS_READ) < 4096:  # bounded: one entry per distinct set of facts
        _FACTS_READ[text] = encounter.facts
    return encounter


#: stored facts text -> the (frozen, shared) facts it reads as
_FACTS_READ: dict[str, Mapping[str, str | bool]] = {}


def load_plain(cls: type[T], row: Sequence[Any]) -> T:
    """A value of ``cls`` whose fields are strings and aware datetimes only (such as a
    pending deadline), from its stored row in field order: what :func:`load_row`
    gives for it.

    :raises StoreError: naming every problem with its path.
    """
    decoders = _PLAIN_DECODERS.get(cls)
    if decoders is None:
        hints = typing.get_type_hints(cls)
        decoders = tuple(
            (
                a.name,
                _when if hints[a.name] is datetime else _text if hints[a.name] is str else None,
            )
            for a in attrs.fields(typing.cast(Any, cls))
        )
        _PLAIN_DECODERS[cls] = decoders
    try:
        if len(row) != len(decoders):
            raise _NotPlain
        values = {}
        for (name, decode), value in zip(decoders, row, strict=True):
            if decode is None:
                raise _NotPlain
            values[name] = decode(value)
        return cls(**values)
    except (_NotPlain, ValueError):
        return load_row(dict(zip((n for n, _ in decoders), row, strict=False)), cls)


_PLAIN_DECODERS: dict[type, tuple[tuple[str, Callable[[Any], Any] | None], ...]] = {}
