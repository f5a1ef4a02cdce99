"""OIDC / JWT bearer tokens: a :data:`~lastresort.service.auth.Verifier` that checks a
token of the municipality's identity provider and maps its claims to a
:class:`~lastresort.service.auth.Credential`.

Needs PyJWT (in the ``service`` extra, with ``cryptography`` for RS256/ES256). The
token's signature, issuer, audience, expiry (and ``nbf``/``iat`` when present) are
checked by PyJWT against the keys given here and only the algorithms given here (never
``none``; an asymmetric key is never taken as an HMAC secret); then two claims name the
party and the pseudonymous actor id, checked as :meth:`CredentialStore.add
<lastresort.service.auth.CredentialStore.add>` checks them. Every refusal is an
:class:`~lastresort.service.auth.Unauthenticated` with a reason code for the refusal
log (``jwt-expired``, ``jwt-audience``, ...); nothing of the token or its claims is
logged or echoed (a claim may hold a name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from ..errors import InvalidArgument
from ..privacy import actor_id_problem, role_problem
from .auth import _PROTOCOL, _RESERVED, SCOPES, Credential, Unauthenticated

__all__ = ["ALGORITHMS", "JwtVerifier"]

#: the algorithms a verifier may be configured with (``none`` is not one)
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
    | {"EdDSA", "HS256", "HS384", "HS512"}
)
_HMAC = frozenset({"HS256", "HS384", "HS512"})
#: PyJWT's refusals, most specific first, and the reason code each is logged with
_REASONS: tuple[tuple[type[PyJWTError], str], ...] = (
    (ExpiredSignatureError, "jwt-expired"),
    (ImmatureSignatureError, "jwt-not-yet-valid"),
    (InvalidIssuedAtError, "jwt-not-yet-valid"),
    (InvalidAudienceError, "jwt-audience"),
    (InvalidIssuerError, "jwt-issuer"),
    (MissingRequiredClaimError, "jwt-claims"),
    (InvalidSignatureError, "jwt-signature"),
    (InvalidAlgorithmError, "jwt-algorithm"),
    (InvalidKeyError, "jwt-key"),
)


def _bad(argument: str, problem: str) -> InvalidArgument:
    return InvalidArgument(call="JwtVerifier", argument=argument, problem=problem)


def _text(argument: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(argument, "a non-empty string")
    return value


class JwtVerifier:
    """Checks a JWT and gives the credential it stands for; pass it to
    ``create_app(verifier=...)``. Tokens of the ``lr_...`` form are still checked
    against the credential store; every other bearer token comes here.

    :param issuer: the ``iss`` every token must carry (the provider's URL).
    :param audience: the ``aud`` (or one of several) a token must be meant for.
    :param keys: the verification key: a public key (PEM text or a ``cryptography``
        key object) or an HMAC secret (for ``HS*``: at least 32 bytes), or a mapping
        of key ids (the token header's ``kid``) to such keys, for key rotation.
    :param algorithms: the algorithms accepted (default ``("RS256",)``); asymmetric
        and HMAC algorithms are not mixed, so that a public key can never be used as
        an HMAC secret.
    :param party_claim: the claim naming the party (a role of the protocols).
    :param actor_id_claim: the claim holding the holder's pseudonymous id (default
        ``sub``: it must already be a pseudonym, never an e-mail address or a name).
    :param protocols_claim: a claim listing the protocol ids the holder may act in
        (a list, or a space-separated string); ``None`` (default): all.
    :param scopes_claim: a claim listing scopes (a list, or a space-separated string
        as OIDC's ``scope``); only ``act`` and ``audit`` are taken from it (others,
        such as ``openid``, are ignored). ``None`` (default): ``act``.
    :param leeway: seconds of clock skew allowed for ``exp``, ``nbf`` and ``iat``.
    :raises InvalidArgument: for a setting of the wrong form; nothing is kept.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Sequence[str],
        keys: Any,
        algorithms: Sequence[str] = ("RS256",),
        party_claim: str = "lastresort_party",
        actor_id_claim: str = "sub",
        protocols_claim: str | None = None,
        scopes_claim: str | None = None,
        leeway: float = 30.0,
    ) -> None:
        self.issuer = _text("issuer", issuer)
        if isinstance(audience, str):
            audiences = [_text("audience", audience)]
        elif isinstance(audience, Sequence) and audience:
            audiences = [_text("audience", a) for a in audience]
        else:
            raise _bad("audience", "a non-empty string or a sequence of them")
        self.audience = audiences
        if (
            isinstance(algorithms, str)
            or not isinstance(algorithms, Sequence)
            or not algorithms
            or not all(a in ALGORITHMS for a in algorithms)
        ):
            raise _bad("algorithms", f"a sequence of some of {', '.join(sorted(ALGORITHMS))}")
        hmac = {a in _HMAC for a in algorithms}
        if len(hmac) != 1:
            raise _bad("algorithms", "HMAC (HS*) or asymmetric algorithms, not both")
        self.algorithms = list(algorithms)
        self._hmac = hmac == {True}
        if isinstance(keys, Mapping):
            if not keys or not all(isinstance(k, str) and k for k in keys):
                raise _bad("keys", "a key, or a non-empty mapping of key ids to keys")
            self._keys: dict[str, Any] | None = {k: self._key(v) for k, v in keys.items()}
            self._key_all: Any = None
        else:
            self._keys = None
            self._key_all = self._key(keys)
        self.party_claim = _text("party_claim", party_claim)
        self.actor_id_claim = _text("actor_id_claim", actor_id_claim)
        self.protocols_claim = (
            None if protocols_claim is None else _text("protocols_claim", protocols_claim)
        )
        self.scopes_claim = None if scopes_claim is None else _text("scopes_claim", scopes_claim)
        if (
            isinstance(leeway, bool)
            or not isinstance(leeway, int | float)
            or not 0 <= leeway <= 300
        ):
            raise _bad("leeway", "a number of seconds from 0 to 300")
        self.leeway = float(leeway)

    def _key(self, key: object) -> Any:
        if self._hmac:
            secret = key.encode() if isinstance(key, str) else key
            if not isinstance(secret, bytes) or len(secret) < 32:
                raise _bad("keys", "an HMAC secret of at least 32 bytes for HS* algorithms")
            if b"-----BEGIN" in secret or secret.startswith(b"ssh-"):
                raise _bad("keys", "an HMAC secret, not a public key, for HS* algorithms")
            return secret
        if isinstance(key, str | bytes):
            try:
                return jwt.algorithms.get_default_algorithms()[self.algorithms[0]].prepare_key(key)
            except (PyJWTError, ValueError, TypeError):
                raise _bad("keys", "a public key (PEM) for the algorithms given") from None
        if key is None:
            raise _bad("keys", "a public key (PEM or a key object)")
        return key

    def __call__(self, token: str) -> Credential:
        """The credential ``token`` stands for.

        :raises Unauthenticated: with a reason code (``jwt-malformed``,
            ``jwt-expired``, ``jwt-not-yet-valid``, ``jwt-audience``, ``jwt-issuer``,
            ``jwt-signature``, ``jwt-algorithm``, ``jwt-key``, ``jwt-claims``)."""
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise Unauthenticated("jwt-malformed") from None
        if header.get("alg") not in self.algorithms:
            raise Unauthenticated("jwt-algorithm")
        if self._keys is not None:
            kid = header.get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthenticated("jwt-key")
        else:
            key = self._key_all
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except PyJWTError as exc:
            reason = next((code for cls, code in _REASONS if isinstance(exc, cls)), None)
            raise Unauthenticated(reason or "jwt-malformed") from None
        return self._credential(token, claims)

    def _credential(self, token: str, claims: Mapping[str, Any]) -> Credential:
        party = claims.get(self.party_claim)
        actor_id = claims.get(self.actor_id_claim)
        if not isinstance(party, str) or role_problem(party) is not None or party in _RESERVED:
            raise Unauthenticated("jwt-claims")
        if actor_id is None or actor_id_problem(actor_id) is not None:
            raise Unauthenticated("jwt-claims")
        protocols: tuple[str, ...] = ("*",)
        if self.protocols_claim is not None:
            protocols = _listed(claims.get(self.protocols_claim))
            if not protocols or not all(_PROTOCOL.fullmatch(p) for p in protocols):
                raise Unauthenticated("jwt-claims")
        scopes: tuple[str, ...] = ("act",)
        if self.scopes_claim is not None:
            scopes = tuple(s for s in SCOPES if s in _listed(claims.get(self.scopes_claim)))
            if not scopes:
                raise Unauthenticated("jwt-claims")
        issued = claims.get("iat")
        created = (
            datetime.fromtimestamp(issued, UTC)
            if isinstance(issued, int | float) and not isinstance(issued, bool)
            else datetime.now(UTC)
        )
        return Credential(
            # a digest of the token, never its jti or any other claim's text
            token_id="jwt-" + hashlib.sha256(token.encode()).hexdigest()[:12],
            party=party,
            actor_id=actor_id,
            protocols=protocols,
            scopes=scopes,
            created_at=created,
        )


def _listed(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()
