"""Protocol files: their shape, reading TOML or JSON, loading with every problem
reported at once, and dumping back. All structuring goes through the protocol converter
of :mod:`lastresort.protocol.conversion`."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from ..errors import ProtocolError
from ..privacy import DEFAULT_CHANNELS
from .conversion import Invalid, _show, _unfact, converter, problems_of
from .groups import expand_groups
from .locations import Locator, locate
from .model import (
    DEFAULT_TIMEZONE,
    Fact,
    Party,
    Protocol,
    ProtocolKind,
    Requirements,
    Step,
    Text,
    Transition,
)

__all__ = [
    "dump_protocol",
    "load_packaged_protocol",
    "load_protocol",
    "locate_problems",
    "read_document",
]


@frozen
class _Header:
    """The ``[protocol]`` table of a file (its descriptions are the JSON Schema's).

    :param id: unique key of the protocol, e.g. `amsterdam`; plugins may not collide.
    :param version: version of the arrangement, e.g. `2026-12-04`; stored with every encounter.
    :param municipality: the municipality (or "any" for a generic arrangement); a string,
        or a text in each language.
    :param title: bilingual title.
    :param initial: the step every encounter starts in; a non-terminal step.
    :param source: where the arrangement comes from: the letter, an agreement, a decision;
        a string, or a text in each language (`{ nl = "...", en = "..." }`) so that a card
        in Dutch cites it in Dutch.
    :param kind: `encounter` (a child at the counter) or `order` (a measure that runs for days).
    :param channels: how an encounter may arrive; the first is the default.
    :param timezone: the IANA time zone working days (`2wd`) are counted in, e.g. `Europe/Amsterdam` (the default).
    """

    id: str
    version: str
    municipality: str | Text
    title: Text
    initial: str
    source: str | Text
    kind: ProtocolKind = ProtocolKind.ENCOUNTER
    channels: list[str] = attrs.Factory(lambda: list(DEFAULT_CHANNELS))
    timezone: str = DEFAULT_TIMEZONE


@frozen
class _ProtocolFile:
    """A protocol file.

    :param groups: party groups, e.g. `expert = ["vangnet", "veilig_thuis"]`: a step or
        transition that writes `{expert}` stands for one copy per member, and `"@expert"`
        in `by` or `notify` for all members (expanded when the file is loaded).
    """

    protocol: _Header
    parties: dict[str, Party]
    steps: dict[str, Step]
    transitions: list[Transition]
    facts: dict[str, Fact] = attrs.Factory(dict)
    requirements: Requirements = attrs.Factory(Requirements)
    groups: dict[str, list[str]] = attrs.Factory(dict)


# -- reading files ----------------------------------------------------------------


def read_document(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[Any, str | None]:
    """Read a TOML or JSON file (or take a mapping as it is).

    :returns: the data and a name for error messages.
    :raises ProtocolError: when the file cannot be read or parsed.
    """
    data, name, _ = _read(source)
    return data, name


def _read(
    source: str | os.PathLike[str] | Mapping[str, Any],
) -> tuple[Any, str | None, Callable[[], Locator] | None]:
    """:func:`read_document`, and for a file a function giving its parts' positions."""
    if isinstance(source, Mapping):
        return source, None, None
    if not isinstance(source, str | os.PathLike):
        raise ProtocolError(
            problems=[f"$: expected a file path or a mapping, got {type(source).__name__}"]
        )
    path = Path(source)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is no error
    except (OSError, ValueError) as exc:  # ValueError: undecodable bytes, NUL in path
        raise ProtocolError(problems=[f"$: cannot read file: {exc}"], source=name) from exc
    suffix = path.suffix

    def locator() -> Locator:
        return locate(text, name, suffix)

    try:
        if path.suffix.lower() == ".json":
            return json.loads(text), name, locator
        return tomllib.loads(text), name, locator
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ProtocolError(problems=[f"$: invalid {kind}: {exc}"], source=name) from exc
    except RecursionError as exc:  # both parsers recurse once per nesting level
        raise ProtocolError(problems=["$: nested too deeply to read"], source=name) from exc


def _plain(value: str | Text) -> str:
    return value if isinstance(value, str) else value.en


def _text(value: str | Text) -> Text | None:
    return value if isinstance(value, Text) else None


def _to_protocol(file: _ProtocolFile) -> Protocol:
    header = file.protocol
    return Protocol(
        id=header.id,
        version=header.version,
        municipality=_plain(header.municipality),
        municipality_text=_text(header.municipality),
        title=header.title,
        initial=header.initial,
        source=_plain(header.source),
        source_text=_text(header.source),
        kind=header.kind,
        channels=tuple(header.channels),
        timezone=header.timezone,
        parties=file.parties,
        steps=file.steps,
        transitions=file.transitions,
        facts=file.facts,
        requirements=file.requirements,
    )


def _salvage_header(raw: Mapping[str, Any], broken: dict[str, Any]) -> _Header:
    def text(key: str) -> str:
        value = raw.get(key)
        if isinstance(value, str):
            return value  # an empty one is reported by validation
        broken["header"] = True
        return "?"

    initial = raw.get("initial")
    if not isinstance(initial, str):
        broken["initial"] = True
        initial = ""
    try:
        title = converter.structure(raw.get("title"), Text)
    except Exception:  # noqa: BLE001
        title = Text("?", "?")
    try:
        kind = converter.structure(raw.get("kind", ProtocolKind.ENCOUNTER.value), ProtocolKind)
    except Exception:  # noqa: BLE001 - unknown kind: the kind-specific rules cannot be judged
        broken["kind"] = True
        kind = ProtocolKind.ENCOUNTER

    def either(key: str) -> str | Text:
        if not isinstance(raw.get(key), Mapping):
            return text(key)
        try:
            found: Text = converter.structure(raw.get(key), Text)
        except Exception:  # noqa: BLE001
            broken["header"] = True
            return "?"
        return found

    source = either("source")
    channels = raw.get("channels", DEFAULT_CHANNELS)
    if not isinstance(channels, list | tuple) or not all(isinstance(c, str) for c in channels):
        channels = DEFAULT_CHANNELS  # reported by the converter; nothing to judge here
    zone = raw.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(zone, str):
        zone = DEFAULT_TIMEZONE  # reported by the converter
    return _Header(
        text("id"),
        text("version"),
        either("municipality"),
        title,
        initial,
        source,
        kind,
        list(channels),
        zone,
    )


def _salvage(data: Mapping[str, Any]) -> tuple[Protocol | None, dict[str, Any]]:
    """Structure what can be structured, item by item, so that semantic problems
    can be reported beside structural ones. Returns the partial protocol and what
    was broken (so validation does not report knock-on problems)."""
    broken: dict[str, Any] = {"parties": set(), "steps": set(), "transitions": True}
    raw_header = data.get("protocol")
    if not isinstance(raw_header, Mapping):
        raw_header = {}
    try:
        header = converter.structure(raw_header, _Header)
    except Exception:  # noqa: BLE001 - a broken header still lets the rest be checked
        header = _salvage_header(raw_header, broken)
    parts: dict[str, Any] = {}
    for section, cls in (("parties", Party), ("steps", Step), ("facts", Fact)):
        raw = data.get(section, {})
        good = {}
        if not isinstance(raw, Mapping):
            # the whole section is unreadable: references into it cannot be judged
            broken[f"all_{section}"] = True
            raw = {}
        for key, value in raw.items():
            try:
                if not isinstance(key, str):
                    raise Invalid(f"expected a string key, got {_show(key)}")
                good[key] = converter.structure(value, cls)
            except Exception:  # noqa: BLE001
                broken.setdefault(section, set()).add(key)
        parts[section] = good
    transitions: list[Transition] = []
    index: list[int] = []
    raw_transitions = data.get("transitions", [])
    all_good = isinstance(raw_transitions, list)
    for i, value in enumerate(raw_transitions if all_good else []):
        try:
            transitions.append(converter.structure(value, Transition))
            index.append(i)
        except Exception:  # noqa: BLE001
            all_good = False
    broken["transitions"] = not all_good
    broken["transition_index"] = index
    try:
        requirements = converter.structure(data.get("requirements", {}), Requirements)
    except Exception:  # noqa: BLE001
        requirements = Requirements()
    file = _ProtocolFile(
        header, parts["parties"], parts["steps"], transitions, parts["facts"], requirements
    )
    return _to_protocol(file), broken


def load_protocol(
    source: str | os.PathLike[str] | Mapping[str, Any], *, check: bool = True
) -> Protocol:
    """Load a protocol from a TOML or JSON file, or from a mapping of the same shape.

    Every problem, structural (unknown keys, wrong types, bad durations) and
    semantic (unknown references, unreachable steps, ...), is reported at once.

    :param source: a path to a ``.toml`` or ``.json`` file, or a mapping.
    :param check: run the structural validation (:func:`lastresort.validate`);
        durations longer than 366 days are refused even without it.
    :raises ProtocolError: with ``.problems``, each ``"<path>: <problem>"``.
    """
    from .validation import duration_problems, validate, zone_problems

    data, name, locator = _read(source)

    def error(problems: list[str]) -> ProtocolError:
        return ProtocolError(problems=problems, source=name, located=_located(locator, problems))

    if not isinstance(data, Mapping):
        raise error([f"$: expected a table (mapping), got {type(data).__name__}"])
    # party groups: templates become their copies before anything else reads the file
    expansion = expand_groups(data)
    if expansion.problems:
        raise error(list(expansion.problems))
    data = expansion.data

    def placed(problems: list[str]) -> list[str]:
        return list(dict.fromkeys(expansion.locate(p) for p in problems))

    try:
        file = converter.structure(data, _ProtocolFile)
    except Exception as exc:
        problems = problems_of(exc)
        if check:
            partial, broken = _salvage(data)
            if partial is not None:
                problems.extend(p for p in validate(partial, broken=broken) if p not in problems)
        raise error(placed(problems)) from exc
    protocol = _to_protocol(file)
    # durations beyond the bound are refused even unchecked: nothing could run or verify them
    found = validate(protocol) if check else duration_problems(protocol) + zone_problems(protocol)
    if found:
        raise error(placed(found))
    return protocol


def _located(locator: Callable[[], Locator] | None, problems: list[str]) -> list[str] | None:
    """The problems with their places, or ``None`` without a file. Places are a help:
    should the scanner fail on a file the parser accepted, the problems are still
    reported, unlocated, rather than hidden behind the scanner's error."""
    if locator is None:
        return None
    try:
        return locator().located(problems)
    except Exception:  # noqa: BLE001 - see above; the fuzz tests keep this path unused
        return None


def locate_problems(source: str | os.PathLike[str], problems: Sequence[str]) -> list[str]:
    """``problems`` found in the protocol file ``source`` (by a plugin's validation,
    the verifier), each with its ``file:line:col`` in front where it names a path.

    :raises ProtocolError: when the file cannot be read or parsed.
    """
    data, _, locator = _read(source)
    if isinstance(data, Mapping):  # paths of the expanded protocol: to their templates
        expansion = expand_groups(data)
        problems = [expansion.locate(p) for p in problems]
    return _located(locator, list(problems)) or list(problems)


def load_packaged_protocol(package: str, resource: str) -> Protocol:
    """Load a protocol file shipped inside an installed package (a plugin's data file).

    ``load_packaged_protocol(__name__, "my_city.toml")`` in a plugin module reads the
    file beside it, also from a zipped wheel.

    :param package: the importable package holding the file (usually ``__name__``).
    :param resource: the file name inside the package.
    :raises ProtocolError: when the file is missing or the protocol is broken.
    """
    try:
        source = resources.files(package).joinpath(resource)
        with resources.as_file(source) as path:
            return load_protocol(path)
    except (ModuleNotFoundError, TypeError) as exc:
        raise ProtocolError(problems=[f"$: cannot find package {package!r}: {exc}"]) from exc


def dump_protocol(protocol: Protocol) -> dict[str, Any]:
    """A protocol as TOML-compatible data (strings, numbers, booleans, lists, tables);
    ``load_protocol(dump_protocol(p)) == p``."""
    header = _Header(
        protocol.id,
        protocol.version,
        protocol.municipality if protocol.municipality_text is None else protocol.municipality_text,
        protocol.title,
        protocol.initial,
        protocol.source if protocol.source_text is None else protocol.source_text,
        protocol.kind,
        list(protocol.channels),
        protocol.timezone,
    )
    data: dict[str, Any] = {
        "protocol": converter.unstructure(header),
        "parties": {k: converter.unstructure(v, Party) for k, v in protocol.parties.items()},
        "steps": {k: converter.unstructure(v) for k, v in protocol.steps.items()},
        "transitions": [converter.unstructure(t, Transition) for t in protocol.transitions],
    }
    if protocol.facts:
        data["facts"] = {k: _unfact(v) for k, v in protocol.facts.items()}
    requirements = converter.unstructure(protocol.requirements)
    if requirements:
        data["requirements"] = requirements
    return data
