"""Scenario files: their shape, read through their own converter (built on the protocol converter), and loading them.

Loading is strict and checks the file against its protocol: every problem, each
with its path, is reported at once in one :class:`~lastresort.ScenarioError`, and
nothing runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import attrs
from attrs import frozen
from cattrs import Converter
from cattrs.gen import make_dict_structure_fn, override

from ..errors import ProtocolError, ScenarioError
from ..protocol.conversion import Invalid, parse_duration, structure, suggest
from ..protocol.conversion import make_converter as make_protocol_converter
from ..protocol.files import read_document
from ..protocol.model import Protocol
from .check import Checker
from .model import (
    DEFAULT_TIMEZONE,
    AllowedExpectation,
    NotificationExpectation,
    Scenario,
)

__all__ = ["load_scenario"]

T = TypeVar("T")


# -- the file shape ------------------------------------------------------------------


@frozen
class _Time:
    """A time as written: an offset from the start, or a date-time (maybe naive)."""

    text: str
    offset: timedelta | None = None
    moment: datetime | None = None


_TIME_HELP = "use an offset from the start such as '+50m' or a date-time such as '2026-03-06T19:20'"


def _time(value: Any, _: Any) -> _Time:
    if isinstance(value, datetime):
        return _Time(value.isoformat(), moment=value)
    if isinstance(value, date):
        raise Invalid(f"a date without a time ({value.isoformat()}); {_TIME_HELP}")
    if not isinstance(value, str):
        raise Invalid(f"expected a time, got {type(value).__name__} {value!r}; {_TIME_HELP}")
    text = value.strip()
    if text.startswith("-"):
        raise Invalid(f"time {value!r} is before the start; steps happen at or after it")
    try:
        return _Time(text, offset=parse_duration(text.removeprefix("+")))
    except ValueError:
        pass
    if not text.startswith("+"):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if "T" not in text.upper() and " " not in text:  # fromisoformat takes a bare date
                raise Invalid(f"a date without a time ({text}); {_TIME_HELP}")
            return _Time(text, moment=moment)
    raise Invalid(f"invalid time {value!r}; {_TIME_HELP}")


def _moment(value: Any, _: Any) -> datetime:
    found = _time(value, _)
    if found.moment is None:
        raise Invalid(f"the start must be a date-time such as '2026-03-06T18:30', got {value!r}")
    return found.moment


def _names(value: Any, _: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise Invalid(f"expected a list of names, got {value!r}")


def _one_or_many(cls: type[T]) -> Callable[[Any, Any], tuple[T, ...]]:
    def hook(value: Any, _: Any) -> tuple[T, ...]:
        if isinstance(value, Mapping):
            return (converter.structure(value, cls),)
        if isinstance(value, list | tuple):
            return converter.structure(value, tuple[cls, ...])  # type: ignore[valid-type]
        raise Invalid(f"expected a table or an array of tables, got {value!r}")

    return hook


def _tables(value: Any, _: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return value
    raise Invalid("expected an array of tables: write each step as [[steps]]")


@frozen
class _Header:
    name: str
    protocol: str
    start: datetime
    timezone: str = DEFAULT_TIMEZONE
    facts: dict[str, str | bool] = attrs.Factory(dict)
    opened_by: str | None = None
    opened_by_id: str | None = None
    channel: str = "counter"
    description: str | None = None


@frozen
class _DeadlineFile:
    step: str
    event: str | None = None
    due: _Time | None = None


@frozen
class _StepFile:
    at: _Time | None = None
    note: str | None = None
    actor: str | None = None
    actor_id: str | None = None
    until: _Time | None = None
    event: str | None = None
    expect_error: str | None = None
    state: str | None = None
    responsible: str | None = None
    allowed: tuple[AllowedExpectation, ...] = ()
    queued: tuple[NotificationExpectation, ...] = ()
    delivered: tuple[NotificationExpectation, ...] = ()
    deadlines: tuple[_DeadlineFile, ...] | None = None
    closed: bool | None = None


@frozen
class _Document:
    scenario: dict[str, Any]
    steps: list[Mapping[str, Any]] = attrs.Factory(list)


def make_converter() -> Converter:
    """The scenario files' converter: the protocol converter, and the hooks of a
    scenario's header, steps and expectations."""
    conv = make_protocol_converter()
    conv.register_structure_hook(_Time, _time)
    conv.register_structure_hook(
        _Header, make_dict_structure_fn(_Header, conv, start=override(struct_hook=_moment))
    )
    conv.register_structure_hook(
        AllowedExpectation,
        make_dict_structure_fn(AllowedExpectation, conv, events=override(struct_hook=_names)),
    )
    conv.register_structure_hook(
        _StepFile,
        make_dict_structure_fn(
            _StepFile,
            conv,
            allowed=override(struct_hook=_one_or_many(AllowedExpectation)),
            queued=override(struct_hook=_one_or_many(NotificationExpectation)),
            delivered=override(struct_hook=_one_or_many(NotificationExpectation)),
            deadlines=override(struct_hook=_one_or_many(_DeadlineFile)),
        ),
    )
    conv.register_structure_hook(
        _Document, make_dict_structure_fn(_Document, conv, steps=override(struct_hook=_tables))
    )
    return conv


converter: Converter = make_converter()


# -- loading -------------------------------------------------------------------------


def load_scenario(
    source: str | os.PathLike[str] | Mapping[str, Any],
    protocols: Mapping[str, Protocol] | Iterable[Protocol] | None = None,
) -> Scenario:
    """Load a scenario from a TOML (or JSON) file, or a mapping of the same shape,
    and check it against its protocol.

    :param source: a path, or a mapping shaped like the file.
    :param protocols: the protocols a scenario may name, by id or as values
        (default: every installed protocol, as :class:`~lastresort.Engine` finds them).
    :raises ScenarioError: with ``.problems``, each ``"<path>: <problem>"``: unknown
        keys, unknown events, roles and steps, malformed times, times going back.
    """
    try:
        data, name = read_document(source)
    except ProtocolError as exc:
        raise ScenarioError(problems=exc.problems, source=exc.source) from exc
    if not isinstance(data, Mapping):
        raise ScenarioError(
            problems=[f"$: expected a table (mapping), got {type(data).__name__}"], source=name
        )
    try:
        document = structure(data, _Document, conv=converter)
    except ProtocolError as exc:
        raise ScenarioError(problems=exc.problems, source=name) from exc
    problems: list[str] = []
    header, _ = _structure_part(document.scenario, _Header, "$.scenario", problems)
    files = [
        _structure_part(raw, _StepFile, f"$.steps[{index}]", problems)
        for index, raw in enumerate(document.steps)
    ]
    if not document.steps:
        problems.append("$.steps: a scenario needs at least one step ([[steps]])")

    protocol = _protocol(header, document.scenario, protocols, problems)
    checker = Checker(protocol, problems)
    start, zone = checker.start(header)
    if header is not None and protocol is not None:
        checker.header(header)
    steps = checker.steps(files, start, zone)
    if problems or header is None or start is None or zone is None:
        raise ScenarioError(problems=sorted(problems, key=_by_place), source=name)
    opener = header.opened_by
    if opener is None:
        assert protocol is not None
        opener = protocol.steps[protocol.initial].responsible or next(iter(protocol.parties))
    return Scenario(
        name=header.name,
        protocol=header.protocol,
        start=start,
        timezone=header.timezone,
        facts=header.facts,
        opened_by=opener,
        opened_by_id=header.opened_by_id,
        channel=header.channel,
        steps=[s for s in steps if s is not None],
        description=header.description,
        source=name,
        definition=protocol,
    )


def _structure_part(
    raw: Mapping[str, Any], cls: type[T], path: str, problems: list[str]
) -> tuple[T | None, frozenset[str]]:
    """Structure one table; on failure record its problems and structure what is
    left without the broken keys, so that the rest can still be checked.

    :returns: the value (partial when keys were broken) and the broken keys.
    """
    try:
        return structure(raw, cls, path, conv=converter), frozenset()
    except ProtocolError as exc:
        problems.extend(exc.problems)
        bad = frozenset(
            key
            for key in raw
            if any(
                problem.startswith((f"{path}.{key}:", f"{path}.{key}.", f"{path}.{key}["))
                for problem in exc.problems
            )
        )
    try:
        partial = converter.structure({k: v for k, v in raw.items() if k not in bad}, cls)
    except Exception:  # noqa: BLE001 - what is left cannot be read either: checked no further
        return None, bad
    return partial, bad


def _by_place(problem: str) -> tuple[int, int]:
    """Sort key: the scenario table first, then the steps in order (stable within)."""
    match = re.match(r"\$\.steps\[(\d+)\]", problem)
    if match:
        return 2, int(match[1])
    return (0, 0) if problem.startswith("$.scenario") else (1, 0)


def _protocol(
    header: _Header | None,
    raw: Mapping[str, Any],
    protocols: Mapping[str, Protocol] | Iterable[Protocol] | None,
    problems: list[str],
) -> Protocol | None:
    wanted = header.protocol if header is not None else raw.get("protocol")
    if not isinstance(wanted, str):
        return None
    if protocols is None:
        from ..engine.installed import load_installed

        known: Mapping[str, Protocol] = load_installed().protocols
    elif isinstance(protocols, Mapping):
        known = protocols
    else:
        known = {p.id: p for p in protocols}
    if wanted not in known:
        hint = suggest(wanted, known) or f"; known: {', '.join(sorted(known)) or 'none'}"
        problems.append(f"$.scenario.protocol: unknown protocol {wanted!r}{hint}")
        return None
    return known[wanted]
