"""Message catalogues: the words of cards and diagrams, one TOML file per language.

The protocol's own texts (title, party names, labels, instructions) come from the
protocol file; everything else a card or diagram says (headings, ``always``, weekdays,
kinds, tags, the clock, example-value marks) comes from a catalogue, so that a card is
entirely in one language. ``nl`` and ``en`` ship in ``lastresort/render/messages``; a
further language needs a catalogue file with the same keys, and no code
(:func:`load_catalogue`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from attrs import field, frozen

from ..errors import CatalogueError, InvalidArgument
from ..protocol.conversion import format_duration, suggest
from ..protocol.model import FrozenMap, WorkingDays

__all__ = ["SHIPPED_LANGUAGES", "Catalogue", "catalogue_for", "load_catalogue"]

#: The languages whose catalogues ship with lastresort.
SHIPPED_LANGUAGES = ("en", "nl")

_LANG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$")
_WORD = re.compile(r"[a-z]+|24/7")
_PART = re.compile(r"(\d+)([wdhms])")


def _messages(items: Mapping[str, str]) -> Mapping[str, str]:
    return FrozenMap(items)


@frozen
class Catalogue:
    """The words of one language, by ``section.key`` (``card.deadline``, ``tag.reported``).

    :param lang: the language tag, e.g. ``nl`` or ``fy``; protocol texts are shown in it.
    :param messages: every message, flat.
    """

    lang: str
    messages: Mapping[str, str] = field(converter=_messages)

    def __getitem__(self, key: str) -> str:
        return self.messages[key]

    def word(self, section: str, key: str) -> str:
        """``section.key``, or ``key`` itself when the catalogue has no such word (a tag
        a vendor made up)."""
        return self.messages.get(f"{section}.{key}", key)

    def hours(self, text: str) -> str:
        """A party's hours in this language: ``mon-fri 08:00-18:00`` -> ``ma-vr 08:00-18:00``."""
        return _WORD.sub(lambda m: self.messages.get(f"hours.{m.group(0)}", m.group(0)), text)

    def duration(self, delta: timedelta | WorkingDays) -> str:
        """A duration in this language's units: ``1h30m`` -> ``1 u 30 min``; working
        days as ``2 werkdagen`` / ``2 working days``."""
        if isinstance(delta, WorkingDays):
            key = "units.working_day" if delta.count == 1 else "units.working_days"
            return f"{delta.count} {self.messages[key]}"
        compact = format_duration(delta)
        parts = _PART.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            return compact  # a fraction of a second: ISO 8601 as it is
        return " ".join(f"{n} {self.messages[f'units.{u}']}" for n, u in parts)


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def _read(text: str, lang: str, source: str) -> Catalogue:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(problems=[f"$: invalid TOML: {exc}"], source=source) from exc
    messages = _flat(data)
    keys = _flat(tomllib.loads(_shipped_text("en")))
    problems = [
        f"$.{key}: missing (every key of en.toml is needed)" for key in keys if key not in messages
    ]
    for key, value in messages.items():
        if key not in keys:
            problems.append(f"$.{key}: unknown key{suggest(key, keys)}")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"$.{key}: expected a non-empty text")
        else:
            wanted = set(re.findall(r"\{(\w+)\}", keys[key]))
            given = set(re.findall(r"\{(\w+)\}", value))
            if wanted != given:
                shown = ", ".join(f"{{{w}}}" for w in sorted(wanted)) or "no placeholder"
                problems.append(f"$.{key}: must use {shown}, as en.toml does")
    if problems:
        raise CatalogueError(problems=problems, source=source)
    return Catalogue(lang, messages)


def _shipped_text(lang: str) -> str:
    return (resources.files("lastresort.render") / "messages" / f"{lang}.toml").read_text(
        encoding="utf-8"
    )


@cache
def _shipped(lang: str) -> Catalogue:
    return _read(_shipped_text(lang), lang, f"lastresort/render/messages/{lang}.toml")


def load_catalogue(path: str | os.PathLike[str], lang: str | None = None) -> Catalogue:
    """Read a message catalogue for a further language: a TOML file with exactly the keys
    of the shipped ``en.toml``, every text non-empty, with the same ``{placeholders}``.

    :param path: the file, e.g. ``fy.toml``.
    :param lang: its language tag; by default the file's name (``fy`` for ``fy.toml``).
    :raises CatalogueError: listing every missing, unknown or empty key (nothing is read).
    """
    file = Path(path)
    tag = lang if lang is not None else file.stem
    if not _LANG.match(tag):
        raise CatalogueError(
            problems=[f"$: {tag!r} is not a language tag such as 'fy' or 'pt-BR'"],
            source=str(file),
        )
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise CatalogueError(problems=[f"$: cannot read file: {exc}"], source=str(file)) from exc
    return _read(text, tag, str(file))


def catalogue_for(
    lang: str, catalogue: Catalogue | None = None, *, call: str = "render"
) -> Catalogue:
    """The catalogue to render ``lang`` with: ``catalogue`` when given (its language must
    be ``lang``), else the shipped one.

    :raises InvalidArgument: for a language without a shipped catalogue and none given.
    """
    if catalogue is not None:
        if catalogue.lang != lang:
            raise InvalidArgument(
                call=call,
                argument="catalogue",
                problem=f"a catalogue of language {lang!r} (the one given is {catalogue.lang!r})",
            )
        return catalogue
    if lang not in SHIPPED_LANGUAGES:
        raise InvalidArgument(
            call=call,
            argument="lang",
            problem=f"one of {', '.join(SHIPPED_LANGUAGES)}, or come with a catalogue"
            " (lastresort.load_catalogue) for a further language",
        )
    return _shipped(lang)
