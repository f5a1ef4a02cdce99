"""Fast row codecs for the durable store and the audit trail.

A durable fire encodes a few events and one snapshot and decodes one encounter and
its deadlines. Through the converter each costs more than its SQL does, so these
codecs give what the converter gives, directly, for values whose fields are plain
(strings, whole numbers, booleans, None, aware datetimes, actors), and hand
anything else to the converter. Tests compare them with the converter on
generated values.

The store's converter (:data:`converter`, built on the protocol converter of
:mod:`lastresort.protocol.conversion` with the stored-event hooks added here) is the
reference; these codecs fall back to it.
"""

from __future__ import annotations

import itertools
import json
import linecache
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
from cattrs import Converter
from cattrs.strategies import configure_tagged_union

from ..errors import StoreError
from ..events import Event
from ..protocol.conversion import make_converter as make_protocol_converter
from ..protocol.conversion import problems_of
from ..protocol.model import _NO_FACTS, Actor, Encounter, FrozenMap

__all__ = [
    "StoredEvent",
    "canonical_json",
    "converter",
    "dump_event",
    "dump_row",
    "encounter_canonical_json",
    "event_canonical_json",
    "load_encounter",
    "load_event",
    "load_plain",
    "load_row",
    "make_converter",
]

T = TypeVar("T")


# -- the store's converter: events, encounters, notifications, deadlines as rows ------


def _event_classes() -> tuple[type[Event], ...]:
    """Every concrete event class of :mod:`lastresort.events`, in its ``__all__`` order."""
    from .. import events

    found = []
    for name in events.__all__:
        cls = getattr(events, name)
        if isinstance(cls, type) and issubclass(cls, Event) and cls is not Event:
            found.append(cls)
    return tuple(found)


#: The union of every event class; stored and exported tagged by class name (``kind``).
StoredEvent: Any = Union.__getitem__(_event_classes())


def _kind(cls: type) -> str:
    return cls.__name__


def make_converter() -> Converter:
    """The store's converter: the protocol converter's hooks, and events stored tagged
    with their class name (``kind``)."""
    conv = make_protocol_converter()
    configure_tagged_union(StoredEvent, conv, tag_generator=_kind, tag_name="kind")
    return conv


converter: Converter = make_converter()
"""The store's converter: rows, exported events, the audit trail's JSON."""


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
        raise StoreError(problem=f"$.kind: unknown event kind {kind!r}; one of {known}")
    try:
        event: Event = converter.structure(dict(data), StoredEvent)
    except Exception as exc:
        raise StoreError(problem="; ".join(problems_of(exc))) from exc
    return event


_KINDS = frozenset(cls.__name__ for cls in _event_classes())


def dump_row(value: Any) -> dict[str, Any]:
    """A stored value (:class:`Encounter`, :class:`Notification`,
    :class:`PendingDeadline`) as data, for a row or for export."""
    data: dict[str, Any] = converter.unstructure(value)
    return data


def load_row(data: Mapping[str, Any], cls: type[T]) -> T:
    """``data`` read from a stored row, structured into ``cls`` by the store's converter.

    :raises StoreError: naming every problem with its path.
    """
    try:
        return converter.structure(dict(data), cls)
    except Exception as exc:
        raise StoreError(problem="; ".join(problems_of(exc))) from exc


_escape = json.encoder.encode_basestring  # what canonical_json uses (ensure_ascii=False)


_GENERATED = itertools.count(1)


def generated(source: str, name: str, what: str, names: dict[str, Any]) -> Any:
    """The function ``name`` defined by ``source`` (generated code), run with the
    globals ``names``. Its source is registered in :mod:`linecache` under a file
    name of its own (``<lastresort generated N: what>``), so that tracebacks,
    ``inspect.getsource``, pdb and coverage show the generated lines."""
    filename = f"<lastresort generated {next(_GENERATED)}: {what}>"
    code = compile(source, filename, "exec")
    # (size, mtime None: linecache.checkcache keeps it, lines, name): what attrs does
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, names)
    return names[name]


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
            source = f"def write(value):\n    return '{{' + ({text})[1:] + '}}'\n"
            where = f"canonical writer of {cls.__module__}.{cls.__qualname__}"
            self.write = generated(source, "write", where, names)


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
        # no cache of facts texts: the facts of an encounter must not outlive it (purge)
        facts: Any = {} if text is None else json.loads(text)
        if type(facts) is not dict:
            raise _NotPlain
        for key, value in facts.items():
            if type(key) is not str or type(value) not in (str, bool):
                raise _NotPlain
        # frozen here, so the encounter does not look it up in the model's index of
        # live fact maps (a decoded encounter is short-lived)
        facts = FrozenMap(facts) if facts else _NO_FACTS
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
    return encounter


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
