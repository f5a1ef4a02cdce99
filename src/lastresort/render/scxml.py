"""A protocol as a W3C SCXML 1.0 document, and back.

:func:`to_scxml` writes the statechart SCXML runtimes and editors understand: one
``<state>`` per step (``<final>`` for a terminal one), one ``<transition>`` per
(source step, transition) with ``*`` expanded, in declaration order, so that the first
transition whose condition holds is the one lastresort takes; a deadline as a delayed
``<send>`` on entry, cancelled on exit; who may fire a transition (``by`` and the
handover rule) and its guard as the transition's ``cond``. What SCXML has no place for
(parties, facts, texts, tags, requirements, ``by`` as written, ``notify``) is kept in
elements and attributes of the lastresort namespace, which SCXML processors ignore, so
that :func:`from_scxml` gives back an equal :class:`~lastresort.protocol.model.Protocol`.

The conditions are In()-free expressions valid in both the ECMAScript and the Python
datamodel:

- ``_event.data.role == 'counter' or ...``: the role firing the event travels in the
  event's data (a deadline's ``<send>`` carries ``role = 'clock'``);
- ``guard_<name>``: a ``<data>`` item of the datamodel holding the named guard's answer,
  set by the host before it sends the event (in lastresort the ``lastresort_guard`` hook
  answers it);
- a dated deadline (``from``/``until``) is a moment, which SCXML cannot compute: its
  ``<send>`` takes ``delayexpr="_event.data.deadline"``, the delay the host computes and
  sends with the event that enters the step.

docs/interchange.md shows an exported document and what each part means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from ..errors import InvalidArgument, ProtocolError
from ..protocol.conversion import format_duration
from ..protocol.files import dump_protocol, load_protocol
from ..protocol.model import (
    ACUTE_DANGER,
    ANY_STEP,
    CLOCK,
    Protocol,
    Step,
    Text,
    Transition,
    WorkingDays,
)

__all__ = [
    "LASTRESORT_NS",
    "SCXML_NS",
    "deadline_send_id",
    "from_scxml",
    "guard_variables",
    "permitted_roles",
    "scxml_problems",
    "to_scxml",
]

#: The namespace of SCXML 1.0 (W3C Recommendation, 1 September 2015).
SCXML_NS = "http://www.w3.org/2005/07/scxml"
#: The namespace of what lastresort keeps beside the statechart.
LASTRESORT_NS = "urn:lastresort:scxml:1"

_S = "{" + SCXML_NS + "}"
_L = "{" + LASTRESORT_NS + "}"
#: an XML NCName as SCXML's ``id`` attributes need (ASCII subset: the protocol's keys are ASCII)
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
#: what makes two occurrences of one ``lr:index`` the same transition
_CONTENT = (
    "event",
    "target",
    _L + "by",
    _L + "notify",
    _L + "guard",
    _L + "from",
    _L + "label",
)
#: the parts of the protocol file the statechart does not hold
_HEADER_KEYS = ("protocol", "parties", "facts", "requirements")


def permitted_roles(protocol: Protocol, source: str, transition: Transition) -> tuple[str, ...]:
    """The roles that may take ``transition`` from step ``source``: those in ``by``,
    and for a handover only the receiving party, the clock or the acute-danger path."""
    before = protocol.steps[source].responsible
    after = protocol.steps[transition.target].responsible
    receiver = after if after != before else None
    return tuple(
        role
        for role in transition.by
        if receiver is None or role in {receiver, CLOCK} or transition.event == ACUTE_DANGER
    )


def guard_variables(protocol: Protocol) -> dict[str, str]:
    """Each guard name of ``protocol`` -> the datamodel variable holding its answer
    (``guard_<name>``, letters, digits and ``_`` only; numbered when two names meet)."""
    out: dict[str, str] = {}
    for transition in protocol.transitions:
        name = transition.guard
        if name is None or name in out:
            continue
        variable = "guard_" + re.sub(r"\W", "_", name, flags=re.ASCII)
        taken = set(out.values())
        n = 2
        base = variable
        while variable in taken:
            variable = f"{base}_{n}"
            n += 1
        out[name] = variable
    return out


def deadline_send_id(step: str) -> str:
    """The ``sendid`` of the delayed ``<send>`` of ``step``'s deadline."""
    return f"lr.deadline.{step}"


def _rearm(send_id: str, event: str, after: timedelta | WorkingDays) -> str:
    if isinstance(after, WorkingDays):
        return _attrs(
            id=send_id, event=event, delayexpr="_event.data.deadline", lr__after=str(after)
        )
    return _attrs(id=send_id, event=event, delay=_delay(after))


def _delay(after: timedelta) -> str:
    ms = round(after.total_seconds() * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _condition(roles: tuple[str, ...], guard: str | None) -> str:
    if roles:
        who = " or ".join(f"_event.data.role == '{role}'" for role in roles)
    else:
        who = "_event.data.role == ''"  # no role may take it (never a valid role)
    if guard is None:
        return who
    return f"({who}) and {guard}" if len(roles) > 1 else f"{who} and {guard}"


def _attrs(**values: str | None) -> str:
    return "".join(
        f" {name.replace('__', ':').replace('_', '-') if name.startswith('lr__') else name}"
        f"={quoteattr(value)}"
        for name, value in values.items()
        if value is not None
    )


def _words(items: tuple[str, ...]) -> str | None:
    return " ".join(items) if items else None


def _check_ids(protocol: Protocol) -> None:
    for key in protocol.steps:
        if not _NCNAME.fullmatch(key):
            raise InvalidArgument(
                call="to_scxml",
                argument="protocol",
                problem=f"a protocol whose step keys are XML names: step {key!r} of"
                f" {protocol.id!r} starts with a digit or '-', which an SCXML state id cannot",
            )


def to_scxml(protocol: Protocol) -> str:
    """``protocol`` as an SCXML 1.0 document (UTF-8 text with an XML declaration).

    :raises InvalidArgument: for something that is not a :class:`Protocol`, or a step key
        that cannot be an SCXML state id (one starting with a digit or ``-``).
    """
    if not isinstance(protocol, Protocol):
        raise InvalidArgument(
            call="to_scxml",
            argument="protocol",
            problem=f"a lastresort.Protocol, not {type(protocol).__name__}",
        )
    _check_ids(protocol)
    data = dump_protocol(protocol)
    header = {key: data[key] for key in _HEADER_KEYS if key in data}
    guards = guard_variables(protocol)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<scxml xmlns="{SCXML_NS}" xmlns:lr="{LASTRESORT_NS}" version="1.0"'
        f"{_attrs(name=protocol.id, initial=protocol.initial)}>",
        "  <!-- exported by lastresort: the lr: parts keep what SCXML has no place for -->",
        '  <lr:protocol format="application/json">'
        f"{escape(json.dumps(header, ensure_ascii=False, sort_keys=False))}</lr:protocol>",
    ]
    if guards:
        out.append("  <datamodel>")
        for name, variable in guards.items():
            out.append(f"    <data{_attrs(id=variable, lr__guard=name)}/>")
        out.append("  </datamodel>")
    for key, step in protocol.steps.items():
        out.extend(_state(protocol, key, step, guards))
    out.append("</scxml>")
    return "\n".join(out) + "\n"


def _state(protocol: Protocol, key: str, step: Step, guards: Mapping[str, str]) -> Iterator[str]:
    tag = "final" if step.terminal else "state"
    yield (
        f"  <{tag}"
        + _attrs(
            id=key,
            lr__kind=step.kind.value,
            lr__responsible=step.responsible,
            lr__tags=_words(step.tags),
        )
        + ">"
    )
    if step.label is not None:
        for lang in step.label.languages():
            yield f'    <lr:label lang="{lang}">{escape(step.label.get(lang))}</lr:label>'
    for lang in step.instructions.languages():
        yield f'    <lr:instructions lang="{lang}">{escape(step.instructions.get(lang))}</lr:instructions>'
    deadline = step.deadline
    send_id = deadline_send_id(key)
    if deadline is not None:
        # working days have no fixed delay: like a dated deadline, the host computes
        # the moment (on its calendar) and passes it in the event's data
        dated = (
            deadline.since is not None
            or deadline.until is not None
            or isinstance(deadline.after, WorkingDays)
        )
        send = _attrs(
            id=send_id,
            event=deadline.event,
            delay=None
            if isinstance(deadline.after, WorkingDays) or dated
            else _delay(deadline.after),
            delayexpr="_event.data.deadline" if dated else None,
            lr__after=format_duration(deadline.after) if dated else None,
            lr__from=deadline.since,
            lr__until=deadline.until.value if deadline.until is not None else None,
            lr__example="true" if deadline.example else None,
        )
        yield "    <onentry>"
        yield f'      <send{send}><param name="role" expr="\'{CLOCK}\'"/></send>'
        yield "    </onentry>"
        yield f"    <onexit><cancel{_attrs(sendid=send_id)}/></onexit>"
    for index, transition in enumerate(protocol.transitions):
        if key not in protocol.sources_of(transition):
            continue
        guard = guards[transition.guard] if transition.guard is not None else None
        yield (
            "    <transition"
            + _attrs(
                event=transition.event,
                target=transition.target,
                cond=_condition(permitted_roles(protocol, key, transition), guard),
                lr__index=str(index),
                lr__from=" ".join(transition.sources),
                lr__by=" ".join(transition.by),
                lr__notify=_words(transition.notify),
                lr__guard=transition.guard,
                lr__label=_label_json(transition.label),
            )
            + "/>"
        )
    if deadline is not None and not step.terminal:
        # a deadline event refused now (a guard said no) is scheduled again, the same
        # ``after`` from now: a waiting step never loses its deadline (Engine.tick)
        yield (
            "    <transition"
            + _attrs(event=deadline.event, cond=f"_event.data.role == '{CLOCK}'", lr__rearm="true")
            + f"><send{_rearm(send_id, deadline.event, deadline.after)}>"
            f'<param name="role" expr="\'{CLOCK}\'"/></send></transition>'
        )
    yield f"  </{tag}>"


class _NoDoctype(ET.TreeBuilder):
    """Refuses a ``<!DOCTYPE>``: entity definitions need one (no entity expansion)."""

    def doctype(self, name: str, pubid: str, system: str) -> None:
        raise ValueError("a <!DOCTYPE> is not allowed in an SCXML document")


def _parse(text: str) -> ET.Element:
    if not isinstance(text, str):
        raise InvalidArgument(
            call="from_scxml", argument="text", problem=f"a str, not {type(text).__name__}"
        )
    try:
        return ET.fromstring(text, parser=ET.XMLParser(target=_NoDoctype()))
    except (ET.ParseError, ValueError) as exc:
        raise ProtocolError(problems=[f"$: not a well-formed SCXML document: {exc}"]) from exc


def _states(root: ET.Element) -> list[ET.Element]:
    return [el for el in root if el.tag in (_S + "state", _S + "final")]


def scxml_problems(text: str) -> list[str]:
    """The structural problems of an SCXML document (an empty list: none found).

    Checked: well-formed XML without a DOCTYPE; the root is ``<scxml>`` of the SCXML
    namespace with ``version="1.0"``; state ids are XML names and unique; ``initial`` and
    every transition's ``target`` name a state; every ``<send>`` has a ``delay`` or
    ``delayexpr`` and an ``event``; every ``<cancel>`` cancels a ``<send>`` of the document;
    no ``<final>`` has a transition.

    :raises InvalidArgument: for ``text`` that is not a str.
    """
    try:
        root = _parse(text)
    except ProtocolError as exc:
        return list(exc.problems)
    problems: list[str] = []
    if root.tag != _S + "scxml":
        return [f"$: the root element is {root.tag!r}, not <scxml> of {SCXML_NS}"]
    if root.get("version") != "1.0":
        problems.append(f"$: version is {root.get('version')!r}, not '1.0'")
    ids: dict[str, int] = {}
    for el in root.iter():
        if el.tag in (_S + "state", _S + "final", _S + "parallel", _S + "history"):
            sid = el.get("id")
            if sid is None or not _NCNAME.fullmatch(sid):
                problems.append(f"$.{el.tag.removeprefix(_S)}: id {sid!r} is not an XML name")
            elif sid in ids:
                problems.append(f"$.state[{sid}]: the id is used twice")
            ids[sid or ""] = ids.get(sid or "", 0) + 1
    initial = root.get("initial")
    if initial is None or any(part not in ids for part in initial.split()):
        problems.append(f"$: initial {initial!r} names no state")
    sends = {el.get("id") for el in root.iter(_S + "send")}
    for state in root.iter():
        if state.tag not in (_S + "state", _S + "final"):
            continue
        where = f"$.{state.tag.removeprefix(_S)}[{state.get('id')}]"
        for transition in state.findall(_S + "transition"):
            if state.tag == _S + "final":
                problems.append(f"{where}: a <final> state cannot have transitions")
            target = transition.get("target")
            if target is not None and any(part not in ids for part in target.split()):
                problems.append(
                    f"{where}.transition[{transition.get('event')}]: target {target!r} names no state"
                )
            if transition.get("event") is None:
                problems.append(f"{where}.transition: no event")
        for send in state.iter(_S + "send"):
            if send.get("event") is None:
                problems.append(f"{where}.send: no event")
            if send.get("delay") is None and send.get("delayexpr") is None:
                problems.append(f"{where}.send[{send.get('event')}]: neither delay nor delayexpr")
        for cancel in state.iter(_S + "cancel"):
            if cancel.get("sendid") not in sends:
                problems.append(f"{where}.cancel: sendid {cancel.get('sendid')!r} names no <send>")
    return problems


def _label_json(label: Text | None) -> str | None:
    """A transition's label as the JSON of its file form (an attribute: SCXML's
    ``<transition>`` holds executable content, not texts)."""
    if label is None:
        return None
    return json.dumps({lang: label.get(lang) for lang in label.languages()}, ensure_ascii=False)


def _texts(state: ET.Element, tag: str) -> dict[str, str]:
    return {el.get("lang") or "": el.text or "" for el in state.findall(_L + tag)}


def _split(value: str | None) -> list[str]:
    return value.split() if value else []


def from_scxml(text: str, *, check: bool = True) -> Protocol:
    """The protocol of an SCXML document written by :func:`to_scxml`:
    ``from_scxml(to_scxml(p)) == p``.

    The statechart is read first: the states (their order, ids, ``<final>``), each
    transition's event, target and source states, and a plain deadline's ``delay``
    come from the SCXML elements, so an edit made in an SCXML tool is an edit of the
    protocol; the lastresort namespace gives the rest. A transition the document lists
    in exactly the steps its ``lr:from`` names keeps that list (or ``*``); moved
    elsewhere, it leaves from the states it is now in.

    :param check: validate the protocol (as :func:`~lastresort.load_protocol`).
    :raises ProtocolError: with every problem found, each with its place in the document.
    :raises InvalidArgument: for ``text`` that is not a str.
    """
    root = _parse(text)
    problems = scxml_problems(text)
    if problems:
        raise ProtocolError(problems=problems)
    block = root.find(_L + "protocol")
    if block is None:
        raise ProtocolError(
            problems=["$: no <lr:protocol> element: the document was not written by lastresort"]
        )
    try:
        header = json.loads(block.text or "")
    except json.JSONDecodeError as exc:
        raise ProtocolError(problems=[f"$.lr:protocol: not JSON: {exc}"]) from exc
    if not isinstance(header, dict) or not isinstance(header.get("protocol"), dict):
        raise ProtocolError(problems=["$.lr:protocol: not a table with a 'protocol' table"])
    header["protocol"]["initial"] = root.get("initial")
    if root.get("name") is not None:
        header["protocol"]["id"] = root.get("name")
    steps: dict[str, Any] = {}
    # one transition of the protocol per lr:index and content: an occurrence edited in a
    # tool (another target, say) becomes a transition of its own, from the states it is in
    found: dict[tuple[int, tuple[str | None, ...]], list[tuple[str, ET.Element]]] = {}
    added: list[tuple[str, ET.Element]] = []
    for state in _states(root):
        key = state.get("id", "")
        steps[key] = _step(state, key, problems)
        for transition in state.findall(_S + "transition"):
            if transition.get(_L + "rearm") == "true":
                continue
            index = transition.get(_L + "index")
            if index is not None and index.isdigit():
                content = tuple(transition.get(name) for name in _CONTENT)
                found.setdefault((int(index), content), []).append((key, transition))
            else:
                added.append((key, transition))
    order = sorted(found, key=lambda group: group[0])  # stable: first occurrence first
    transitions = [_transition(found[group], steps, problems) for group in order]
    transitions.extend(_transition([entry], steps, problems) for entry in added)
    if problems:
        raise ProtocolError(problems=problems)
    data: dict[str, Any] = {**header, "steps": steps, "transitions": transitions}
    return load_protocol(data, check=check)


def _step(state: ET.Element, key: str, problems: list[str]) -> dict[str, Any]:
    where = f"$.state[{key}]"
    texts = _texts(state, "instructions")
    step: dict[str, Any] = {
        "kind": state.get(_L + "kind", "terminal" if state.tag == _S + "final" else "active"),
        "instructions": {"nl": texts.pop("nl", ""), "en": texts.pop("en", ""), **texts},
    }
    if state.find(_L + "label") is not None:
        step["label"] = _texts(state, "label")
    if state.get(_L + "responsible") is not None:
        step["responsible"] = state.get(_L + "responsible")
    send = state.find(f"{_S}onentry/{_S}send")
    if send is not None:
        deadline: dict[str, Any] = {"event": send.get("event")}
        after = send.get(_L + "after")
        if after is not None:
            deadline["after"] = after
        else:
            deadline["after"] = _seconds(send.get("delay"), where, problems)
        if send.get(_L + "example") == "true":
            deadline["example"] = True
        for name in ("until", "from"):
            if send.get(_L + name) is not None:
                deadline[name] = send.get(_L + name)
        step["deadline"] = deadline
    if state.get(_L + "tags"):
        step["tags"] = _split(state.get(_L + "tags"))
    return step


def _seconds(delay: str | None, where: str, problems: list[str]) -> str:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*", delay or "")
    if match is None:
        problems.append(f"{where}.send: delay {delay!r} is not a duration such as '2700s'")
        return "0s"
    number, unit = float(match[1]), match[2]
    seconds = (
        number / 1000 if unit == "ms" else number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    )
    return format_duration(timedelta(seconds=seconds))


def _transition(
    places: list[tuple[str, ET.Element]], steps: Mapping[str, Any], problems: list[str]
) -> dict[str, Any]:
    key, first = places[0]
    where = f"$.state[{key}].transition[{first.get('event')}]"
    sources = [source for source, _ in places]
    declared = _split(first.get(_L + "from"))
    expanded = (
        [k for k, s in steps.items() if s["kind"] != "terminal"]
        if declared == [ANY_STEP]
        else declared
    )
    if set(expanded) == set(sources):
        sources = declared
    if first.get(_L + "by") is None:
        problems.append(f"{where}: no lr:by (the roles that may fire it)")
    out: dict[str, Any] = {
        "event": first.get("event"),
        "from": sources,
        "to": first.get("target"),
        "by": _split(first.get(_L + "by")),
    }
    if first.get(_L + "notify"):
        out["notify"] = _split(first.get(_L + "notify"))
    if first.get(_L + "guard") is not None:
        out["guard"] = first.get(_L + "guard")
    label = first.get(_L + "label")
    if label is not None:
        try:
            out["label"] = json.loads(label)
        except json.JSONDecodeError:
            problems.append(f"{where}: lr:label is not JSON")
    return out
