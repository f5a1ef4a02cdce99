"""Adversarial review of the PostgreSQL additions (per-schema migration lock,
``purge --dsn``, the refusal log in schema version 2): what a malformed connection
string, an open encounter or an older schema do to them.

A DSN holds a password: no error, log line or CLI output may show it, whether the
DSN fails to parse (libpq quotes the offending token, or the whole URI) or the server
refuses it."""

from __future__ import annotations

from typing import Any

import pytest

import lastresort as lr
from lastresort.cli import main as cli
from lastresort.store.postgres import verify_postgres
from tests import pg_kit
from tests.store_kit import START, relay

SECRET = "s3cretpw"
#: connection strings libpq refuses to parse, each quoting (a part holding) the password
#: in its own message: a bad percent escape in the password, an unterminated IPv6 host
#: (the whole URI is quoted), an unterminated quote after ``password=``
MALFORMED = (
    f"postgresql://someone:p%zz{SECRET}@127.0.0.1/test",
    f"postgresql://someone:{SECRET}@[::1/test",
    f"host=127.0.0.1 password='{SECRET} dbname=test",
    f"postgresql://someone:{SECRET}@127.0.0.1:99999/test",
)


@pytest.mark.parametrize("dsn", MALFORMED)
def test_a_malformed_dsn_never_shows_its_password_in_the_library(dsn: str) -> None:
    with pytest.raises(lr.StoreError) as caught:
        lr.PostgresStore(dsn)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.__dict__)
    with pytest.raises(lr.StoreError) as caught:
        verify_postgres(dsn)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.__dict__)


@pytest.mark.parametrize("dsn", MALFORMED)
def test_a_malformed_dsn_never_shows_its_password_on_the_command_line(
    dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["audit", "verify", "--dsn", dsn]) == 2
    out, err = capsys.readouterr()
    assert "lastresort: audit verify:" in err
    assert SECRET not in out + err
    assert cli(["purge", "--dsn", dsn, "--older-than", "20y"]) == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err


def test_a_refused_login_names_the_server_not_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = f"postgresql://nobody_{SECRET}x:{SECRET}@127.0.0.1:5432/test"
    assert cli(["audit", "verify", "--dsn", dsn]) == 2
    err = capsys.readouterr().err
    assert "lastresort: audit verify:" in err
    assert f":{SECRET}@" not in err


def _engine(store: lr.Store) -> lr.Engine:
    return lr.Engine(
        protocols=[relay()], store=store, clock=lr.VirtualClock(START), entry_points=False
    )


def test_purge_on_a_dsn_never_touches_an_open_encounter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = pg_kit.make_store()
    engine = _engine(store)
    clerk, expert = lr.Actor("counter", "c-1"), lr.Actor("expert", "e-1")
    open_one = engine.open("relay", clerk, facts={"age_band": "8-11"}).id
    closed = engine.open("relay", clerk, facts={"age_band": "0-7"}).id
    engine.fire(closed, "take_over", expert)
    engine.fire(closed, "close", expert)
    before = engine.get(open_one)
    # retention 1 day as of a century on: every closed encounter is due, an open one never
    args = ["purge", "--dsn", pg_kit.DSN, "--schema", str(store.schema), "--older-than", "1d"]
    assert cli([*args, "--as-of", "2126-01-01T00:00:00+00:00"]) == 0
    assert "purged the facts of 1 encounter" in capsys.readouterr().out
    assert engine.get(open_one) == before
    assert dict(engine.get(open_one).facts) == {"age_band": "8-11"}
    assert dict(engine.get(closed).facts) == {}
    assert cli(["audit", "verify", "--dsn", pg_kit.DSN, "--schema", str(store.schema)]) == 0
    store.close()


def test_no_lastresort_store_is_created_by_purge_in_the_search_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    schema = pg_kit.new_schema()
    with pg_kit.connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    dsn = f"{pg_kit.DSN}?options=-csearch_path%3D{schema}"
    assert cli(["purge", "--dsn", dsn, "--older-than", "20y"]) == 2
    assert "not a lastresort store" in capsys.readouterr().err
    with pg_kit.connect() as conn:
        tables: list[Any] = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    assert tables == []
