"""Party groups: a flow declared once for several parties, expanded when a file is loaded.

A file may declare ``[groups] expert = ["vangnet", "veilig_thuis"]``. Then

- a step or transition that writes ``{expert}`` anywhere (in a step's key, a reference,
  an event name, a label) is a template: it stands for one copy per member, with
  ``{expert}`` replaced by the member's key, and in texts (``label``, ``instructions``)
  by the member's name in that text's language;
- ``"@expert"`` in a ``by`` or ``notify`` list stands for all members.

The protocol that comes out is the expanded one: the engine, the verifier, the SCXML
export and the simulator never see a group. Problems in a copy are reported at the
template's place in the file, with the member they concern (:class:`Expansion`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from .conversion import _key_path, suggest

__all__ = ["Expansion", "expand_groups"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
#: tables whose keys are languages: a placeholder there becomes the member's name
_TEXTS = {"label", "instructions"}


@frozen
class Expansion:
    """What expanding the groups did: the expanded data, and where each copy came from.

    :param data: the file's data with every template replaced by its copies.
    :param origins: path of a copy (``$.steps.with_vangnet``, ``$.transitions[4]``) ->
        (path of its template in the file, group, member); copies of nothing but their
        position (a plain transition moved by copies before it) have no group.
    :param problems: problems of the groups themselves, located in the file.
    """

    data: Mapping[str, Any]
    origins: Mapping[str, tuple[str, str | None, str | None]]
    problems: tuple[str, ...] = ()

    def locate(self, problem: str) -> str:
        """``problem`` with a copy's path turned into its template's, naming the member."""
        path, sep, message = problem.partition(": ")
        if not sep:
            return problem
        for prefix in sorted(self.origins, key=len, reverse=True):
            if path == prefix or path.startswith((prefix + ".", prefix + "[")):
                origin, group, member = self.origins[prefix]
                where = f" (in the copy for {group} = {member!r})" if group else ""
                return f"{origin}{path[len(prefix) :]}: {message}{where}"
        return problem


def _groups_used(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        found.update(_PLACEHOLDER.findall(value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _groups_used(key, found)
            _groups_used(item, found)
    elif isinstance(value, list):
        for item in value:
            _groups_used(item, found)


def _name_of(parties: Mapping[str, Any], member: str, lang: str) -> str:
    party = parties.get(member)
    name = party.get("name") if isinstance(party, Mapping) else None
    if isinstance(name, Mapping):
        text = name.get(lang, name.get("en"))
        if isinstance(text, str) and text:
            return text
    return member


def _fill(value: Any, group: str, member: str, parties: Mapping[str, Any], lang: str | None) -> Any:
    """``value`` with ``{group}`` replaced: by ``member`` in keys and references, by the
    member's name in ``lang`` inside a text (a ``label`` or ``instructions`` table)."""
    if isinstance(value, str):
        shown = member if lang is None else _name_of(parties, member, lang)
        return value.replace("{" + group + "}", shown)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key in _TEXTS and isinstance(item, Mapping):
                out[key] = {k: _fill(v, group, member, parties, str(k)) for k, v in item.items()}
            else:
                out[_fill(key, group, member, parties, None)] = _fill(
                    item, group, member, parties, None
                )
        return out
    if isinstance(value, list):
        return [_fill(v, group, member, parties, lang) for v in value]
    return value


def _members(value: Any, groups: Mapping[str, list[str]]) -> Any:
    """``@group`` in a ``by`` or ``notify`` list: every member, in the group's order."""
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, str) and item.startswith("@") and item[1:] in groups:
            out.extend(m for m in groups[item[1:]] if m not in out)
        else:
            out.append(item)
    return out


def _read_groups(data: Mapping[str, Any], problems: list[str]) -> dict[str, list[str]]:
    raw = data.get("groups", {})
    if not isinstance(raw, Mapping):
        problems.append("$.groups: expected a table of group names and party keys")
        return {}
    parties = data.get("parties")
    party_keys = list(parties) if isinstance(parties, Mapping) else None
    groups: dict[str, list[str]] = {}
    for name, members in raw.items():
        path = _key_path("$.groups", name)
        if not isinstance(name, str) or not _GROUP_NAME.match(name):
            problems.append(f"{path}: group name {name!r} is not a plain name")
            continue
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            problems.append(f"{path}: expected a list of party keys")
            continue
        if not members:
            problems.append(f"{path}: names no party")
        for j, member in enumerate(members):
            if member in members[:j]:
                problems.append(f"{path}[{j}]: {member!r} is named twice")
            elif party_keys is not None and member not in party_keys:
                problems.append(
                    f"{path}[{j}]: unknown party {member!r}{suggest(member, party_keys)}"
                )
        if party_keys is not None and name in party_keys:
            problems.append(f"{path}: a party has the same key; name the group differently")
        groups[name] = list(dict.fromkeys(members))
    return groups


def _group_of(
    item: Any, path: str, groups: Mapping[str, list[str]], problems: list[str]
) -> str | None:
    used: set[str] = set()
    _groups_used(item, used)
    if not used:
        return None
    unknown = sorted(used - set(groups))
    for name in unknown:
        problems.append(f"{path}: unknown group {{{name}}}{suggest(name, list(groups))}")
    known = sorted(used & set(groups))
    if len(known) > 1:
        problems.append(f"{path}: a template uses one group, not {', '.join(known)}")
    return known[0] if len(known) == 1 and not unknown else None


def expand_groups(data: Mapping[str, Any]) -> Expansion:
    """Expand the templates and ``@group`` lists of a protocol file's data.

    :param data: the file's data (a table), as read.
    :returns: the expanded data, where each copy came from, and the groups' problems.
    """
    problems: list[str] = []
    groups = _read_groups(data, problems)
    origins: dict[str, tuple[str, str | None, str | None]] = {}
    has_templates = "groups" in data
    if not has_templates:
        return Expansion(data, origins)
    raw_parties = data.get("parties")
    parties: Mapping[str, Any] = raw_parties if isinstance(raw_parties, Mapping) else {}
    out = dict(data)
    raw_steps = data.get("steps")
    if isinstance(raw_steps, Mapping):
        steps: dict[Any, Any] = {}
        for key, step in raw_steps.items():
            path = _key_path("$.steps", key)
            group = _group_of({key: step}, path, groups, problems)
            if group is None:
                if key in steps:
                    problems.append(f"{path}: a copy of a template has this key already")
                steps[key] = step
                continue
            if "{" + group + "}" not in str(key):
                problems.append(
                    f"{path}: a step template's key must contain {{{group}}}, so that each"
                    " copy has a key of its own"
                )
                continue
            for member in groups[group]:
                copy_key = _fill(key, group, member, parties, None)
                if copy_key in steps or copy_key in raw_steps:
                    problems.append(
                        f"{path}: the copy for {group} = {member!r} is step {copy_key!r},"
                        " which exists already"
                    )
                    continue
                steps[copy_key] = _fill(step, group, member, parties, None)
                origins[_key_path("$.steps", copy_key)] = (path, group, member)
        out["steps"] = steps
    raw_transitions = data.get("transitions")
    if isinstance(raw_transitions, list):
        transitions: list[Any] = []
        for i, transition in enumerate(raw_transitions):
            path = f"$.transitions[{i}]"
            group = _group_of(transition, path, groups, problems)
            members: list[str | None] = list(groups[group]) if group is not None else [None]
            for one in members:
                copy = transition
                if group is not None and one is not None:
                    copy = _fill(transition, group, one, parties, None)
                if isinstance(copy, Mapping):
                    copy = {
                        k: _members(v, groups) if k in ("by", "notify") else v
                        for k, v in copy.items()
                    }
                origins[f"$.transitions[{len(transitions)}]"] = (path, group, one)
                transitions.append(copy)
        out["transitions"] = transitions
    return Expansion(out, origins, tuple(problems))
