"""``lastresort serve`` (the HTTP service) and ``lastresort credentials add|list|revoke``
(its API tokens).

``serve`` runs the JSON API and the background scheduler over the installed
protocols, on a SQLite file (the embedded default, ``--db``) or a PostgreSQL store
(``--dsn``). ``serve --openapi`` prints the OpenAPI document and exits. Exit codes:
0 stopped normally, 2 unusable input (a store or credentials file that cannot be
opened, the service extra missing); nothing is created on an error but the store
file itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InvalidArgument, StoreError

__all__ = ["register"]

DEFAULT_CREDENTIALS = "lastresort-credentials.json"


def _service_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise StoreError(
            problem="the service needs its extra: pip install 'lastresort[service]'"
        ) from None


def _serve(args: argparse.Namespace) -> int:
    _service_extra()
    from ..service.openapi import openapi

    if args.openapi:
        print(json.dumps(openapi(), indent=2, sort_keys=True))
        return 0
    import uvicorn

    from ..clock import SystemClock
    from ..engine.engine import Engine
    from ..service import CredentialStore, SchedulerConfig, create_app
    from ..store.base import Store

    if args.dsn is not None and args.db is not None:
        print("lastresort: serve: give --db or --dsn, not both", file=sys.stderr)
        return 2
    credentials_path = Path(args.credentials)
    if not credentials_path.is_file():
        print(
            f"lastresort: serve: {credentials_path}: no credentials file; make a token first"
            f" with `lastresort credentials add --party counter --actor-id ID`",
            file=sys.stderr,
        )
        return 2
    credentials = CredentialStore(credentials_path)
    config = SchedulerConfig(tick_interval=args.tick, deliver_interval=args.tick)
    store: Store
    if args.dsn is not None:
        from ..store.postgres import PostgresStore

        store = PostgresStore(args.dsn, schema=args.schema)
    else:
        from ..store.sqlite import SQLiteStore

        store = SQLiteStore(args.db or "lastresort.db")
    engine = Engine(store=store, clock=SystemClock())
    app = create_app(engine, credentials=credentials, scheduler=config)
    print(
        f"lastresort: serving {len(engine.protocols)} protocols on http://{args.host}:{args.port}"
        f"/api/v1 (OpenAPI: /api/v1/openapi.json)",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    finally:
        store.close()
    return 0


def _credentials(args: argparse.Namespace) -> int:
    from ..service.auth import CredentialStore

    try:
        store = CredentialStore(Path(args.file))
        if args.credentials_action == "add":
            token, credential = store.add(
                party=args.party,
                actor_id=args.actor_id,
                protocols=args.protocol or ["*"],
                scopes=args.scope or ["act"],
            )
            print(f"token id {credential.token_id} for {credential.party} {credential.actor_id}")
            print("the token (shown only now; keep it secret):", file=sys.stderr)
            print(token)
        elif args.credentials_action == "revoke":
            revoked = store.revoke(args.token_id)
            print(f"revoked token {revoked.token_id} ({revoked.party} {revoked.actor_id})")
        else:
            for c in store.list():
                state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "active"
                print(
                    f"{c.token_id}  {c.party:<14} {c.actor_id:<16}"
                    f" {','.join(c.protocols):<12} {','.join(c.scopes):<10} {state}"
                )
    except (InvalidArgument, StoreError) as exc:
        print(f"lastresort: credentials: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` and ``credentials`` to the ``lastresort`` command."""
    p = sub.add_parser(
        "serve",
        help="run the HTTP service (JSON API and scheduler) over the installed protocols",
    )
    p.add_argument("--db", metavar="PATH", help="the SQLite store file (default lastresort.db)")
    p.add_argument("--dsn", metavar="DSN", help="a PostgreSQL store instead (postgresql://...)")
    p.add_argument("--schema", metavar="NAME", help="the PostgreSQL schema (with --dsn)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--credentials",
        default=DEFAULT_CREDENTIALS,
        metavar="FILE",
        help=f"the API tokens file (default {DEFAULT_CREDENTIALS})",
    )
    p.add_argument(
        "--tick",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between rounds of deadlines and delivery (default 1)",
    )
    p.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.add_argument("--openapi", action="store_true", help="print the OpenAPI document and exit")
    p.set_defaults(run=_serve)

    p = sub.add_parser("credentials", help="make, list or revoke the service's API tokens")
    p.add_argument(
        "--file",
        default=DEFAULT_CREDENTIALS,
        metavar="FILE",
        help=f"the API tokens file (default {DEFAULT_CREDENTIALS})",
    )
    actions = p.add_subparsers(dest="credentials_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="make a token bound to one party and actor id")
    add.add_argument("--party", required=True, help="the role the holder acts as (e.g. counter)")
    add.add_argument(
        "--actor-id", required=True, help="the holder's pseudonymous id (never a name)"
    )
    add.add_argument(
        "--protocol", action="append", metavar="ID", help="a protocol it may act in (repeat)"
    )
    add.add_argument(
        "--scope", action="append", choices=["act", "audit"], help="what it may do (repeat)"
    )
    actions.add_parser("list", help="list the tokens (never a token or its hash)")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    p.set_defaults(run=_credentials)
