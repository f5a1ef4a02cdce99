"""PostgresStore: the durable ``Engine.fire`` rate next to raw PostgreSQL transactions
of the same shape, with one and with four worker processes, measured in the same run.

The raw anchor is what any durable write to the server costs at least: one
transaction (``synchronous_commit = on``) inserting one event row (a JSON text of
the same size) and updating one encounter row, then ``COMMIT``. ``Engine.fire``
does all the engine's work and commits several hashed event rows, the snapshot,
the deadline change, the outbox row and the ledger row in one such transaction.
With four workers, every worker has its own connection and its own encounters;
their commits still take turns on the ledger's head row (one global hash chain).

The server is ``LASTRESORT_BENCH_DSN`` (else ``LASTRESORT_TEST_DSN``, else
``postgresql://postgres@127.0.0.1:5432/test``); every run uses a fresh schema and
drops it. Without a server the row says so and names the DSN; nothing crashes.

Run:  .venv/bin/python benchmarks/bench_postgres.py [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

import bench_store

import lastresort as lr

DSN = os.environ.get(
    "LASTRESORT_BENCH_DSN",
    os.environ.get("LASTRESORT_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
)
WORKERS = (1, 4)
DATA = '{"actor":{"role":"counter"},"at":"2026-03-02T10:00:00+01:00","x":"' + "y" * 160 + '"}'


class Unreachable(Exception):
    """No PostgreSQL server at the DSN."""


def _connect() -> Any:
    import psycopg

    try:
        return psycopg.connect(DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unreachable(f"no PostgreSQL server at {DSN} ({first})") from exc


def _raw(schema: str, worker: int, n: int) -> Callable[[], float]:
    conn = _connect()
    conn.execute(f'SET search_path TO "{schema}_raw"')
    conn.execute("SET synchronous_commit = on")
    ids = [f"{worker:04x}{i:028x}" for i in range(bench_store.ENCOUNTERS // 4)]
    with conn.transaction():
        conn.cursor().executemany(
            "INSERT INTO raw_encounters VALUES (%s, 'desk', 1)", [(i,) for i in ids]
        )
    seqs = dict.fromkeys(ids, 0)

    def run() -> float:
        start = time.perf_counter()
        for i in range(n):
            eid = ids[i % len(ids)]
            seqs[eid] += 1
            with conn.transaction():
                conn.execute("INSERT INTO raw_events VALUES (%s, %s, %s)", (eid, seqs[eid], DATA))
                conn.execute(
                    "UPDATE raw_encounters SET state = %s, version = version + 1 WHERE id = %s",
                    ("room" if i % 2 else "desk", eid),
                )
        return n / (time.perf_counter() - start)

    return run


def _fire(schema: str, n: int) -> Callable[[], float]:
    store = lr.PostgresStore(DSN, schema=schema, synchronous_commit="on")
    return bench_store.engine_fire(store, n)


def _worker(kind: str, schema: str, worker: int, n: int, start: Any, out: Any) -> None:
    run = _raw(schema, worker, n) if kind == "raw" else _fire(schema, n)
    start.wait()
    began = time.perf_counter()
    run()
    out.send((began, time.perf_counter()))


def _rate(kind: str, schema: str, workers: int, n: int) -> float:
    """Operations per second of ``workers`` processes doing ``n`` each, from the
    first start to the last end."""
    if workers == 1:
        run = _raw(schema, 0, n) if kind == "raw" else _fire(schema, n)
        run()  # warm up (the second and later runs are measured)
        return run()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(workers, timeout=120)
    pipes = [context.Pipe(duplex=False) for _ in range(workers)]
    procs = [
        context.Process(target=_worker, args=(kind, schema, w + 1, n, start, send))
        for w, (_, send) in enumerate(pipes)
    ]
    for p in procs:
        p.start()
    spans = [recv.recv() for recv, _ in pipes]
    for p in procs:
        p.join(120)
    return workers * n / (max(e for _, e in spans) - min(b for b, _ in spans))


def measure(quick: bool = False) -> dict[int, tuple[float, float]]:
    """Per number of workers: (raw PostgreSQL tx/s, Engine.fire/s on PostgresStore).

    :raises Unreachable: naming the DSN when there is no server."""
    n, repeat = (60, 1) if quick else (600, 3)
    admin = _connect()
    out: dict[int, tuple[float, float]] = {}
    try:
        for workers in WORKERS:
            raw_rate = fire_rate = 0.0
            for _ in range(repeat):  # taking turns, so that a disturbance hits both alike
                schema = f"lr_bench_{secrets.token_hex(6)}"
                admin.execute(f'CREATE SCHEMA "{schema}_raw"')
                admin.execute(
                    f'CREATE TABLE "{schema}_raw".raw_events (encounter_id TEXT, seq INTEGER,'
                    " data TEXT, PRIMARY KEY (encounter_id, seq))"
                )
                admin.execute(
                    f'CREATE TABLE "{schema}_raw".raw_encounters (id TEXT PRIMARY KEY, state TEXT,'
                    " version INTEGER)"
                )
                try:
                    raw_rate = max(raw_rate, _rate("raw", schema, workers, n))
                    fire_rate = max(fire_rate, _rate("fire", schema, workers, n))
                finally:
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}_raw" CASCADE')
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            out[workers] = (raw_rate, fire_rate)
    finally:
        admin.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run")
    args = parser.parse_args()
    try:
        results = measure(args.quick)
    except Unreachable as exc:
        print(f"PostgresStore: not measured: {exc}")
        raise SystemExit(2) from exc
    print(f"{'workers':<8} {'raw PostgreSQL tx/s':>20} {'Engine.fire/s':>14} {'fire/raw':>9}")
    for workers, (raw, fire) in results.items():
        print(f"{workers:<8} {raw:>20,.0f} {fire:>14,.0f} {fire / raw:>8.0%}")


if __name__ == "__main__":
    main()
