"""The JSON Schema (draft 2020-12) of the protocol file format, generated from the model.

The schema is derived from the attrs classes the loader structures a file into
(:class:`~lastresort.protocol.files._ProtocolFile` and the classes of its fields), with
the file names of renamed keys (``from``, ``to``), so that every key the loader accepts is
in the schema and no other. The names' and slugs' patterns are those of validation.

The generated schema is shipped as ``lastresort/protocol/schema/protocol.schema.json``
(a test keeps the file equal to :func:`protocol_schema`), printed by
``lastresort schema``, and read by editors (taplo / Even Better TOML) through a
``#:schema`` line; see docs/protocol-format.md.
"""

from __future__ import annotations

import enum
import json
import re
import types
from datetime import timedelta
from importlib import resources
from typing import Any, Union, get_args, get_origin

import attrs

from ..privacy import CHANNEL, FACT_NAME
from .conversion import _RENAMES
from .files import _Header, _ProtocolFile
from .model import (
    ANY_STEP,
    LANGUAGE_TAG,
    Deadline,
    Fact,
    ResponseModel,
    Step,
    Text,
    Transition,
    WorkingDays,
)

__all__ = ["SCHEMA_RESOURCE", "protocol_schema", "schema_text", "shipped_schema_text"]

#: The shipped schema inside the package ``lastresort.protocol``.
SCHEMA_RESOURCE = "schema/protocol.schema.json"

#: A duration as :func:`~lastresort.protocol.conversion.parse_duration` reads it: the
#: compact form (largest unit first) or ISO 8601 without months or years.
DURATION_PATTERN = (
    r"^\s*(?=.*\d)(?:(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?"
    r"|[Pp](?:\d+[Ww])?(?:\d+[Dd])?(?:[Tt](?:\d+[Hh])?(?:\d+[Mm])?(?:\d+(?:\.\d+)?[Ss])?)?)\s*$"
)
#: Working days as :func:`~lastresort.protocol.conversion.parse_deadline_duration` reads
#: them (a deadline's ``after`` only).
WORKING_DAYS_PATTERN = r"^\s*\d+wd\s*$"
#: Step keys, party keys and event names (validation's plain names).
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"
#: Step keys of a file: plain names, or templates with a ``{group}`` placeholder.
STEP_KEY_PATTERN = (
    r"^(?:[A-Za-z0-9_]|\{[A-Za-z0-9_][A-Za-z0-9_-]*\})"
    r"(?:[A-Za-z0-9_-]|\{[A-Za-z0-9_][A-Za-z0-9_-]*\})*$"
)

#: Fields the loader reads as "a name or a list of names" (the converter's ``_names``).
_NAMES_FIELDS = {
    (Step, "tags"),
    (Transition, "sources"),
    (Transition, "by"),
    (Transition, "notify"),
}
#: Map keys: the pattern each table's keys must match.
_KEY_PATTERNS = {
    "parties": NAME_PATTERN,
    "steps": STEP_KEY_PATTERN,
    "groups": NAME_PATTERN,
    "facts": f"^{FACT_NAME.pattern}$",
}


def _file_key(cls: type, name: str) -> str:
    return _RENAMES.get(name, name) if cls in (Transition, Deadline) else name


def _descriptions(cls: type) -> dict[str, str]:
    """``:param name: text`` of a class's docstring, one line each."""
    found: dict[str, str] = {}
    doc = cls.__doc__ or ""
    for match in re.finditer(r":param (\w+):(.*?)(?=\n\s*:|\n\s*\n|\Z)", doc, re.S):
        found[match.group(1)] = _plain(match.group(2))
    return found


def _plain(doc: str) -> str:
    """Docstring text as plain text: one line, `code` in single backticks, no roles."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", " ".join(doc.split()))
    return text.replace("``", "`")


def _names(item: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [item, {"type": "array", "items": item}]}


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def ref(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        self.defs.setdefault(name, schema)
        return {"$ref": f"#/$defs/{name}"}

    def of(self, kind: Any, owner: type | None = None, field: str = "") -> dict[str, Any]:
        origin = get_origin(kind)
        if origin in (Union, types.UnionType):
            others = [a for a in get_args(kind) if a is not type(None)]
            if len(others) == 1:
                return self.of(others[0], owner, field)  # a file leaves an optional key out
            return {"anyOf": [self.of(a) for a in others]}
        if owner is not None and (owner, field) in _NAMES_FIELDS:
            item: dict[str, Any] = {"type": "string"}
            if owner is Transition and field == "sources":
                every = {"const": ANY_STEP, "description": "every non-terminal step"}
                return {"anyOf": [every, item, {"type": "array", "items": item}]}
            return _names(item)
        if kind is str:
            return {"type": "string"}
        if kind is bool:
            return {"type": "boolean"}
        if kind is int:
            return {"type": "integer"}
        if kind is float:
            return {"type": "number"}
        if kind is WorkingDays:
            return self.ref(
                "working_days",
                {
                    "type": "string",
                    "pattern": WORKING_DAYS_PATTERN,
                    "description": "whole working days in the protocol's time zone: 2wd",
                },
            )
        if kind is timedelta:
            return self.ref(
                "duration",
                {
                    "type": "string",
                    "pattern": DURATION_PATTERN,
                    "description": "a duration: 45m, 2h, 10d, 1h30m, 2w, or ISO 8601 (PT45M)",
                },
            )
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return {"enum": [member.value for member in kind]}
        if kind is Text:
            return self.ref(
                "text",
                {
                    "type": "object",
                    "description": "a text shown to people, in Dutch and English, and in"
                    " any further language by its tag (fy, pl, ...)",
                    "properties": {
                        "nl": {"type": "string", "minLength": 1},
                        "en": {"type": "string", "minLength": 1},
                    },
                    "patternProperties": {LANGUAGE_TAG: {"type": "string", "minLength": 1}},
                    "required": ["nl", "en"],
                    "additionalProperties": False,
                },
            )
        if kind is Fact:
            return self.ref(
                "fact",
                {
                    "description": '"bool", or the list of the values the fact may take',
                    "oneOf": [
                        {"const": "bool"},
                        {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 1,
                            "uniqueItems": True,
                        },
                    ],
                },
            )
        if origin is dict:
            _, value = get_args(kind)
            out: dict[str, Any] = {"type": "object", "additionalProperties": self.of(value)}
            if field in _KEY_PATTERNS:
                out["propertyNames"] = {"pattern": _KEY_PATTERNS[field]}
            return out
        if origin in (list, tuple):
            item_kind = get_args(kind)[0]
            items = self.of(item_kind)
            if field == "channels":
                items = {"type": "string", "pattern": f"^{CHANNEL.pattern}$"}
                return {"type": "array", "items": items, "minItems": 1, "uniqueItems": True}
            return {"type": "array", "items": items}
        if attrs.has(kind):
            return self.ref(_def_name(kind), self.table(kind))
        raise TypeError(f"no schema for {kind!r} ({owner.__name__ if owner else ''}.{field})")

    def table(self, cls: type) -> dict[str, Any]:
        fields = attrs.fields_dict(cls)
        hints = attrs.resolve_types(cls)
        descriptions = _descriptions(cls)
        properties: dict[str, Any] = {}
        required = []
        for name, field in fields.items():
            if name == "key":  # filled from the table's key, never written
                continue
            key = _file_key(cls, name)
            schema = self.of(attrs.fields_dict(hints)[name].type, cls, name)
            if name in descriptions:
                schema = {"description": descriptions[name], **schema}
            properties[key] = schema
            if field.default is attrs.NOTHING:
                required.append(key)
        out: dict[str, Any] = {"type": "object"}
        first = (cls.__doc__ or "").strip().split("\n\n")[0]
        if first and cls not in (_ProtocolFile, _Header):
            out["description"] = _plain(first)
        out["properties"] = properties
        if required:
            out["required"] = required
        out["additionalProperties"] = False
        return out


def _def_name(cls: type) -> str:
    names = {
        _Header: "header",
        ResponseModel: "response",
    }
    return names.get(cls, re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower())


def protocol_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a protocol file, from the model."""
    builder = _Builder()
    body = builder.table(_ProtocolFile)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lastresort.invalid/schema/protocol.schema.json",
        "title": "lastresort protocol",
        "description": "A municipality's 'mayor as last resort' arrangement: parties, steps,"
        " transitions, facts and requirements (docs/protocol-format.md). Generated from the"
        " model by lastresort.protocol.json_schema; `lastresort schema` prints it.",
        **body,
        "$defs": dict(sorted(builder.defs.items())),
    }


def schema_text() -> str:
    """:func:`protocol_schema` as the shipped file's text (2-space indent, final newline)."""
    return json.dumps(protocol_schema(), indent=2, ensure_ascii=False) + "\n"


def shipped_schema_text() -> str:
    """The text of the schema file shipped in the package."""
    return (resources.files("lastresort.protocol") / SCHEMA_RESOURCE).read_text(encoding="utf-8")
