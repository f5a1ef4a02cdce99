"""Diagrams of a protocol: Mermaid (``stateDiagram-v2``) and Graphviz DOT text.

Both formats are drawn from one layout (:func:`_layout`), so they always show the
same nodes and edges:

- every step is a node labelled with its key and its responsible party's name;
  the initial step is entered from the start marker, terminal steps are final
  states, emergency steps are highlighted;
- every transition is one edge per source step, labelled with its event (and
  guard); a deadline's transition (fired by the clock) is marked with its
  duration, and dashed in DOT; a handover (the responsible party changes) is
  marked;
- a transition from ``*`` and every ``acute_danger`` transition is drawn **once**,
  from a single grouping node ("every step except the final steps"), never one
  edge per step.

No Graphviz installation is needed: the output is plain text. The same protocol
always gives the same text (steps and transitions in file order).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence

from attrs import frozen

from ..errors import ProtocolError
from ..protocol.model import ACUTE_DANGER, ANY_STEP, CLOCK, Protocol
from ..verifier.bounds import graph_problems
from .catalogue import SHIPPED_LANGUAGES, Catalogue, catalogue_for

__all__ = ["LANGS", "escape_dot", "escape_mermaid", "to_dot", "to_mermaid"]

#: The languages a diagram can be drawn in without a catalogue of one's own.
LANGS = SHIPPED_LANGUAGES

#: Node kinds, which decide the styling.
STEP, FINAL, EMERGENCY, GROUP = "step", "final", "emergency", "group"

# Mermaid's lexer reads these as keywords where a state id is expected.
_MERMAID_RESERVED = frozenset(
    {
        "accdescr",
        "acctitle",
        "as",
        "choice",
        "class",
        "classdef",
        "click",
        "default",
        "direction",
        "end",
        "fork",
        "hide",
        "join",
        "left",
        "note",
        "of",
        "right",
        "scale",
        "state",
        "statediagram",
        "style",
    }
)
_PLAIN_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Node ids the diagram makes itself start with this; a step key that does too is renamed.
_OWN = "lr_"


@frozen
class _Node:
    id: str
    lines: tuple[str, ...]
    kind: str
    final: bool = False


@frozen
class _Edge:
    source: str
    target: str
    lines: tuple[str, ...]
    clock: bool
    handover: bool
    acute: bool


@frozen
class _Layout:
    title: str
    ref: str
    municipality: str
    initial: str
    nodes: tuple[_Node, ...]
    edges: tuple[_Edge, ...]


def _check(protocol: Protocol, lang: str, catalogue: Catalogue | None) -> Catalogue:
    words = catalogue_for(lang, catalogue, call="diagram")
    problems = graph_problems(protocol)
    if problems:
        raise ProtocolError(problems=problems, source=protocol.id)
    return words


def _ids(protocol: Protocol) -> dict[str, str]:
    """A node id for every step: its key where that is a plain identifier that no
    format reads as a keyword, otherwise ``lr_step<n>`` (``n`` its position)."""
    ids = {}
    for number, key in enumerate(protocol.steps, start=1):
        plain = (
            _PLAIN_ID.match(key)
            and key.lower() not in _MERMAID_RESERVED
            and not key.lower().startswith(_OWN)
        )
        ids[key] = key if plain else f"{_OWN}step{number}"
    return ids


def _edge_lines(head: str, notes: Sequence[str]) -> tuple[str, ...]:
    return (head, " · ".join(notes)) if notes else (head,)


def _layout(protocol: Protocol, lang: str, catalogue: Catalogue | None = None) -> _Layout:
    """Nodes and edges of ``protocol``, in file order."""
    catalogue = _check(protocol, lang, catalogue)
    words = {
        key.removeprefix("diagram."): text
        for key, text in catalogue.messages.items()
        if key.startswith("diagram.")
    }
    steps, parties = protocol.steps, protocol.parties
    ids = _ids(protocol)

    def party_name(key: str | None) -> str:
        if key is None:
            return words["nobody"]
        party = parties.get(key)
        return party.name.get(lang) if party is not None else key

    nodes = []
    for key, step in steps.items():
        emergency = "emergency" in step.tags
        label = [step.title(lang)]
        if step.responsible is not None or not step.terminal:
            label.append(party_name(step.responsible))
        marks = [words[m] for m, on in (("final", step.terminal), ("emergency", emergency)) if on]
        if marks:
            label.append(" · ".join(marks))
        kind = EMERGENCY if emergency else FINAL if step.terminal else STEP
        nodes.append(_Node(ids[key], tuple(label), kind, step.terminal))

    edges: list[_Edge] = []
    groups: dict[str, _Node] = {}
    for number, t in enumerate(protocol.transitions, start=1):
        guard = f" [{t.guard}]" if t.guard and t.label is None else ""
        head = protocol.transition_title(t, lang) + guard
        target = steps[t.target]
        sources = protocol.sources_of(t)
        receiver = target.responsible
        if ANY_STEP in t.sources or t.event == ACUTE_DANGER:
            # drawn once, from a node standing for all its source steps
            if ANY_STEP in t.sources:
                group = _Node(f"{_OWN}any", (words["any"],), GROUP)
            else:
                listed = ", ".join(protocol.step_title(s, lang) for s in sources)
                group = _Node(f"{_OWN}from{number}", (words["from"].format(steps=listed),), GROUP)
            groups.setdefault(group.id, group)
            handover = receiver is not None and any(
                steps[s].responsible != receiver for s in sources
            )
            lines = _edge_lines(head, [words["handover"]] if handover else [])
            acute = t.event == ACUTE_DANGER
            edges.append(_Edge(group.id, ids[t.target], lines, False, handover, acute))
            continue
        for source in sources:
            step = steps[source]
            deadline = step.deadline
            clock = deadline is not None and deadline.event == t.event and CLOCK in t.by
            handover = receiver is not None and receiver != step.responsible
            notes: list[str] = []
            if clock:
                assert deadline is not None
                after = catalogue.duration(deadline.after)
                if deadline.since is not None:  # dated: at most ``after`` past another step
                    form = "from_step" if deadline.until is None else "dated"
                    since = protocol.step_title(deadline.since, lang)
                    after = words[form].format(after=after, step=since)
                notes.append(words["clock"].format(after=after))
            if handover:
                notes.append(words["handover"])
            lines = _edge_lines(head, notes)
            edges.append(_Edge(ids[source], ids[t.target], lines, clock, handover, False))

    return _Layout(
        protocol.title.get(lang),
        f"{protocol.id} {protocol.version}",
        protocol.municipality_in(lang),
        ids[protocol.initial],
        (*nodes, *groups.values()),
        tuple(edges),
    )


# -- Mermaid -------------------------------------------------------------------------

# Characters Mermaid's state-diagram lexer reads as syntax (or as an entity code,
# '#...;'), or that a browser reads as HTML; written as Mermaid entity codes ('#35;').
_MERMAID_SPECIAL = frozenset('"#%:;<>&`')
_MERMAID_DIRECTION = re.compile(r"(?i)\b(direction)(\s+)(?=tb|bt|rl|lr)")


def escape_mermaid(text: str) -> str:
    """``text`` as it may stand in a Mermaid state or transition label.

    The characters Mermaid's state-diagram lexer or a browser would read as syntax
    (``"``, ``#``, ``%``, ``:``, ``;``, ``<``, ``>``, ``&`` and the backtick)
    become Mermaid entity codes (``"`` is ``#34;``), and so does the space in
    ``direction TB`` (which the lexer reads as a statement anywhere on a line);
    line breaks become ``<br>``; other control characters a space. Letters with
    diacritics (``é``, ``ë``) stay as they are: Mermaid reads UTF-8.

    :param text: any text.
    """
    out = []
    for ch in text.replace("\r\n", "\n"):
        if ch in _MERMAID_SPECIAL:
            out.append(f"#{ord(ch)};")
        elif ch == "\n":
            out.append("<br>")
        elif not ch.isprintable():
            out.append(" ")
        else:
            out.append(ch)
    # a line containing "direction TB" anywhere is a direction statement to the lexer
    return _MERMAID_DIRECTION.sub(lambda m: m[1] + "#32;" + m[2][1:], "".join(out))


def _mermaid_label(lines: Sequence[str]) -> str:
    return "<br>".join(escape_mermaid(line) for line in lines)


_MERMAID_CLASSES = {
    FINAL: "fill:#e8f3ea,stroke:#2e7d32,color:#1b4d1f",
    EMERGENCY: "fill:#fdecea,stroke:#c62828,stroke-width:2px,color:#7f1d1d,font-weight:bold",
    GROUP: "fill:#ffffff,stroke:#c62828,stroke-dasharray:5 5,color:#7f1d1d,font-style:italic",
}


def _mermaid_lines(layout: _Layout) -> Iterator[str]:
    # a JSON string is a YAML double-quoted scalar; line separators would fold it
    title = "".join(c if c.isprintable() else " " for c in f"{layout.title} — {layout.ref}")
    yield "---"
    yield f"title: {json.dumps(title, ensure_ascii=False)}"
    yield "---"
    yield "stateDiagram-v2"
    yield "    %% generated by lastresort; clock transitions are marked in their labels"
    yield "    direction TB"
    for kind, style in _MERMAID_CLASSES.items():
        yield f"    classDef {kind} {style}"
    for node in layout.nodes:
        yield f'    state "{_mermaid_label(node.lines)}" as {node.id}'
    yield f"    [*] --> {layout.initial}"
    for edge in layout.edges:
        yield f"    {edge.source} --> {edge.target} : {_mermaid_label(edge.lines)}"
    for node in layout.nodes:
        if node.final:
            yield f"    {node.id} --> [*]"
    for kind in _MERMAID_CLASSES:
        members = [node.id for node in layout.nodes if node.kind == kind]
        if members:
            yield f"    class {','.join(members)} {kind}"


def to_mermaid(protocol: Protocol, lang: str = "en", *, catalogue: Catalogue | None = None) -> str:
    """The protocol as a Mermaid ``stateDiagram-v2`` (text ending in a newline).

    Each step is a state labelled with its key and its responsible party; the
    initial step follows ``[*]``; terminal steps lead to ``[*]`` (final states) and
    emergency steps are highlighted. Each transition is an edge per source step
    labelled with its event; a deadline's transition carries ``clock, after 45m``
    (Mermaid cannot dash single edges of a state diagram); a handover carries
    ``handover``. ``acute_danger`` and transitions from ``*`` are drawn once, from
    one grouping state. See docs/diagrams.md.

    :param protocol: the protocol to draw.
    :param lang: ``"en"`` or ``"nl"``, or a further language given with ``catalogue``:
        the language of step and event labels, party names, the title and the marks
        (a step or event without a label shows its key).
    :param catalogue: the words of a further language (:func:`lastresort.load_catalogue`).
    :raises InvalidArgument: (a ``ValueError``) for a language without a catalogue.
    :raises ProtocolError: when the graph cannot be drawn (a transition or
        ``initial`` naming an unknown step, see :func:`lastresort.verify`).
    """
    return "\n".join(_mermaid_lines(_layout(protocol, lang, catalogue))) + "\n"


# -- Graphviz DOT --------------------------------------------------------------------


def escape_dot(text: str) -> str:
    """``text`` as the inside of a double-quoted DOT string used as a label.

    ``\\`` and ``"`` are escaped with a backslash, ``&`` is written ``&amp;``
    (Graphviz reads HTML entities in labels), line breaks become ``\\n``, other
    control characters a space. Letters with diacritics stay as they are: the
    graph declares ``charset="UTF-8"``.

    :param text: any text.
    """
    out = []
    for ch in text.replace("\r\n", "\n"):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "&":
            out.append("&amp;")
        elif ch == "\n":
            out.append("\\n")
        elif not ch.isprintable():
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _dot_label(lines: Sequence[str]) -> str:
    return "\\n".join(escape_dot(line) for line in lines)


def _attrs(**attrs: str) -> str:
    return "[" + ", ".join(f'{k}="{v}"' for k, v in attrs.items()) + "]"


_RED = "#c62828"
_DOT_NODES = {
    STEP: {},
    FINAL: {"style": "rounded,filled", "fillcolor": "#e8f3ea"},
    EMERGENCY: {
        "style": "rounded,filled,bold",
        "fillcolor": "#fdecea",
        "color": _RED,
        "fontcolor": "#7f1d1d",
    },
    GROUP: {"shape": "note", "style": "dashed", "color": _RED, "fontcolor": "#7f1d1d"},
}


def _dot_lines(layout: _Layout, name: str) -> Iterator[str]:
    title = escape_dot(layout.title) + "\\n" + escape_dot(f"{layout.ref} · {layout.municipality}")
    yield f'digraph "{escape_dot(name)}" {{'
    yield "    // generated by lastresort"
    yield (
        f'    graph [label="{title}", labelloc="t", rankdir="TB", charset="UTF-8",'
        ' fontname="Helvetica"];'
    )
    yield '    node [shape="box", style="rounded", fontname="Helvetica", fontsize="11"];'
    yield '    edge [fontname="Helvetica", fontsize="9"];'
    yield f'    "{_OWN}start" {_attrs(shape="point", width="0.2", label="")};'
    for node in layout.nodes:
        attrs = {"label": _dot_label(node.lines), **_DOT_NODES[node.kind]}
        if node.final:
            attrs["peripheries"] = "2"
        yield f'    "{node.id}" {_attrs(**attrs)};'
    yield f'    "{_OWN}start" -> "{layout.initial}";'
    for edge in layout.edges:
        attrs = {"label": _dot_label(edge.lines)}
        if edge.clock:
            attrs["style"] = "dashed"
        if edge.handover:
            attrs["penwidth"] = "2"
        if edge.acute:
            attrs |= {"color": _RED, "fontcolor": _RED}
        yield f'    "{edge.source}" -> "{edge.target}" {_attrs(**attrs)};'
    yield "}"


def to_dot(protocol: Protocol, lang: str = "en", *, catalogue: Catalogue | None = None) -> str:
    """The protocol as a Graphviz DOT ``digraph`` (text ending in a newline; no
    Graphviz needed to make it; render it with ``dot -Tsvg``).

    Each step is a rounded box labelled with its key and its responsible party;
    a point marks the start; terminal steps have a double border (final states),
    emergency steps are red. A deadline's transition is **dashed** and labelled
    ``clock, after 45m``; a handover is drawn bold and labelled ``handover``;
    ``acute_danger`` (red) and transitions from ``*`` are drawn once, from one
    grouping node. See docs/diagrams.md.

    :param protocol: the protocol to draw.
    :param lang: as for :func:`to_mermaid`.
    :param catalogue: as for :func:`to_mermaid`.
    :raises InvalidArgument: (a ``ValueError``) for a language without a catalogue.
    :raises ProtocolError: when the graph cannot be drawn.
    """
    return "\n".join(_dot_lines(_layout(protocol, lang, catalogue), protocol.id)) + "\n"
