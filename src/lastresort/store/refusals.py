"""Refused attempts: who tried what, when, on which encounter, and why it was refused.

A :class:`Refusal` is kept in an append-only log of its own, separate from the
encounters: recording one never changes an encounter's state, version, timeline or
event hash chain. Every field is an identifier or a code of a fixed form (no facts,
no guard reason text, no free text), checked by :func:`refusal_problem` before it is
written, so that nothing of a child can enter the log.

The stores that keep files (SQLite, PostgreSQL) chain the log by hash, like the
events::

    hash = sha256(prev \\n seq \\n refusal_json)

``refusal_json`` is :func:`refusal_json` (canonical JSON without ``seq``), ``prev``
the previous refusal's hash (:data:`~lastresort.store.audit.GENESIS` for the first),
and a one-row head (``refusal_head``) holds the last ``(seq, hash)``, so that deleting
the last refusal is detected too. ``lastresort audit verify`` checks the chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import frozen

from ..arguments import check_page_limit
from ..errors import Category, InvalidArgument
from ..privacy import ACTOR_ID, ROLE, describe, holds_bsn, is_bsn

__all__ = [
    "CODE",
    "UNKNOWN_ROLE",
    "Refusal",
    "check_refusal",
    "check_refusals_query",
    "load_refusal",
    "refusal_json",
    "refusal_link",
    "refusal_problem",
    "refusals_query",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

#: A code: what ``action`` and ``reason`` may be (an event name, ``open``,
#: ``http:fire``, an error class name, ``guard:<guard name>``, ``unauthenticated``).
CODE = re.compile(r"[a-z_:A-Z0-9.-]{1,80}")
#: No run of eight or more digits in a code (no citizen service number fits in one).
_DIGITS = re.compile(r"[0-9]{8}")
#: The ``actor_role`` of a refusal whose actor had no role of a role key's form (the
#: value given is not kept: it could be a name).
UNKNOWN_ROLE = "?"


@frozen(kw_only=True)
class Refusal:
    """One refused attempt, as the refusal log keeps it.

    :param seq: its number in the log (global order, 1, 2, 3, ...; assigned by the
        store, ``0`` before it is recorded).
    :param at: when (UTC).
    :param actor_role: the actor's role (``"?"`` when what was given had not a role's
        form).
    :param actor_id: the actor's pseudonymous id, ``None`` when the caller gave none.
    :param action: what was tried: the event name, ``"open"``, or an action an
        embedder names (``"http:fire"``).
    :param encounter_id: the encounter, if one was named and exists.
    :param step: the encounter's step at the time, if any.
    :param version: the encounter's version at the time, if any.
    :param category: the refusing error's :class:`~lastresort.Category`.
    :param reason: a code: the error class name (``"NotPermitted"``),
        ``"guard:<guard name>"`` or an embedder's code (``"unauthenticated"``); never
        free text.
    :param protocol: the protocol id, if known.
    """

    seq: int = 0
    at: datetime
    actor_role: str
    actor_id: str | None
    action: str
    encounter_id: str | None = None
    step: str | None = None
    version: int | None = None
    category: Category
    reason: str
    protocol: str | None = None


def _code_problem(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"{name} must be a string, got {describe(value)}"
    if not CODE.fullmatch(value) or _DIGITS.search(value):
        return (
            f"{name} must be a code: 1 to 80 letters, digits, '_', ':', '.' or '-', with no"
            f" run of 8 digits (never free text); got {describe(value)}"
        )
    return None


def _id_problem(name: str, value: object, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not ACTOR_ID.fullmatch(value) or holds_bsn(value):
        return (
            f"{name} must be {'None or ' if optional else ''}an identifier: 1 to 64 letters,"
            f" digits, '.', '_', ':' or '-' starting with a letter or digit, not a citizen"
            f" service number; got {describe(value)}"
        )
    return None


def refusal_problem(refusal: Refusal) -> tuple[str, str] | None:
    """The first field of ``refusal`` that may not be kept, and why (``None`` when every
    field may). Never quotes a value."""
    r = refusal
    checks: list[tuple[str, str | None]] = []
    if type(r.seq) is not int or r.seq < 0:
        checks.append(("seq", f"seq must be a whole number >= 0, got {describe(r.seq)}"))
    if not isinstance(r.at, datetime) or r.at.tzinfo is None or r.at.utcoffset() is None:
        checks.append(("at", f"at must be a timezone-aware datetime, got {describe(r.at)}"))
    role = r.actor_role
    if role != UNKNOWN_ROLE and (
        not isinstance(role, str) or not ROLE.fullmatch(role) or is_bsn(role)
    ):
        checks.append(("actor_role", f"actor_role must be a role key or '?', got {describe(role)}"))
    checks.append(("actor_id", _id_problem("actor_id", r.actor_id)))
    checks.append(("action", _code_problem("action", r.action)))
    checks.append(("encounter_id", _id_problem("encounter_id", r.encounter_id)))
    if r.step is not None:
        checks.append(("step", _code_problem("step", r.step)))
    if r.version is not None and (type(r.version) is not int or r.version < 1):
        checks.append(
            ("version", f"version must be None or a whole number >= 1, got {describe(r.version)}")
        )
    if not isinstance(r.category, Category):
        checks.append(("category", f"category must be a Category, got {describe(r.category)}"))
    checks.append(("reason", _code_problem("reason", r.reason)))
    checks.append(("protocol", _id_problem("protocol", r.protocol)))
    for name, problem in checks:
        if problem is not None:
            return name, problem
    return None


def check_refusal(call: str, refusal: object) -> Refusal:
    """Refuse anything but a :class:`Refusal` whose every field may be kept (every
    store calls this first, so all refuse alike).

    :raises InvalidArgument: naming the field and what it must be; nothing is written."""
    if not isinstance(refusal, Refusal):
        raise InvalidArgument(
            call=call, argument="refusal", problem=f"a Refusal, not {type(refusal).__name__}"
        )
    found = refusal_problem(refusal)
    if found is not None:
        raise InvalidArgument(
            call=call, argument=found[0], problem=found[1].split(" must be ", 1)[-1]
        )
    return refusal


def check_refusals_query(
    call: str,
    encounter_id: object,
    since: object,
    limit: object,
    after_seq: object,
) -> None:
    """The arguments of a refusal query (``Engine.refusals`` and every store's
    ``refusals``). :raises InvalidArgument: naming the argument; nothing is read."""
    if encounter_id is not None and not isinstance(encounter_id, str):
        raise InvalidArgument(
            call=call,
            argument="encounter_id",
            problem=f"None or a string, not {describe(encounter_id)}",
        )
    if since is not None and (
        not isinstance(since, datetime) or since.tzinfo is None or since.utcoffset() is None
    ):
        raise InvalidArgument(
            call=call,
            argument="since",
            problem=f"None or a timezone-aware datetime, not {describe(since)}",
        )
    check_page_limit(call, limit)
    if after_seq is not None and (type(after_seq) is not int or after_seq < 0):
        raise InvalidArgument(
            call=call,
            argument="after_seq",
            problem=f"None or a whole number >= 0, not {describe(after_seq)}",
        )


def _dump(refusal: Refusal) -> dict[str, Any]:
    return {
        "at": refusal.at.astimezone(UTC).isoformat(),
        "actor_role": refusal.actor_role,
        "actor_id": refusal.actor_id,
        "action": refusal.action,
        "encounter_id": refusal.encounter_id,
        "step": refusal.step,
        "version": refusal.version,
        "category": refusal.category.value,
        "reason": refusal.reason,
        "protocol": refusal.protocol,
    }


def refusal_json(refusal: Refusal) -> str:
    """The canonical JSON of a refusal as stored and hashed (without ``seq``)."""
    return json.dumps(_dump(refusal), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def load_refusal(seq: int, data: str) -> Refusal:
    """A stored refusal from its number and its :func:`refusal_json`.

    :raises ValueError: (``KeyError``, ``TypeError`` too) when the data is not one."""
    raw = json.loads(data)
    version = raw["version"]
    return Refusal(
        seq=seq,
        at=datetime.fromisoformat(raw["at"]),
        actor_role=raw["actor_role"],
        actor_id=raw["actor_id"],
        action=raw["action"],
        encounter_id=raw["encounter_id"],
        step=raw["step"],
        version=None if version is None else int(version),
        category=Category(raw["category"]),
        reason=raw["reason"],
        protocol=raw["protocol"],
    )


def refusals_query(
    encounter_id: str | None,
    since: datetime | None,
    limit: int,
    after_seq: int | None,
    mark: str,
) -> tuple[str, tuple[Any, ...]]:
    """The SQL of a refusal query on the ``refusals`` table (SQLite's and PostgreSQL's:
    ``mark`` is the parameter mark, ``?`` or ``%s``) and its parameters."""
    where = [f"seq > {mark}"]
    args: list[Any] = [after_seq or 0]
    if encounter_id is not None:
        where.append(f"encounter_id = {mark}")
        args.append(encounter_id)
    if since is not None:
        where.append(f"at_us >= {mark}")
        args.append((since - _EPOCH) // _MICRO)
    args.append(limit)
    sql = f"SELECT seq, data FROM refusals WHERE {' AND '.join(where)} ORDER BY seq LIMIT {mark}"
    return sql, tuple(args)


def refusal_link(prev: str, seq: int, data: str) -> str:
    """The hash of refusal number ``seq`` (see the module docstring)."""
    return hashlib.sha256(f"{prev}\n{seq}\n{data}".encode()).hexdigest()
