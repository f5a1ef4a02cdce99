"""Crash test: a child fires events in a loop on a store file (or a PostgreSQL
schema) and prints every event id it got back; it is killed with SIGKILL at a
random moment, 200 times (20 on PostgreSQL). After
every kill, every printed event is in the store, no encounter is half-stepped,
and ``audit verify`` passes. The next child resumes on the same file (the file is
renewed every 20 kills so that the checks stay quick)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from lastresort.store.postgres import verify_postgres
from tests import pg_kit
from tests.store_kit import consistency_problems

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 200
KILLS_PER_FILE = 20

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL"),
    pytest.mark.slow,  # see pyproject.toml: make test runs it; -m "not slow" skips
]


@pytest.fixture
def zygote() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "zygote ready\n"
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def _open(db: Path | str) -> lr.Store:
    if isinstance(db, str):
        return pg_kit.make_store(db.removeprefix("pg:"))
    return lr.SQLiteStore(db)


def _verify(db: Path | str) -> lr.AuditReport:
    if isinstance(db, str):
        return verify_postgres(pg_kit.DSN, schema=db.removeprefix("pg:"))
    return verify(db)


@pytest.mark.parametrize(
    ("kind", "kills"),
    # PostgreSQL: fewer kills (each costs a server round of checks), the same checks
    [("sqlite", KILLS), ("postgres", 20)],
)
def test_sigkill_200_times_loses_nothing_and_leaves_no_half_step(
    zygote: subprocess.Popen[str], tmp_path: Path, kind: str, kills: int
) -> None:
    rng = random.Random(20140127)
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    printed_total = 0
    schemas = [pg_kit.new_schema() for _ in range(kills // KILLS_PER_FILE)]
    for kill in range(kills):
        db: Path | str = (
            tmp_path / f"crash-{kill // KILLS_PER_FILE}.db"
            if kind == "sqlite"
            else f"pg:{schemas[kill // KILLS_PER_FILE]}"
        )
        if isinstance(db, str) and kill % KILLS_PER_FILE == 0:
            _open(db).close()  # the schema exists before the first worker (no race)
        zygote.stdin.write(f"run {db} {kill} {kill * 90}\n")
        zygote.stdin.flush()
        first = zygote.stdout.readline().split()
        assert first[0] == "ready", f"worker did not start: {first}"
        pid = int(first[1])
        # kill after a random number of returned events (plus a random instant), so the
        # kill lands in the middle of work whatever the machine's load
        wanted = rng.randint(1, 25)
        printed: list[tuple[str, int, str]] = []
        killed = False
        while True:
            line = zygote.stdout.readline()
            assert line, "the zygote died"
            words = line.split()
            if words[0] == "done":
                status = int(words[2])
                assert killed, f"the worker ended by itself before the kill: {status}"
                assert os.WIFSIGNALED(status), f"the worker ended by itself: {status}"
                assert os.WTERMSIG(status) == signal.SIGKILL
                break
            assert words[0] == "ev", line
            printed.append((words[1], int(words[2]), words[3]))
            if not killed and len(printed) >= wanted:
                time.sleep(rng.uniform(0, 0.004))
                os.kill(pid, signal.SIGKILL)
                killed = True
        printed_total += len(printed)

        store = _open(db)
        try:
            for eid, seq, what in printed:
                timeline = store.timeline(eid)
                assert len(timeline) >= seq, f"kill {kill}: {eid} #{seq} was lost"
                assert timeline[seq - 1].kind == what
            assert consistency_problems(store) == [], f"kill {kill}"
        finally:
            store.close()
        report = _verify(db)
        assert report.ok, f"kill {kill}: {[str(p) for p in report.problems]}"
    assert printed_total >= kills  # every child did real work before its kill
