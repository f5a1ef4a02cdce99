"""The OIDC/JWT verifier: tokens made in the test with RS256 and HS256 keys; every
refusal an ``Unauthenticated`` with its reason code, never echoing a claim; claims
checked as ``CredentialStore.add`` checks a party and an actor id; plugged into the
app, where a JWT's party and subject act, and its refusals are logged."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

import lastresort as lr
from lastresort.service import CredentialStore, Unauthenticated, create_app
from lastresort.service.jwt import JwtVerifier
from tests.conftest import SHIPPED_TASKFORCE, START
from tests.service.kit import FACTS

ISSUER = "https://login.teststad.example"
AUDIENCE = "lastresort"
SECRET = b"0123456789abcdef0123456789abcdef-hs256"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


PRIVATE = _rsa()
OTHER = _rsa()
PUBLIC_PEM = PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def claims(**kw: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "vt-12",
        "lastresort_party": "expert",
        "iat": now,
        "exp": now + 300,
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def rs256(key: Any = PRIVATE, headers: dict[str, Any] | None = None, **kw: Any) -> str:
    return jwt.encode(claims(**kw), key, algorithm="RS256", headers=headers)


def hs256(secret: bytes = SECRET, **kw: Any) -> str:
    return jwt.encode(claims(**kw), secret, algorithm="HS256")


@pytest.fixture
def rsa_verifier() -> JwtVerifier:
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, keys=PUBLIC_PEM)


def test_an_rs256_token_gives_its_party_and_subject(rsa_verifier: JwtVerifier) -> None:
    token = rs256()
    credential = rsa_verifier(token)
    assert (credential.party, credential.actor_id) == ("expert", "vt-12")
    assert (credential.protocols, credential.scopes) == (("*",), ("act",))
    assert credential.token_id.startswith("jwt-")
    assert credential.revoked_at is None
    # a key object does as well as its PEM
    by_object = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, keys=PRIVATE.public_key())
    assert by_object(token) == credential


def test_an_hs256_token_is_verified_with_its_secret() -> None:
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, keys=SECRET, algorithms=["HS256"])
    credential = verifier(hs256(sub="clerk-7", lastresort_party="counter"))
    assert (credential.party, credential.actor_id) == ("counter", "clerk-7")
    with pytest.raises(Unauthenticated) as caught:
        verifier(hs256(secret=b"another-secret-of-at-least-32-bytes!!"))
    assert caught.value.reason == "jwt-signature"


def _tampered(token: str) -> str:
    head, body, sig = token.split(".")
    other = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(body).replace(b'"expert"', b'"mayor"')
    ).decode()
    return f"{head}.{other}.{sig}"


REFUSED: list[tuple[str, Any, str]] = [
    ("expired", lambda: rs256(exp=int(time.time()) - 120), "jwt-expired"),
    ("not yet valid", lambda: rs256(nbf=int(time.time()) + 600), "jwt-not-yet-valid"),
    ("issued in the future", lambda: rs256(iat=int(time.time()) + 600), "jwt-not-yet-valid"),
    ("wrong audience", lambda: rs256(aud="another-app"), "jwt-audience"),
    ("no audience", lambda: rs256(aud=None), "jwt-claims"),
    ("wrong issuer", lambda: rs256(iss="https://evil.example"), "jwt-issuer"),
    ("no expiry", lambda: rs256(exp=None), "jwt-claims"),
    ("signed by another key", lambda: rs256(key=OTHER), "jwt-signature"),
    ("tampered payload", lambda: _tampered(rs256()), "jwt-signature"),
    ("alg none", lambda: jwt.encode(claims(), None, algorithm="none"), "jwt-algorithm"),
    # the classic confusion: HS256 "signed" with the public key as the HMAC secret
    ("public key as HMAC secret", lambda: _hs_with_public_key(), "jwt-algorithm"),
    ("garbage", lambda: "not.a.jwt", "jwt-malformed"),
    ("no party", lambda: rs256(lastresort_party=None), "jwt-claims"),
    ("party of the engine", lambda: rs256(lastresort_party="clock"), "jwt-claims"),
    ("party not a role", lambda: rs256(lastresort_party="the mayor"), "jwt-claims"),
    ("party not a string", lambda: rs256(lastresort_party=["expert"]), "jwt-claims"),
    ("subject an e-mail", lambda: rs256(sub="jan.jansen@example.nl"), "jwt-claims"),
    ("no subject", lambda: rs256(sub=None), "jwt-claims"),
]


def _hs_with_public_key() -> str:
    # PyJWT refuses to sign with a PEM as HMAC secret: forge the token by hand
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return jwt.utils.base64url_encode(data).decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    sig = hmac.new(PUBLIC_PEM, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


@pytest.mark.parametrize(("what", "make", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_bad_token_is_refused_with_its_reason_and_no_claim_echoed(
    rsa_verifier: JwtVerifier, what: str, make: Any, reason: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        rsa_verifier(make())
    assert caught.value.reason == reason, what
    assert caught.value.__cause__ is None  # PyJWT's message (it may quote a claim) dropped
    shown = str(caught.value)
    assert "jan.jansen" not in shown
    assert "vt-12" not in shown


def test_an_hs256_verifier_refuses_an_rs256_token() -> None:
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, keys=SECRET, algorithms=["HS256"])
    with pytest.raises(Unauthenticated) as caught:
        verifier(rs256())
    assert caught.value.reason == "jwt-algorithm"


def test_keys_by_kid_allow_rotation_and_refuse_an_unknown_kid() -> None:
    other_pem = OTHER.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, keys={"2026-a": PUBLIC_PEM, "2026-b": other_pem}
    )
    assert verifier(rs256(headers={"kid": "2026-a"})).actor_id == "vt-12"
    assert verifier(rs256(key=OTHER, headers={"kid": "2026-b"})).actor_id == "vt-12"
    for headers, reason in (
        ({"kid": "2026-b"}, "jwt-signature"),  # a key id that is not the signer's
        ({"kid": "1999"}, "jwt-key"),
        (None, "jwt-key"),
    ):
        with pytest.raises(Unauthenticated) as caught:
            verifier(rs256(headers=headers))
        assert caught.value.reason == reason


def test_protocols_and_scopes_claims() -> None:
    verifier = JwtVerifier(
        issuer=ISSUER,
        audience=[AUDIENCE, "other"],
        keys=PUBLIC_PEM,
        protocols_claim="lastresort_protocols",
        scopes_claim="scope",
    )
    got = verifier(rs256(lastresort_protocols=["taskforce"], scope="openid profile audit"))
    assert (got.protocols, got.scopes) == (("taskforce",), ("audit",))
    got = verifier(rs256(lastresort_protocols="taskforce meldcode", scope=["act", "audit"]))
    assert (got.protocols, got.scopes) == (("taskforce", "meldcode"), ("act", "audit"))
    for kw in (
        {"lastresort_protocols": ["taskforce"], "scope": "openid"},  # no scope of ours
        {"scope": "act"},  # no protocols
        {"lastresort_protocols": ["Task Force!"], "scope": "act"},
        {"lastresort_protocols": [3], "scope": "act"},
    ):
        with pytest.raises(Unauthenticated) as caught:
            verifier(rs256(**kw))
        assert caught.value.reason == "jwt-claims", kw


BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"issuer": ""}, "issuer"),
    ({"issuer": None}, "issuer"),
    ({"audience": []}, "audience"),
    ({"audience": 5}, "audience"),
    ({"algorithms": ["none"]}, "algorithms"),
    ({"algorithms": "RS256"}, "algorithms"),
    ({"algorithms": []}, "algorithms"),
    ({"algorithms": ["RS256", "HS256"]}, "algorithms"),
    ({"algorithms": ["HS256"], "keys": b"short"}, "keys"),
    ({"algorithms": ["HS256"], "keys": PUBLIC_PEM}, "keys"),
    ({"keys": "not a pem"}, "keys"),
    ({"keys": None}, "keys"),
    ({"keys": {}}, "keys"),
    ({"party_claim": ""}, "party_claim"),
    ({"actor_id_claim": 3}, "actor_id_claim"),
    ({"leeway": -1}, "leeway"),
    ({"leeway": True}, "leeway"),
]


@pytest.mark.parametrize(("kw", "argument"), BAD_SETTINGS, ids=[a for _, a in BAD_SETTINGS])
def test_bad_settings_are_refused_naming_them(kw: dict[str, Any], argument: str) -> None:
    settings: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "keys": PUBLIC_PEM}
    settings.update(kw)
    with pytest.raises(lr.InvalidArgument) as caught:
        JwtVerifier(**settings)
    assert (caught.value.call, caught.value.argument) == ("JwtVerifier", argument)
    assert "BEGIN" not in str(caught.value)  # never the key


# -- in the service -------------------------------------------------------------------


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[TestClient, lr.Engine, str]]:
    engine = lr.Engine(
        protocols=[lr.load_protocol(SHIPPED_TASKFORCE)],
        store=lr.SQLiteStore(tmp_path / "jwt.db"),
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    credentials = CredentialStore(tmp_path / "credentials.json")
    auditor, _ = credentials.add(party="mayor_staff", actor_id="staff-3", scopes=("audit",))
    app = create_app(
        engine,
        credentials=credentials,
        run_scheduler=False,
        verifier=JwtVerifier(issuer=ISSUER, audience=AUDIENCE, keys=PUBLIC_PEM),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, engine, auditor
    engine.store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_jwt_holders_act_as_their_party_only_and_refusals_are_logged(
    app_client: tuple[TestClient, lr.Engine, str],
) -> None:
    client, engine, auditor = app_client
    clerk = rs256(sub="clerk-7", lastresort_party="counter")
    expert = rs256(sub="vt-12", lastresort_party="expert")
    opened = client.post(
        "/api/v1/encounters", json={"protocol": "taskforce", "facts": FACTS}, headers=bearer(clerk)
    )
    assert opened.status_code == 201, opened.text
    eid = opened.json()["id"]
    first = engine.timeline(eid)[0]
    assert (first.actor.role, first.actor.id) == ("counter", "clerk-7")
    # the clerk's token cannot take the expert's step: the engine's rules apply to it
    version = engine.get(eid).version
    refused = client.post(
        f"/api/v1/encounters/{eid}/events",
        json={"event": "expert_takes_over"},
        headers=bearer(clerk),
    )
    assert refused.status_code == 403
    assert engine.get(eid).version == version
    # an expired token and one for another audience: 401 problem+json, nothing changed
    for token in (rs256(sub="vt-12", exp=int(time.time()) - 100), rs256(aud="elsewhere")):
        response = client.post(
            f"/api/v1/encounters/{eid}/events",
            json={"event": "call_expert"},
            headers=bearer(token),
        )
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "vt-12" not in response.text
        assert engine.get(eid).version == version
    assert client.get(f"/api/v1/encounters/{eid}", headers=bearer(expert)).status_code == 200
    # API tokens still work beside JWTs
    log = client.get("/api/v1/refusals", headers=bearer(auditor))
    assert log.status_code == 200
    reasons = [(i["actor_id"], i["reason"]) for i in log.json()["items"]]
    assert ("clerk-7", "NotPermitted") in reasons
    assert (None, "unauthenticated:jwt-expired") in reasons
    assert (None, "unauthenticated:jwt-audience") in reasons


def test_the_docs_example_runs_and_verifies_a_token(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "service.md").read_text()
    section = text[text.index("### OIDC / JWT") : text.index("## Endpoints")]
    [block] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    engine = lr.Engine(
        protocols=[lr.load_protocol(SHIPPED_TASKFORCE)],
        store=lr.MemoryStore(),
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    namespace: dict[str, Any] = {
        "PROVIDER_PUBLIC_KEY": PUBLIC_PEM,
        "engine": engine,
        "credentials": CredentialStore(),
    }
    exec(compile(block, "docs/service.md[OIDC / JWT]", "exec"), namespace)
    verifier = namespace["verifier"]
    token = rs256(
        headers={"kid": "2026-a"},
        iss="https://login.teststad.example/realms/staff",
        lastresort_protocols=["taskforce"],
        scope="openid act",
    )
    credential = verifier(token)
    assert (credential.party, credential.actor_id, credential.protocols, credential.scopes) == (
        "expert",
        "vt-12",
        ("taskforce",),
        ("act",),
    )
    with TestClient(namespace["app"]) as client:
        response = client.get("/api/v1/protocols", headers=bearer(token))
        assert response.status_code == 200
        assert [p["id"] for p in response.json()["items"]] == ["taskforce"]
