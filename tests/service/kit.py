"""A service over the shipped reference protocol on a SQLite file and a virtual clock,
with a token per party: the clerk, the expert, the mayor, and an auditor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import lastresort as lr
from lastresort.service import CredentialStore, create_app
from tests.conftest import SHIPPED_TASKFORCE, START

FACTS = {"age_band": "12-15", "disclosure": True, "accompanied": False}


@dataclass
class Service:
    engine: lr.Engine
    clock: lr.VirtualClock
    credentials: CredentialStore
    client: TestClient
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def open(self, who: str = "counter", **body: Any) -> dict[str, Any]:
        body.setdefault("protocol", "taskforce")
        body.setdefault("facts", FACTS)
        response = self.client.post("/api/v1/encounters", json=body, headers=self.as_(who))
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    def fire(self, who: str, encounter_id: str, event: str, **kw: Any) -> Any:
        headers = {**self.as_(who), **kw.pop("headers", {})}
        return self.client.post(
            f"/api/v1/encounters/{encounter_id}/events",
            json={"event": event, **kw},
            headers=headers,
        )


def make_service(tmp_path: Path, *, store: lr.Store | None = None) -> Service:
    clock = lr.VirtualClock(START)
    engine = lr.Engine(
        protocols=[lr.load_protocol(SHIPPED_TASKFORCE)],
        store=store or lr.SQLiteStore(tmp_path / "service.db"),
        clock=clock,
        entry_points=False,
    )
    credentials = CredentialStore(tmp_path / "credentials.json")
    tokens = {}
    for party, actor_id, scopes in (
        ("counter", "clerk-7", ("act",)),
        ("expert", "vt-12", ("act",)),
        ("mayor", "mayor-1", ("act",)),
        ("mayor_staff", "staff-3", ("audit",)),
    ):
        token, _ = credentials.add(party=party, actor_id=actor_id, scopes=scopes)
        tokens[party] = token
    app = create_app(engine, credentials=credentials, run_scheduler=False)
    client = TestClient(app, raise_server_exceptions=False)
    return Service(engine, clock, credentials, client, tokens)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    made = make_service(tmp_path)
    with made.client:
        yield made
    made.engine.store.close()
