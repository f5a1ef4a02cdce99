"""A desk over the service kit (the shipped taskforce protocol, SQLite, a virtual
clock, a token per party), driven with Starlette's test client as a browser would:
cookies kept, forms posted urlencoded, the CSRF token read from the page."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from tests.service.kit import Service, make_service

__all__ = ["Person", "csrf_of", "person"]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


class Person:
    """One person's browser: its own cookies, signed in with its own token."""

    def __init__(self, service: Service, who: str) -> None:
        self.service = service
        self.client = TestClient(service.client.app, follow_redirects=False)
        self.who = who

    def sign_in(self) -> None:
        page = self.client.get("/desk/")
        response = self.client.post(
            "/desk/sign-in",
            data={"token": self.service.tokens[self.who], "csrf": csrf_of(page.text)},
        )
        assert response.status_code == 303, response.text

    def csrf(self) -> str:
        return csrf_of(self.client.get("/desk/").text)

    def open(self, **facts: str) -> str:
        response = self.client.post(
            "/desk/encounters?protocol=taskforce",
            data={"csrf": self.csrf(), **{f"fact_{k}": v for k, v in facts.items()}},
        )
        assert response.status_code == 303, response.text
        match = re.fullmatch(
            r"/desk/encounters/([0-9a-f]+)\?done=opened", response.headers["location"]
        )
        assert match is not None, response.headers["location"]
        return match.group(1)

    def fire(self, encounter_id: str, event: str, version: int | None = None, **extra: str):  # type: ignore[no-untyped-def]
        if version is None:
            version = self.service.engine.get(encounter_id).version
        return self.client.post(
            f"/desk/encounters/{encounter_id}/fire",
            data={"csrf": self.csrf(), "event": event, "version": str(version), **extra},
        )


def person(service: Service, who: str, *, signed_in: bool = True) -> Person:
    found = Person(service, who)
    if signed_in:
        found.sign_in()
    return found


def make(tmp_path: Path) -> Service:
    return make_service(tmp_path)
