"""The protocol converter (cattrs) and the strict hooks every package's converter starts from.

Strict: unknown keys, wrong types and malformed durations are errors, and every
problem is reported at once with its path (``$.transitions[3].to: ...``).

Each package that reads or writes data builds its own converter with
:func:`make_converter` and registers its own hooks on it, explicitly, where it is
built (the store's in :mod:`lastresort.store.row_codecs`, the verifier report's in
:mod:`lastresort.verifier.report`, the simulator's in :mod:`lastresort.simulate.config`,
the scenario files' in :mod:`lastresort.scenario.files`); no module changes another
package's converter.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar, get_args, get_origin

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

from ..errors import ProtocolError
from .model import (
    ANY_STEP,
    LANGUAGE_TAG,
    Deadline,
    DeadlineDate,
    Fact,
    FactKind,
    FrozenMap,
    MayorPromise,
    Party,
    PartyKind,
    ProtocolKind,
    Step,
    StepKind,
    Text,
    Transition,
    WorkingDays,
)

__all__ = [
    "Invalid",
    "converter",
    "format_duration",
    "make_converter",
    "parse_deadline_duration",
    "parse_duration",
    "problems_of",
    "structure",
    "suggest",
]

T = TypeVar("T")

_SHORT = re.compile(
    r"^(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$",
    re.ASCII,  # no other scripts' digits
)
_WORKING = re.compile(r"^(?P<n>\d+)wd$", re.ASCII)
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


def parse_deadline_duration(text: str) -> timedelta | WorkingDays:
    """Parse a deadline's ``after``: working days (``2wd``, see :class:`WorkingDays`)
    or anything :func:`parse_duration` reads.

    :raises ValueError: for anything else.
    """
    match = _WORKING.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        return parse_duration(text)
    digits = match.group("n")
    if len(digits) > 6:  # far beyond the bound validation reports; keep int() cheap
        raise Invalid(f"duration {_REPR.repr(text)} is too long")
    return WorkingDays(int(digits))


def format_duration(delta: timedelta | WorkingDays) -> str:
    """The compact form of a duration (``1h30m``, ``10d``, ``2wd``); inverse of
    :func:`parse_duration` and :func:`parse_deadline_duration`.

    Durations with a fraction of a second use ISO 8601 (``PT1M0.5S``).

    :raises ValueError: for a negative duration.
    """
    if isinstance(delta, WorkingDays):
        return str(delta)
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
_RENAMES = {"sources": "from", "target": "to", "since": "from"}


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


def _structure_after(value: Any, _: Any) -> timedelta | WorkingDays:
    if isinstance(value, timedelta | WorkingDays):
        return value
    return parse_deadline_duration(value)


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


_LANGUAGE = re.compile(LANGUAGE_TAG)


def _text_hooks(conv: Converter) -> tuple[Callable[[Any, Any], Text], Callable[[Text], Any]]:
    """A text is a table of ``nl``, ``en`` and further language tags (``fy``, ``pl``):
    ``nl`` and ``en`` are required, every other key must have a language tag's form."""
    base = make_dict_structure_fn(Text, conv, more=override(omit=True))

    def structure(value: Any, _: Any) -> Text:
        if not isinstance(value, Mapping):
            return base(value, Text)  # the generated function reports "expected a table"
        more = {
            k: v
            for k, v in value.items()
            if isinstance(k, str) and k not in ("nl", "en") and _LANGUAGE.match(k)
        }
        for lang, text in more.items():
            if not isinstance(text, str):
                raise Invalid(f"expected a string for language {lang!r}, got {_show(text)}")
        text = base({k: v for k, v in value.items() if k not in more}, Text)
        return attrs.evolve(text, more=more) if more else text

    def unstructure(text: Text) -> Any:
        return {"nl": text.nl, "en": text.en, **text.more}

    return structure, unstructure


def make_converter() -> Converter:
    """A new strict converter with the hooks of protocol values (durations, date-times,
    enums, parties, steps, transitions, facts); packages add their own hooks to theirs."""
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
    conv.register_structure_hook(timedelta | WorkingDays, _structure_after)
    conv.register_unstructure_hook(WorkingDays, format_duration)
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
        (MayorPromise, "mayor promise"),
        (DeadlineDate, "deadline date"),
    ):
        conv.register_structure_hook(enum_type, _enum_hook(enum_type, what))
    text_in, text_out = _text_hooks(conv)
    conv.register_structure_hook(Text, text_in)
    conv.register_structure_hook(
        str | Text, lambda v, _: v if isinstance(v, str) else text_in(v, Text)
    )
    conv.register_unstructure_hook(Text, text_out)
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
        Deadline, make_dict_structure_fn(Deadline, conv, since=override(rename="from"))
    )
    conv.register_unstructure_hook(
        Deadline,
        make_dict_unstructure_fn(
            Deadline, conv, _cattrs_omit_if_default=True, since=override(rename="from")
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
"""The protocol converter (files, durations, date-times). Use :func:`structure` for
located errors."""


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
        _RENAMES.get(a.name, a.name) if cls is Transition or cls is Deadline else a.name
        for a in attrs.fields(cls)
        if a.name not in ("key", "more")
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


def structure(data: Any, cls: type[T], path: str = "$", conv: Converter | None = None) -> T:
    """Structure ``data`` into ``cls`` with ``conv`` (the protocol converter by default).

    :raises ProtocolError: listing every problem with its path.
    """
    try:
        return (conv or converter).structure(data, cls)
    except Exception as exc:
        raise ProtocolError(problems=problems_of(exc, path)) from exc
