"""Public JSON of the values an embedder exchanges: :class:`~lastresort.Encounter`,
every :class:`~lastresort.Event` (tagged with its class name under ``kind``),
:class:`~lastresort.Notification`, :class:`~lastresort.PendingDeadline` and
:class:`~lastresort.Refusal`.

One converter, the store's (so stored rows, exported events and this JSON agree),
copied with nothing left out: where a stored row omits a field at its default, the
public JSON always carries every field, ``null`` included, so a client in any
language reads one fixed shape. Times are ISO 8601 with their offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from cattrs import Converter
from cattrs.strategies import configure_tagged_union

from ..errors import InvalidArgument
from ..events import Event
from ..protocol.conversion import problems_of
from .row_codecs import _KINDS, StoredEvent, _kind, make_converter

__all__ = ["from_json", "to_json"]

T = TypeVar("T")


def _converter() -> Converter:
    conv = make_converter().copy(omit_if_default=False)
    # a copy keeps plain hooks, not the union strategy: tag events again
    configure_tagged_union(StoredEvent, conv, tag_generator=_kind, tag_name="kind")
    return conv


_CONVERTER: Converter = _converter()


def _exchanged() -> tuple[type, ...]:
    from ..outbox import Notification
    from ..protocol.model import Encounter
    from .base import PendingDeadline
    from .refusals import Refusal

    return (Encounter, Notification, PendingDeadline, Refusal)


def to_json(value: object) -> dict[str, Any]:
    """``value`` as JSON-ready data (dicts, lists, strings, numbers, booleans, null).

    :param value: an encounter, an event, a notification, a pending deadline or a
        refusal.
    :raises InvalidArgument: for anything else (its type is named, never its content).
    """
    if isinstance(value, Event):
        data: dict[str, Any] = _CONVERTER.unstructure(value, StoredEvent)
        return data
    if isinstance(value, _exchanged()):
        data = _CONVERTER.unstructure(value)
        return data
    raise InvalidArgument(
        call="to_json",
        argument="value",
        problem="an Encounter, Event, Notification, PendingDeadline or Refusal,"
        f" not {type(value).__name__}",
    )


def from_json(data: Mapping[str, Any], cls: type[T]) -> T:
    """The value :func:`to_json` gave ``data`` for.

    :param cls: :class:`~lastresort.Event` (or one event class) for an event, else the
        value's class.
    :raises InvalidArgument: for a ``cls`` that is not exchanged, or ``data`` that is
        not its JSON (every problem with its path, e.g. ``$.version: ...``).
    """
    is_event = isinstance(cls, type) and issubclass(cls, Event)
    if not is_event and cls not in _exchanged():
        raise InvalidArgument(
            call="from_json",
            argument="cls",
            problem="Encounter, Event (or an event class), Notification, PendingDeadline"
            f" or Refusal, not {getattr(cls, '__name__', type(cls).__name__)}",
        )
    if not isinstance(data, Mapping):
        raise InvalidArgument(
            call="from_json", argument="data", problem=f"a JSON object, not {type(data).__name__}"
        )
    if is_event and data.get("kind") not in _KINDS:
        raise InvalidArgument(
            call="from_json",
            argument="data",
            problem=f"$.kind: not an event kind; one of {', '.join(sorted(_KINDS))}",
        )
    try:
        if is_event:
            value = _CONVERTER.structure(dict(data), StoredEvent)
        else:
            structured: T = _CONVERTER.structure(dict(data), cls)
            return structured
    except Exception as exc:
        raise InvalidArgument(call="from_json", argument="data", problem=_problems(exc)) from exc
    if not isinstance(value, cls):
        raise InvalidArgument(
            call="from_json",
            argument="data",
            problem=f"$.kind: a {type(value).__name__}, not a {cls.__name__}",
        )
    return value


def _problems(exc: BaseException) -> str:
    """Where ``data`` is wrong, never what it holds: the data may be a child's facts,
    so neither a value nor an unknown key's name is quoted."""
    lines = []
    for line in problems_of(exc):
        path, _, problem = line.partition(": ")
        if problem.startswith("required key missing"):
            lines.append(f"{path}: required key missing")
        elif problem.startswith("unknown key"):
            lines.append(f"{path.rsplit('.', 1)[0] or '$'}: an unknown key")
        else:
            lines.append(f"{path}: not a valid value for this field")
    return "; ".join(dict.fromkeys(lines)) or "not the JSON of this value"
