"""SQLiteStore: the durable ``Engine.fire`` rate next to a raw SQLite transaction
rate, with the same ``synchronous`` setting, measured in the same run.

The raw anchor is what any durable write costs at least: one ``BEGIN IMMEDIATE``
transaction in WAL mode inserting one event row (a JSON text of the same size)
and updating one encounter row, then ``COMMIT``. ``Engine.fire`` does all the
engine's work (permissions, the machine, deadline and outbox bookkeeping) and
commits several event rows with their audit hashes, the snapshot, the deadline
change, the outbox row and the ledger row in one such transaction.

Also printed: ``Engine.fire`` on a MemoryStore, alone and with 100,000 more open
encounters (with pending deadlines) in it: the rate should not depend on that.

With ``--floor``, also the rate of the SQL of a fire alone: the statements of the
measured fires (both reads, every write, with their arguments) recorded, then
replayed in order with no Python around them on a copy of the file as it was
before them. Python work can at best close the gap between a fire and that floor.

Also printed: the WAL pages one durable fire writes, per b-tree (table or index), and
the bytes on disk per encounter after the taskforce protocol's happy path.

Run:  .venv/bin/python benchmarks/bench_store.py [--quick] [--floor]
Goal: Engine.fire on SQLiteStore >= 50% of the raw transaction rate.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import lastresort as lr
from lastresort.store.rows import ledger_link_bytes
from lastresort.testing import pseudonymous

START = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
_TEXT = {"nl": "Blijf bij het kind.", "en": "Stay with the child."}
#: Two steps fired back and forth for ever: each has a deadline; ``go`` notifies.
PROTOCOL = {
    "protocol": {
        "id": "bench",
        "version": "1",
        "municipality": "Benchstad",
        "title": {"nl": "Bank", "en": "Bench"},
        "initial": "desk",
        "source": "benchmarks/bench_store.py",
    },
    "parties": {
        "counter": {"name": {"nl": "Balie", "en": "Counter"}, "kind": "municipal_staff"},
        "expert": {"name": {"nl": "Deskundige", "en": "Expert"}, "kind": "expert"},
        "police": {"name": {"nl": "Politie", "en": "Police"}, "kind": "emergency"},
    },
    "steps": {
        "desk": {
            "responsible": "counter",
            "kind": "active",
            "deadline": {"after": "30m", "event": "desk_timeout"},
            "instructions": _TEXT,
        },
        "room": {
            "responsible": "counter",
            "kind": "waiting",
            "deadline": {"after": "20m", "event": "room_timeout"},
            "instructions": _TEXT,
        },
        "with_police": {
            "responsible": "police",
            "kind": "terminal",
            "tags": ["emergency"],
            "instructions": _TEXT,
        },
    },
    "transitions": [
        {"event": "go", "from": ["desk"], "to": "room", "by": ["counter"], "notify": ["expert"]},
        {"event": "back", "from": ["room"], "to": "desk", "by": ["counter"]},
        {"event": "desk_timeout", "from": ["desk"], "to": "room", "by": ["clock"]},
        {"event": "room_timeout", "from": ["room"], "to": "desk", "by": ["clock"]},
        {"event": "acute_danger", "from": "*", "to": "with_police", "by": ["counter"]},
    ],
    "facts": {"age_band": ["0-7", "8-11", "12-15", "16-17"]},
}
ENCOUNTERS = 100


#: the clerk who opens the benchmark encounters (every actor but the clock carries an id)
COUNTER = lr.Actor("counter", "counter-1")


def best_of(repeat: int, run: Callable[[], float]) -> float:
    """The best (least disturbed) of ``repeat`` runs, each returning operations per second."""
    results = []
    for _ in range(repeat):
        gc.collect()
        results.append(run())
    return max(results)


def raw_sqlite(folder: Path, synchronous: str, n: int) -> Callable[[], float]:
    """One INSERT of an event row and one UPDATE of an encounter row per transaction."""
    conn = sqlite3.connect(folder / f"raw-{synchronous}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(
        "CREATE TABLE events (encounter_id TEXT, seq INTEGER, data TEXT,"
        " PRIMARY KEY (encounter_id, seq)) WITHOUT ROWID"
    )
    conn.execute("CREATE TABLE encounters (id TEXT PRIMARY KEY, state TEXT, version INTEGER)")
    ids = [f"{i:032x}" for i in range(ENCOUNTERS)]
    conn.executemany("INSERT INTO encounters VALUES (?, 'desk', 1)", [(i,) for i in ids])
    data = (
        '{"actor":{"role":"counter"},"at":"2026-03-02T10:00:00+01:00",' + '"x":"' + "y" * 160 + '"}'
    )
    seqs = dict.fromkeys(ids, 0)

    def run() -> float:
        start = time.perf_counter()
        for i in range(n):
            eid = ids[i % ENCOUNTERS]
            seqs[eid] += 1
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO events VALUES (?, ?, ?)", (eid, seqs[eid], data))
            conn.execute(
                "UPDATE encounters SET state = ?, version = version + 1 WHERE id = ?",
                ("room" if i % 2 else "desk", eid),
            )
            conn.execute("COMMIT")
        return n / (time.perf_counter() - start)

    return run


def fires(store: lr.Store, open_encounters: int = 0) -> Callable[[], None]:
    """One fire per call, round the first ENCOUNTERS encounters (``go``, ``back``, ...),
    with ``open_encounters`` more open in the store (that the fires never touch)."""
    engine = lr.Engine(
        protocols=[lr.load_protocol(PROTOCOL)],
        store=store,
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    ids = [engine.open("bench", COUNTER, facts={"age_band": "12-15"}).id for _ in range(ENCOUNTERS)]
    for _ in range(open_encounters):
        engine.open("bench", COUNTER)
    state = dict.fromkeys(ids, "desk")
    fire = engine.fire
    turn = iter(range(2**62))

    def one() -> None:
        eid = ids[next(turn) % ENCOUNTERS]
        event = "go" if state[eid] == "desk" else "back"
        fire(eid, event, COUNTER)
        state[eid] = "room" if event == "go" else "desk"

    return one


def engine_fire(store: lr.Store, n: int, open_encounters: int = 0) -> Callable[[], float]:
    """``n`` fires round the first ENCOUNTERS encounters, with ``open_encounters``
    more open in the store (that the fires never touch)."""
    one = fires(store, open_encounters)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            one()
        return n / (time.perf_counter() - start)

    return run


def _wal_pages(path: Path) -> list[int]:
    """The page number of every frame in the WAL beside ``path``, in order."""
    data = Path(f"{path}-wal").read_bytes()
    if len(data) < 32:
        return []
    size = int.from_bytes(data[8:12], "big")
    return [
        int.from_bytes(data[at : at + 4], "big")
        for at in range(32, len(data) - size - 23, 24 + size)
    ]


def pages_per_fire(folder: Path, n: int) -> tuple[float, dict[str, float]]:
    """WAL pages one durable fire writes, and per b-tree (table or index) how many of
    its pages a fire writes, on average over ``n`` fires (each written alone into an
    emptied WAL and mapped to b-trees through SQLite's ``dbstat``)."""
    path = folder / "pages.db"
    store = lr.SQLiteStore(path)
    one = fires(store)
    for _ in range(2 * ENCOUNTERS):  # past the first fires, as measured
        one()
    conn = store._db.get()  # the store's own connection (private: a benchmark)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    frames = 0
    written: dict[str, int] = {}
    for _ in range(n):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        one()
        pages = _wal_pages(path)
        frames += len(pages)
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        for page in set(pages):
            name = owner.get(page, "(file header)" if page == 1 else "(free)")
            written[name] = written.get(name, 0) + 1
    store.close()
    return frames / n, {k: v / n for k, v in sorted(written.items(), key=lambda kv: -kv[1])}


def bytes_per_encounter(folder: Path, encounters: int) -> float:
    """Bytes of the checkpointed file per encounter, for ``encounters`` encounters that
    each went the taskforce protocol's happy path (opened, six steps fired, closed,
    notifications delivered)."""
    import bench_engine  # the taskforce happy path of the event benchmarks

    path = folder / "size.db"
    store = lr.SQLiteStore(path, synchronous="NORMAL")
    engine = lr.Engine(
        protocols=[lr.load_protocol(bench_engine.PROTOCOL_FILE)],
        store=store,
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    for _ in range(encounters):
        eid = engine.open("taskforce", COUNTER, facts={"age_band": "12-15"}).id
        for event, actor in bench_engine.PATH:
            engine.fire(eid, event, pseudonymous(actor))
        engine.deliver()
    store._db.get().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path.stat().st_size / encounters


class _Recorder:
    """A connection that notes every statement it runs, with its arguments."""

    def __init__(self, conn: sqlite3.Connection, log: list[tuple[bool, str, Any]]) -> None:
        self.conn, self.log = conn, log

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        self.log.append((False, sql, args))
        return self.conn.execute(sql, args)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        rows = list(rows)
        self.log.append((True, sql, rows))
        return self.conn.executemany(sql, rows)


def _record(path: Path, copy: Path, synchronous: str, n: int) -> list[tuple[bool, str, Any]]:
    """The statements of ``n`` measured fires on ``path``; ``copy``: the file before them."""
    store = lr.SQLiteStore(path, synchronous=synchronous)
    fire = engine_fire(store, n)
    fire()  # as measured: the second and later runs
    conn = store._db.get()  # the store's own connection (private: a benchmark)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(path, copy)
    log: list[tuple[bool, str, Any]] = []
    recorder = _Recorder(conn, log)
    store._db.get = lambda: recorder  # type: ignore[method-assign, assignment, return-value]
    fire()
    store.close()
    return log


def sql_floor(folder: Path, synchronous: str, n: int, repeat: int) -> float:
    """Per second, the SQL of ``Engine.fire`` alone (see the module docstring)."""
    path, copy = folder / f"floor-{synchronous}.db", folder / f"floor-{synchronous}-copy.db"
    best = 0.0
    for _ in range(repeat):
        for leftover in folder.glob(f"floor-{synchronous}*"):
            leftover.unlink()
        log = _record(path, copy, synchronous, n)
        replay = sqlite3.connect(copy, isolation_level=None, cached_statements=64)
        replay.execute("PRAGMA journal_mode = WAL")
        replay.execute(f"PRAGMA synchronous = {synchronous}")
        replay.create_function("ledger_link", -1, ledger_link_bytes, deterministic=True)
        gc.collect()
        start = time.perf_counter()
        for many, sql, args in log:
            if many:
                replay.executemany(sql, args)
            else:
                replay.execute(sql, args).fetchall()
        best = max(best, n / (time.perf_counter() - start))
        replay.close()
    return best


def measure(quick: bool = False) -> dict[str, tuple[float, float]]:
    """Per ``synchronous`` setting: (raw transactions/s, Engine.fire/s on SQLiteStore)."""
    n, repeat = (300, 2) if quick else (3000, 3)
    out: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lastresort-bench-") as tmp:
        folder = Path(tmp)
        for sync in ("FULL", "NORMAL"):
            store = lr.SQLiteStore(folder / f"store-{sync}.db", synchronous=sync)
            fire = engine_fire(store, n)
            raw = raw_sqlite(folder, sync, n)
            # interleave the two so that a disturbance hits both alike
            raw_rate = fire_rate = 0.0
            for _ in range(repeat):
                raw_rate = max(raw_rate, best_of(1, raw))
                fire_rate = max(fire_rate, best_of(1, fire))
            out[sync] = (raw_rate, fire_rate)
            store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run")
    parser.add_argument("--floor", action="store_true", help="also the SQL of a fire alone")
    args = parser.parse_args()
    n = 300 if args.quick else 3000
    memory = best_of(3, engine_fire(lr.MemoryStore(), n))
    crowd = 10_000 if args.quick else 100_000
    crowded = best_of(3, engine_fire(lr.MemoryStore(), n, crowd))
    results = measure(args.quick)
    floors: dict[str, float] = {}
    if args.floor:
        with tempfile.TemporaryDirectory(prefix="lastresort-floor-") as tmp:
            for sync in results:
                floors[sync] = sql_floor(Path(tmp), sync, n, 2 if args.quick else 3)
    print(f"{'synchronous':<12} {'raw SQLite tx/s':>16} {'Engine.fire/s':>14} {'fire/raw':>9}")
    for sync, (raw, fire) in results.items():
        print(f"{sync:<12} {raw:>16,.0f} {fire:>14,.0f} {fire / raw:>8.0%}")
    for sync, floor in floors.items():
        raw = results[sync][0]
        print(
            f"{sync:<12} {'':>16} {floor:>14,.0f} {floor / raw:>8.0%}"
            "   the SQL of a fire alone, replayed (--floor)"
        )
    print(f"{'(memory)':<12} {'':>16} {memory:>14,.0f}   MemoryStore, for reference")
    print(
        f"{'(memory)':<12} {'':>16} {crowded:>14,.0f}   MemoryStore with {crowd:,} more open"
        f" encounters: {crowded / memory:.0%} of the rate with {ENCOUNTERS}"
    )
    with tempfile.TemporaryDirectory(prefix="lastresort-pages-") as tmp:
        frames, written = pages_per_fire(Path(tmp), 50 if args.quick else 200)
        size = bytes_per_encounter(Path(tmp), 100 if args.quick else 1000)
    print(f"WAL pages per durable fire: {frames:.1f}, in {len(written)} b-trees:")
    for name, pages in written.items():
        print(f"  {name:<32} {pages:5.2f}")
    print(f"bytes on disk per encounter (taskforce happy path, delivered): {size:,.0f}")
    full_raw, full_fire = results["FULL"]
    print(
        f"Engine.fire on SQLiteStore(synchronous=FULL) = {full_fire / full_raw:.0%} of raw"
        " SQLite transactions (goal >= 50%)"
    )


if __name__ == "__main__":
    main()
