"""``lastresort serve`` for real: uvicorn in a subprocess on a free port, driven over
HTTP by three parties with their own tokens; ``lastresort credentials``; the OpenAPI
document kept in the repository."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastresort.cli import main as cli
from lastresort.service.openapi import openapi
from lastresort.store.audit import verify as audit_verify

ROOT = Path(__file__).resolve().parents[2]
FACTS = {"age_band": "12-15", "disclosure": True, "accompanied": False}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _token(capsys: pytest.CaptureFixture[str], file: Path, *args: str) -> str:
    assert cli(["credentials", "--file", str(file), "add", *args]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return out[-1]


@pytest.fixture
def served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[str, dict[str, str], Path]]:
    creds = tmp_path / "creds.json"
    tokens = {
        "counter": _token(capsys, creds, "--party", "counter", "--actor-id", "clerk-7"),
        "expert": _token(capsys, creds, "--party", "expert", "--actor-id", "vt-12"),
        "mayor": _token(capsys, creds, "--party", "mayor", "--actor-id", "mayor-1"),
        "audit": _token(
            capsys, creds, "--party", "mayor_staff", "--actor-id", "staff-3", "--scope", "audit"
        ),
    }
    port = _free_port()
    db = tmp_path / "served.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lastresort.cli",
            "serve",
            "--db",
            str(db),
            "--credentials",
            str(creds),
            "--port",
            str(port),
            "--tick",
            "0.2",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "")
            time.sleep(0.05)
        else:
            raise AssertionError("the service did not start in 10 s")
        yield base, tokens, db
    finally:
        process.terminate()
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        for token in tokens.values():
            assert token.encode() not in err  # tokens never logged
    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal, so that
    # the exit status tells a supervisor why it stopped
    assert process.returncode in (0, -15), err.decode()
    assert b"Traceback" not in err, err.decode()


def test_three_parties_run_an_encounter_on_the_running_service_and_no_one_acts_as_another(
    served: tuple[str, dict[str, str], Path],
) -> None:
    base, tokens, db = served

    def as_(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[who]}"}

    with httpx.Client(base_url=base, timeout=10) as http:
        opened = http.post(
            "/api/v1/encounters",
            json={"protocol": "taskforce", "facts": FACTS},
            headers=as_("counter"),
        )
        assert opened.status_code == 201, opened.text
        eid = opened.json()["id"]
        url = f"/api/v1/encounters/{eid}/events"

        def fire(who: str, event: str, **headers: str) -> httpx.Response:
            return http.post(url, json={"event": event}, headers={**as_(who), **headers})

        assert fire("counter", "call_expert").status_code == 200
        # the clerk tries the expert's handover and the mayor's meeting: refused
        assert fire("counter", "expert_takes_over").status_code == 403
        assert fire("counter", "mayor_spoke_with_child").status_code in (403, 409)
        # no token, a forged one
        assert http.post(url, json={"event": "expert_takes_over"}).status_code == 401
        forged = {"Authorization": "Bearer " + tokens["expert"][:-2] + "xx"}
        assert (
            http.post(url, json={"event": "expert_takes_over"}, headers=forged).status_code == 401
        )
        for who, event in (
            ("expert", "expert_takes_over"),
            ("expert", "arrange_mayor_meeting"),
            ("mayor", "mayor_spoke_with_child"),
            ("expert", "report_made"),
            ("expert", "close"),
        ):
            response = fire(who, event)
            assert response.status_code == 200, response.text
        final = http.get(f"/api/v1/encounters/{eid}", headers=as_("expert")).json()
        assert final["state"] == "closed"
        timeline = http.get(f"/api/v1/encounters/{eid}/timeline", headers=as_("mayor")).json()
        steps = [e for e in timeline["items"] if e["kind"] == "StepEntered"]
        assert [(e["actor"]["role"], e["actor"]["id"]) for e in steps] == [
            ("counter", "clerk-7"),
            ("expert", "vt-12"),
            ("expert", "vt-12"),
            ("mayor", "mayor-1"),
            ("expert", "vt-12"),
            ("expert", "vt-12"),
        ]
        refusals = http.get("/api/v1/refusals", headers=as_("audit")).json()["items"]
        reasons = [(r["actor_role"], r["reason"]) for r in refusals]
        assert ("counter", "NotPermitted") in reasons
        assert reasons.count(("anonymous", "unauthenticated:missing")) == 1
        assert reasons.count(("anonymous", "unauthenticated:unknown")) == 1
        # the scheduler delivered the notifications (log delivery by default)
        for _ in range(100):
            outbox = http.get(f"/api/v1/encounters/{eid}/outbox", headers=as_("expert")).json()
            if all(n["delivered_at"] for n in outbox["items"]):
                break
            time.sleep(0.1)
        assert outbox["items"]
        assert all(n["delivered_at"] for n in outbox["items"])
    assert audit_verify(db).ok


def test_credentials_add_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "c.json"
    token = _token(capsys, file, "--party", "counter", "--actor-id", "clerk-7")
    assert token.startswith("lr_")
    stored = file.read_text()
    assert token not in stored  # only its hash is kept
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    token_id = token.split("_")[1]
    assert cli(["credentials", "--file", str(file), "list"]) == 0
    listed = capsys.readouterr().out
    assert token_id in listed
    assert "active" in listed
    assert token not in listed
    assert cli(["credentials", "--file", str(file), "revoke", token_id]) == 0
    capsys.readouterr()
    assert cli(["credentials", "--file", str(file), "list"]) == 0
    assert "revoked" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "--party", "clock", "--actor-id", "x-1"], "the engine's own role"),
        (["add", "--party", "counter", "--actor-id", "Jan de Vries"], "actor id"),
        (["add", "--party", "counter", "--actor-id", "111222333"], "citizen service number"),
        (["add", "--party", "counter", "--actor-id", "c-1", "--protocol", "Bad Id"], "protocol"),
        (["revoke", "000000000000"], "no such token"),
    ],
)
def test_bad_credentials_input_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    file = tmp_path / "c.json"
    _token(capsys, file, "--party", "counter", "--actor-id", "clerk-7")
    before = file.read_bytes()
    assert cli(["credentials", "--file", str(file), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Jan de Vries" not in err
    assert file.read_bytes() == before


def test_a_credentials_file_that_is_not_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "c.json"
    file.write_text('{"tokens": [{"id": "x"}]}')
    assert cli(["credentials", "--file", str(file), "list"]) == 2
    assert "not a lastresort credentials file" in capsys.readouterr().err
    assert file.read_text() == '{"tokens": [{"id": "x"}]}'


def test_serve_without_a_credentials_file_exits_2_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.db"
    code = cli(["serve", "--db", str(db), "--credentials", str(tmp_path / "none.json")])
    assert code == 2
    assert "no credentials file" in capsys.readouterr().err
    assert not db.exists()


def test_the_openapi_document_in_the_repository_is_the_served_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert committed == openapi(), (
        "docs/openapi.json is stale: .venv/bin/lastresort serve --openapi > docs/openapi.json"
    )
    assert cli(["serve", "--openapi"]) == 0
    assert json.loads(capsys.readouterr().out) == committed


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    from jsonschema import Draft202012Validator

    document: dict[str, Any] = openapi()
    assert document["openapi"] == "3.1.0"
    # every schema in it is a valid JSON Schema 2020-12 (OpenAPI 3.1's dialect)
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
    # every operation has an id and documents its errors as problem+json
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["operationId"], (path, method)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/problem+json" in response["content"], (path, status)
