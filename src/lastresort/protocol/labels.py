"""Labels: the short bilingual names of steps and events that cards, pages and diagrams
show instead of keys.

A label that is given must be sound (no empty text; transitions of one event agree),
which :func:`label_problems` reports as validation problems. A missing label is not an
error: a vendor's protocol loads and runs without labels, its card then shows the keys,
and ``lastresort check`` warns about each (:func:`label_warnings`). The protocols shipped
with lastresort have every label (a test keeps it so). See docs/protocol-format.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from .conversion import _key_path
from .model import Protocol, Text

__all__ = ["label_problems", "label_warnings", "text_problems"]


def text_problems(text: Text, path: str) -> list[str]:
    """Every empty language of ``text``, located at ``path``."""
    return [
        f"{path}.{lang}: empty text (texts shown to people need both nl and en)"
        if lang in ("nl", "en")
        else f"{path}.{lang}: empty text (leave the language out rather than empty)"
        for lang in text.languages()
        if not text.get(lang).strip()
    ]


def label_problems(protocol: Protocol, index_map: Iterable[int] | None = None) -> list[str]:
    """Labels that are given but unsound: an empty text, or two transitions of one event
    and guard with different labels (transitions of one event with different guards may
    each say what sets them apart, e.g. "in office hours").

    :param index_map: the file index of each transition (when some failed to load).
    """
    found: list[str] = []
    for key, step in protocol.steps.items():
        if step.label is not None:
            found += text_problems(step.label, f"{_key_path('$.steps', key)}.label")
    first: dict[tuple[str, str | None], tuple[int, Text]] = {}
    positions = list(index_map) if index_map is not None else []
    for position, transition in enumerate(protocol.transitions):
        if transition.label is None:
            continue
        i = positions[position] if position < len(positions) else position
        path = f"$.transitions[{i}].label"
        found += text_problems(transition.label, path)
        seen = first.setdefault((transition.event, transition.guard), (i, transition.label))
        if seen[1] != transition.label:
            found.append(
                f"{path}: differs from the label of event {transition.event!r} at"
                f" $.transitions[{seen[0]}] (an event has one label: give it once, or the"
                " same on each transition; only transitions with different guards may"
                " have labels of their own)"
            )
    return found


def label_warnings(protocol: Protocol, langs: Iterable[str] = ()) -> list[str]:
    """Steps and events without a label (their cards show keys), and labels missing a
    language that others in the protocol have; each located. Warnings, not problems:
    such a protocol runs and verifies.

    :param langs: further languages every label should have; by default those that
        any label of the protocol has.
    """
    labels = [s.label for s in protocol.steps.values() if s.label is not None]
    labels += [t.label for t in protocol.transitions if t.label is not None]
    wanted = list(dict.fromkeys([*langs, *(lang for text in labels for lang in text.more)]))
    found: list[str] = []
    for key, step in protocol.steps.items():
        path = _key_path("$.steps", key)
        if step.label is None:
            found.append(
                f"{path}: no label; cards show the key {key!r}"
                ' (add label = { nl = "...", en = "..." })'
            )
        else:
            found += _missing(step.label, f"{path}.label", wanted)
    done: set[str] = set()
    for i, transition in enumerate(protocol.transitions):
        event = transition.event
        if event in done:
            continue
        label = protocol.event_label(event)
        if label is None:
            found.append(
                f"$.transitions[{i}]: event {event!r} has no label; cards show its name"
                ' (add label = { nl = "...", en = "..." } to one of its transitions)'
            )
        elif transition.label is not None:
            found += _missing(label, f"$.transitions[{i}].label", wanted)
        done.add(event)
    return found


def _missing(text: Text, path: str, wanted: Iterable[str]) -> list[str]:
    return [
        f"{path}: no text in {lang!r} (other labels have one; English is shown instead)"
        for lang in wanted
        if not text.has(lang)
    ]
