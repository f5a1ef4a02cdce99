"""Shared fixtures: a virtual clock and an engine on a memory store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import lastresort as lr

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 3, 2, 10, 0, tzinfo=AMS)  # a Monday, counter open
#: The engine-mechanics fixture: a frozen copy of the reference protocol as it was before
#: issue 15 (see its header). The shipped one is SHIPPED_TASKFORCE.
TASKFORCE = Path(__file__).parent / "protocols" / "taskforce-2014.toml"
SHIPPED_TASKFORCE = Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml"


@pytest.fixture
def clock() -> lr.VirtualClock:
    return lr.VirtualClock(START)


@pytest.fixture
def taskforce() -> lr.Protocol:
    return lr.load_protocol(TASKFORCE)


@pytest.fixture
def engine(clock: lr.VirtualClock, taskforce: lr.Protocol) -> Iterator[lr.Engine]:
    eng = lr.Engine(protocols=[taskforce], store=lr.MemoryStore(), clock=clock, entry_points=False)
    yield eng
    eng.store.close()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.fixture(autouse=True)
def _drop_postgres_schemas() -> Iterator[None]:
    """Every schema a test made on the PostgreSQL test server goes with the test."""
    from tests import pg_kit

    yield
    if pg_kit.CREATED:
        pg_kit.drop_created()
