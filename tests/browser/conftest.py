"""The real service (uvicorn in a thread, on a free port) over a SQLite file in
tmp_path, and Debian's chromium driven by Playwright. The browser is the system's
(``LASTRESORT_CHROMIUM``, default /usr/bin/chromium, which `make test` installs with
apt-get when missing): never `playwright install`. Without it the tests fail, saying
so; they are never skipped."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Playwright, sync_playwright

import lastresort as lr
from lastresort.service import CredentialStore, create_app
from tests.conftest import SHIPPED_TASKFORCE, START

ROOT = Path(__file__).resolve().parents[2]
#: screenshots of every run (not committed)
ARTEFACTS = ROOT / "tmp" / "artefacts" / "desk"
#: the screenshots the docs show (committed; see `screenshot`)
DOCS_IMAGES = ROOT / "docs" / "images"
PEOPLE = {"counter": "clerk-7", "expert": "vt-12", "mayor": "mayor-1"}


def chromium_path() -> str:
    path = os.environ.get("LASTRESORT_CHROMIUM") or "/usr/bin/chromium"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"the desk's browser tests need Debian's chromium at {path}: run `make test`"
            " (it installs it with apt-get) or `apt-get install -y chromium`, or point"
            " LASTRESORT_CHROMIUM at a Chromium binary; never `playwright install`",
            pytrace=False,
        )
    return path


@dataclass
class Served:
    base: str
    engine: lr.Engine
    clock: lr.VirtualClock
    tokens: dict[str, str]
    credentials: CredentialStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    clock = lr.VirtualClock(START)
    numbers = itertools.count(1)
    engine = lr.Engine(
        protocols=[lr.load_protocol(SHIPPED_TASKFORCE)],
        store=lr.SQLiteStore(tmp_path / "desk.db"),
        clock=clock,
        entry_points=False,
        # short, stable ids so the screenshots are the same run after run
        ids=lambda: f"{next(numbers):032x}",
    )
    credentials = CredentialStore(tmp_path / "credentials.json")
    tokens = {
        party: credentials.add(party=party, actor_id=actor_id)[0]
        for party, actor_id in PEOPLE.items()
    }
    with serving(engine, credentials) as base:
        yield Served(base, engine, clock, tokens, credentials)


@contextmanager
def serving(engine: lr.Engine, credentials: CredentialStore) -> Iterator[str]:
    """The service over ``engine`` in uvicorn in a thread, on a free port: its base URL.
    Stops the server and closes the engine's store after."""
    app = create_app(engine, credentials=credentials, run_scheduler=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "the service did not start"
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.store.close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as found:
        yield found


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=chromium_path(),
        # root in a container has no user namespace for chromium's sandbox
        args=["--no-sandbox"] if os.geteuid() == 0 else [],
    )
    yield launched
    launched.close()


def screenshot_path(name: str) -> Path:
    """Where a screenshot of this run goes; :func:`keep` copies it to the docs."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS / f"desk-{name}.png"


def keep(shot: Path) -> None:
    """Copy a screenshot to docs/images when the docs have none yet, or when
    LASTRESORT_DESK_SCREENSHOTS=update (so a test run does not dirty the work tree)."""
    target = DOCS_IMAGES / shot.name
    if not target.exists() or os.environ.get("LASTRESORT_DESK_SCREENSHOTS") == "update":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
