"""Who is calling: API tokens bound to one party and one pseudonymous actor id.

A token is shown once, when it is made, as ``lr_<token id>_<secret>``; only the
SHA-256 hash of the whole token is kept, and a presented token is compared with the
kept hash in constant time. The credential a token stands for names the party (a
role of the protocols, e.g. ``counter``), the actor id (the person's pseudonym,
recorded in every step they take), the protocols it may act in (``*``: all), and its
scopes (``act``: open and fire; ``audit``: read the refusal log). The service takes
the actor of every write from the credential, never from the request, so a counter
clerk cannot act as the expert or the mayor, and the engine's own permission rules
apply on top.

Other identity providers (OIDC / JWT) plug in as a :data:`Verifier`: a function from
the bearer token to a :class:`Credential` (see docs/service.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from attrs import evolve, frozen

from ..errors import InvalidArgument, StoreError
from ..privacy import actor_id_problem, role_problem
from ..protocol.model import CLOCK, Actor

__all__ = ["SCOPES", "Credential", "CredentialStore", "Unauthenticated", "Verifier"]

#: what a credential may be allowed to do
SCOPES = ("act", "audit")
#: roles the engine itself acts as: never a credential's party
_RESERVED = {CLOCK, "outbox"}
_TOKEN = re.compile(r"lr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_PROTOCOL = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}|\*")


class Unauthenticated(Exception):
    """No credential: the request carries no token, or one that is unknown, malformed
    or revoked (which of these is not told to the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        #: a code for the refusal log: ``missing``, ``malformed``, ``unknown``, ``revoked``
        self.reason = reason


@frozen(kw_only=True)
class Credential:
    """What a token stands for.

    :param token_id: the token's public id (in ``lr_<token id>_<secret>``).
    :param party: the role the holder acts as (never ``clock`` or ``outbox``).
    :param actor_id: the holder's pseudonymous id, recorded with every step.
    :param protocols: the protocol ids it may act in; ``("*",)`` for all.
    :param scopes: what it may do: ``act`` (open, fire), ``audit`` (read refusals).
    :param created_at: when it was made.
    :param revoked_at: when it was revoked, if it was.
    """

    token_id: str
    party: str
    actor_id: str
    protocols: tuple[str, ...] = ("*",)
    scopes: tuple[str, ...] = ("act",)
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def actor(self) -> Actor:
        """The engine actor of this credential's holder."""
        return Actor(self.party, self.actor_id)

    def may_act_in(self, protocol_id: str) -> bool:
        """Whether the credential may act in ``protocol_id``."""
        return "*" in self.protocols or protocol_id in self.protocols


#: a pluggable token verifier (e.g. for OIDC JWTs): the bearer token -> a credential;
#: raise :class:`Unauthenticated` to refuse it
Verifier = Callable[[str], Credential]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _check(party: object, actor_id: object, protocols: object, scopes: object) -> None:
    problem = role_problem(party)
    if problem is None and party in _RESERVED:
        problem = f"{party!r} is the engine's own role"
    if problem is not None:
        raise InvalidArgument(call="CredentialStore.add", argument="party", problem=problem)
    problem = actor_id_problem(actor_id)
    if problem is not None or actor_id is None:
        raise InvalidArgument(
            call="CredentialStore.add",
            argument="actor_id",
            problem=problem or "a pseudonymous id is required",
        )
    if (
        not isinstance(protocols, tuple)
        or not protocols
        or not all(isinstance(p, str) and _PROTOCOL.fullmatch(p) for p in protocols)
    ):
        raise InvalidArgument(
            call="CredentialStore.add",
            argument="protocols",
            problem="one or more protocol ids, or '*' for all",
        )
    if (
        not isinstance(scopes, tuple)
        or not scopes
        or not all(s in SCOPES for s in scopes)
        or len(set(scopes)) != len(scopes)
    ):
        raise InvalidArgument(
            call="CredentialStore.add",
            argument="scopes",
            problem=f"one or more of {', '.join(SCOPES)}, each once",
        )


class CredentialStore:
    """API tokens, kept as hashes: in memory, or in a JSON file (written atomically,
    mode 0600) when ``path`` is given.

    :param path: the file; created on the first :meth:`add` when missing.
    :raises StoreError: when the file exists but is not a credentials file.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._by_id: dict[str, tuple[str, Credential]] = {}
        if self.path is not None and self.path.exists():
            self._by_id = self._read(self.path)

    @staticmethod
    def _read(path: Path) -> dict[str, tuple[str, Credential]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found = {}
            for row in data["tokens"]:
                credential = Credential(
                    token_id=row["id"],
                    party=row["party"],
                    actor_id=row["actor_id"],
                    protocols=tuple(row["protocols"]),
                    scopes=tuple(row["scopes"]),
                    created_at=datetime.fromisoformat(row["created_at"]),
                    revoked_at=(
                        datetime.fromisoformat(row["revoked_at"]) if row["revoked_at"] else None
                    ),
                )
                _check(
                    credential.party, credential.actor_id, credential.protocols, credential.scopes
                )
                if not re.fullmatch(r"[0-9a-f]{64}", row["hash"]):
                    raise ValueError("a hash is not 64 hex digits")
                found[credential.token_id] = (row["hash"], credential)
            return found
        except (OSError, ValueError, KeyError, TypeError, InvalidArgument) as exc:
            raise StoreError(
                problem=f"{path}: not a lastresort credentials file ({type(exc).__name__})"
            ) from exc

    def _write(self, rows: dict[str, tuple[str, Credential]]) -> None:
        if self.path is None:
            return
        data = {
            "tokens": [
                {
                    "id": c.token_id,
                    "hash": digest,
                    "party": c.party,
                    "actor_id": c.actor_id,
                    "protocols": list(c.protocols),
                    "scopes": list(c.scopes),
                    "created_at": c.created_at.isoformat(),
                    "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
                }
                for digest, c in rows.values()
            ]
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add(
        self,
        *,
        party: str,
        actor_id: str,
        protocols: Iterable[str] = ("*",),
        scopes: Iterable[str] = ("act",),
    ) -> tuple[str, Credential]:
        """Make a token: ``(token, credential)``. The token is returned only here.

        :raises InvalidArgument: for a party, actor id, protocol or scope of the wrong
            form; nothing is kept.
        """
        protocols, scopes = tuple(protocols), tuple(scopes)
        _check(party, actor_id, protocols, scopes)
        token_id = secrets.token_hex(6)
        token = f"lr_{token_id}_{secrets.token_urlsafe(32)}"
        credential = Credential(
            token_id=token_id,
            party=party,
            actor_id=actor_id,
            protocols=protocols,
            scopes=scopes,
            created_at=datetime.now(UTC),
        )
        with self._lock:
            rows = dict(self._by_id)
            rows[token_id] = (_hash(token), credential)
            self._write(rows)
            self._by_id = rows
        return token, credential

    def revoke(self, token_id: str) -> Credential:
        """Revoke a token by its id; it is refused from then on (kept, for the record).

        :raises InvalidArgument: when no token has that id; nothing changes.
        """
        with self._lock:
            found = self._by_id.get(token_id) if isinstance(token_id, str) else None
            if found is None:
                raise InvalidArgument(
                    call="CredentialStore.revoke", argument="token_id", problem="no such token"
                )
            digest, credential = found
            if credential.revoked_at is not None:
                return credential
            revoked = evolve(credential, revoked_at=datetime.now(UTC))
            rows = dict(self._by_id)
            rows[token_id] = (digest, revoked)
            self._write(rows)
            self._by_id = rows
            return revoked

    def list(self) -> list[Credential]:
        """Every credential, revoked ones included (never a token or its hash)."""
        return [c for _, c in self._by_id.values()]

    def verify(self, token: str) -> Credential:
        """The credential ``token`` stands for.

        :raises Unauthenticated: when it is malformed, unknown or revoked.
        """
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise Unauthenticated("malformed")
        found = self._by_id.get(match.group(1))
        # compare a hash even for an unknown id, so timing tells nothing
        digest, credential = found if found is not None else ("0" * 64, None)
        if not hmac.compare_digest(digest, _hash(token)) or credential is None:
            raise Unauthenticated("unknown")
        if credential.revoked_at is not None:
            raise Unauthenticated("revoked")
        return credential
