"""The desk's own texts, one JSON file per language in ``messages/``.

Dutch first: ``nl`` is the default and the fallback. A third language is one more
file (``messages/de.json`` with the same keys); no code changes. Texts of the
protocol itself (step instructions, party names) come from its bilingual fields;
a language the protocol has no text in shows the protocol's English.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["DEFAULT", "Catalogue", "catalogue"]

#: the page's first language
DEFAULT = "nl"


class Catalogue:
    """Messages keyed by language, then by message key.

    :param texts: ``{lang: {key: text}}``; every language has the default's keys.
    :raises ValueError: when a language misses a key of the default language.
    """

    def __init__(self, texts: dict[str, dict[str, str]]) -> None:
        base = set(texts[DEFAULT])
        for lang, messages in texts.items():
            missing = base - set(messages)
            if missing:
                raise ValueError(f"messages/{lang}.json misses {', '.join(sorted(missing))}")
        self.texts = texts

    @property
    def languages(self) -> list[str]:
        """The languages, the default first."""
        return [DEFAULT, *sorted(set(self.texts) - {DEFAULT})]

    def lang(self, wanted: str | None) -> str:
        """``wanted`` when there is such a catalogue, else the default."""
        return wanted if wanted in self.texts else DEFAULT

    def text(self, lang: str, key: str, **fields: Any) -> str:
        """The message ``key`` in ``lang``, its ``{fields}`` filled in."""
        template = self.texts[self.lang(lang)].get(key) or self.texts[DEFAULT][key]
        return template.format(**fields) if fields else template


def catalogue() -> Catalogue:
    """The catalogue of every ``messages/*.json`` shipped with the desk."""
    folder = resources.files(__package__).joinpath("messages")
    texts: dict[str, dict[str, str]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            texts[entry.name.removesuffix(".json")] = json.loads(entry.read_text("utf-8"))
    return Catalogue(texts)
