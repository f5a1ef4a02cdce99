"""``lastresort audit verify DB`` and ``lastresort purge DB --older-than 20y`` (each also
with ``--dsn postgresql://... [--schema NAME]`` for a PostgreSQL store).

Exit codes of ``audit verify``: 0 every chain verifies and everything derived from
the events agrees, 1 a link is broken or a row disagrees with its events (the first
problem is named: encounter id and sequence number), 2 the file is unusable
(missing, not SQLite, not a lastresort store, newer than this version, or on
read-only media with a ``-wal`` that SQLite cannot read there). It never writes to
the file, also on read-only media.
``purge``: 0 done, 2 unusable input (also a PostgreSQL schema that is empty or not a
lastresort store: purge never creates one); nothing is changed on an error. Neither
command ever prints anything of a child (no facts), only ids and counts.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidArgument, StoreError
from ..protocol.conversion import converter
from ..store.audit import AuditReport, verify
from ..store.retention import parse_retention
from ..store.schema import schema_version
from ..store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from ..store.postgres import PostgresStore

__all__ = ["register"]


def _as_of(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment: datetime = converter.structure(text, datetime)
    except ValueError as exc:
        raise ValueError(f"--as-of: {exc}") from None
    return moment


def _existing_store(path: Path, copy_to: Path | None = None) -> SQLiteStore:
    """Open ``path`` only if it already is a lastresort store: never create or
    convert some other file.

    :param copy_to: open a copy made there instead (read-only from ``path``): opening a
        store of an older schema upgrades it, and a dry run changes nothing."""
    if not path.is_file():
        raise StoreError(problem=f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = schema_version(conn, str(path))
            if version and copy_to is not None:
                target = sqlite3.connect(copy_to)
                try:
                    conn.backup(target)
                finally:
                    target.close()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(problem=f"{path}: not a readable SQLite database: {exc}") from exc
    if version == 0:
        raise StoreError(problem=f"{path}: an empty file, not a lastresort store")
    return SQLiteStore(copy_to or path)


def _dry_run_count(path: Path, cutoff: datetime, now: datetime) -> int:
    """What ``purge`` would remove, counted on a copy (see :func:`_existing_store`)."""
    with (
        tempfile.TemporaryDirectory(prefix="lastresort-purge-") as tmp,
        _existing_store(path, copy_to=Path(tmp) / "copy.db") as store,
    ):
        return store.purge_facts(cutoff, dry_run=True, now=now)


def _existing_postgres(dsn: str, schema: str | None) -> PostgresStore:
    """Open the PostgreSQL store in ``schema`` only if it already is one: never
    create a schema or tables in some other database."""
    from ..store.postgres import (
        _SCHEMA_NAME,
        PostgresStore,
        _psycopg,
        pg_connect,
        pg_schema_version,
    )

    psycopg = _psycopg()  # StoreError naming the extra when it is not installed
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise InvalidArgument(
            call="purge", argument="--schema", problem="a plain lowercase SQL name"
        )
    try:
        with pg_connect(dsn, autocommit=True, connect_timeout=10) as conn:
            if schema is not None:
                conn.execute(f'SET search_path TO "{schema}"')
            where = f"PostgreSQL schema {schema or '(search_path)'}"
            if pg_schema_version(conn, where) == 0:
                raise StoreError(problem=f"{where}: empty, not a lastresort store")
    except psycopg.ProgrammingError as exc:  # its message may quote the DSN's password
        raise InvalidArgument(
            call="purge", argument="--dsn", problem="a valid PostgreSQL connection string"
        ) from exc
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(problem=f"cannot connect to PostgreSQL: {first}") from exc
    return PostgresStore(dsn, schema=schema)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _print_report(path: str, report: AuditReport) -> None:
    counts = ", ".join(
        _count(n, noun)
        for n, noun in (
            (report.encounters, "encounter"),
            (report.events, "event"),
            (report.commits, "commit"),
            *([(report.refusals, "refusal")] if report.refusals else []),
        )
    )
    if report.ok:
        print(f"audit verify {path}: OK — {counts}; every chain verifies")
    else:
        print(
            f"audit verify {path}: BROKEN — {_count(len(report.problems), 'problem')} in {counts}"
        )
        print(f"first broken link: {report.first}")
        for problem in report.problems:
            print(f"  - {problem}")
    if report.head is not None:
        n, link = report.head
        print(f"ledger head {n}:{link} (keep it elsewhere; check later with --anchor)")
    if report.refusal_head is not None:
        n, link = report.refusal_head
        print(f"refusal head {n}:{link} (keep it elsewhere; check later with --refusal-anchor)")


def _anchor(text: str) -> tuple[int, str]:
    n, sep, link = text.partition(":")
    if not (sep and n.isdigit() and re.fullmatch(r"[0-9a-f]{64}", link)):
        raise argparse.ArgumentTypeError(
            f"invalid anchor {text!r}: expected N:LINK as printed by 'audit verify'"
        )
    return int(n), link


def _verify(args: argparse.Namespace) -> int:
    if (args.db is None) == (args.dsn is None) or (args.schema and args.dsn is None):
        print(
            "lastresort: audit verify: name a store file DB, or a PostgreSQL store with --dsn"
            " (and --schema), not both",
            file=sys.stderr,
        )
        return 2
    try:
        if args.dsn is not None:
            from ..store.postgres import verify_postgres

            report = verify_postgres(
                args.dsn,
                schema=args.schema,
                anchor=args.anchor,
                refusal_anchor=args.refusal_anchor,
            )
        else:
            report = verify(args.db, anchor=args.anchor, refusal_anchor=args.refusal_anchor)
    except (StoreError, InvalidArgument) as exc:
        print(f"lastresort: audit verify: {exc}", file=sys.stderr)
        return 2
    _print_report(args.db or f"--dsn (schema {args.schema or 'search_path'})", report)
    return 0 if report.ok else 1


def _purge(args: argparse.Namespace) -> int:
    try:
        retention = parse_retention(args.older_than)
        now = _as_of(args.as_of)
    except ValueError as exc:
        print(f"lastresort: purge: {exc}", file=sys.stderr)
        return 2
    if (args.db is None) == (args.dsn is None) or (args.schema and args.dsn is None):
        print(
            "lastresort: purge: name a store file DB, or a PostgreSQL store with --dsn"
            " (and --schema), not both",
            file=sys.stderr,
        )
        return 2
    cutoff = retention.cutoff(now)
    try:
        if args.dsn is not None:
            with _existing_postgres(args.dsn, args.schema) as pg_store:
                count = pg_store.purge_facts(cutoff, dry_run=args.dry_run, now=now)
        elif args.dry_run:
            count = _dry_run_count(Path(args.db), cutoff, now)
        else:
            with _existing_store(Path(args.db)) as store:
                count = store.purge_facts(cutoff, dry_run=False, now=now)
    except (StoreError, InvalidArgument) as exc:
        print(f"lastresort: purge: {exc}", file=sys.stderr)
        return 2
    noun = _count(count, "encounter")
    if args.dry_run:
        print(
            f"would purge the facts of {noun} closed before {cutoff.isoformat()}"
            f" (retention {retention}); nothing changed (--dry-run)"
        )
    else:
        print(
            f"purged the facts of {noun} closed before {cutoff.isoformat()}"
            f" (retention {retention}); their step timelines and audit chains remain"
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` and ``purge`` to the ``lastresort`` command."""
    audit = sub.add_parser("audit", help="check the hash-chained audit trail of a store file")
    actions = audit.add_subparsers(dest="audit_action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "verify",
        help="check every chain and every row derived from it; name the first problem"
        " (exit 0 ok, 1 broken, 2 unusable); never writes, also on read-only media",
    )
    p.add_argument("db", nargs="?", help="a lastresort SQLite store file")
    p.add_argument(
        "--dsn",
        metavar="DSN",
        help="verify a PostgreSQL store instead: a connection string (postgresql://host/db);"
        " read in one read-only transaction",
    )
    p.add_argument(
        "--schema", metavar="NAME", help="the PostgreSQL schema of the store (with --dsn)"
    )
    p.add_argument(
        "--anchor",
        type=_anchor,
        metavar="N:LINK",
        help="a ledger head printed by an earlier run; fail if the ledger no longer holds it",
    )
    p.add_argument(
        "--refusal-anchor",
        type=_anchor,
        metavar="SEQ:HASH",
        help="a refusal head printed by an earlier run; fail if the refusal log no longer"
        " holds it (the log cut back or rewritten with its head)",
    )
    p.set_defaults(run=_verify)

    p = sub.add_parser(
        "purge",
        help="remove the facts of encounters closed longer ago than the retention period",
        description="Remove the facts (and their salt) of encounters closed longer ago than"
        " --older-than. Their anonymous step timelines stay, and the audit chain still verifies.",
    )
    p.add_argument("db", nargs="?", help="a lastresort SQLite store file")
    p.add_argument(
        "--dsn",
        metavar="DSN",
        help="purge a PostgreSQL store instead: a connection string (postgresql://host/db)",
    )
    p.add_argument(
        "--schema", metavar="NAME", help="the PostgreSQL schema of the store (with --dsn)"
    )
    p.add_argument(
        "--older-than",
        required=True,
        metavar="PERIOD",
        help="retention: whole years ('20y', the youth-care norm) or a duration ('90d', '2w')",
    )
    p.add_argument("--dry-run", action="store_true", help="only count; change nothing")
    p.add_argument(
        "--as-of",
        metavar="DATETIME",
        help="measure from this ISO 8601 moment with a time zone (default: now)",
    )
    p.set_defaults(run=_purge)
