"""The desk's date field at its edges: a post from an out-of-date page, a person
without permission posting a date, values that could echo, seconds and the exact
latest moment, and autumn's repeated hour (an adversarial review's cases)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

import lastresort as lr
from lastresort.service import CredentialStore, create_app

from .kit import csrf_of

AMS = ZoneInfo("Europe/Amsterdam")
OFFICER = lr.Actor("officer", "hovj-4")


class Desk:
    def __init__(
        self, engine: lr.Engine, clock: lr.VirtualClock, eid: str, clients: dict[str, TestClient]
    ) -> None:
        self.engine, self.clock, self.eid, self.clients = engine, clock, eid, clients

    def page(self, who: str = "mayor") -> str:
        r = self.clients[who].get(f"/desk/encounters/{self.eid}")
        assert r.status_code == 200, r.text
        return r.text

    def post(self, who: str, html: str, version: int, **data: str):
        return self.clients[who].post(
            f"/desk/encounters/{self.eid}/fire",
            data={"csrf": csrf_of(html), "version": str(version), **data},
        )

    def refusals(self) -> list[lr.Refusal]:
        return [r for r in self.engine.refusals() if r.encounter_id == self.eid]


def make_desk(
    tmp_path: Path,
    start: datetime,
    engine: lr.Engine | None = None,
    clock: lr.VirtualClock | None = None,
    protocol: str = "huisverbod",
) -> Iterator[Desk]:
    clock = clock or lr.VirtualClock(start)
    engine = engine or lr.Engine(store=lr.SQLiteStore(tmp_path / "desk.db"), clock=clock)
    enc = engine.open(
        protocol, OFFICER, facts={"subject": "adult"} if protocol == "huisverbod" else {}
    )
    if protocol == "huisverbod":
        for event in ("consult_veilig_thuis", "veilig_thuis_consulted", "impose"):
            engine.fire(enc.id, event, OFFICER)
        clock.advance(timedelta(hours=25))
        engine.tick()
    creds = CredentialStore(tmp_path / "credentials.json")
    tokens = {
        "mayor": creds.add(
            party="mayor", actor_id="mayor-1", scopes=("act",), protocols=(protocol,)
        )[0],
        "officer": creds.add(
            party="officer", actor_id="hovj-4", scopes=("act",), protocols=(protocol,)
        )[0],
    }
    app = create_app(engine, credentials=creds, run_scheduler=False)
    clients = {}
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as first:
        for who, token in tokens.items():
            c = (
                first
                if who == "mayor"
                else TestClient(app, follow_redirects=False, raise_server_exceptions=False)
            )
            page = c.get("/desk/")
            assert (
                c.post(
                    "/desk/sign-in", data={"token": token, "csrf": csrf_of(page.text)}
                ).status_code
                == 303
            )
            c.cookies.set("lr_desk_lang", "en")
            clients[who] = c
        yield Desk(engine, clock, enc.id, clients)
    engine.store.close()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    yield from make_desk(tmp_path, datetime(2026, 3, 2, 10, 0, tzinfo=AMS))


# -- 1. a race: the encounter moves on between the page and the post ---------------------


def test_stale_post_is_reported_stale_not_invalid_until(desk: Desk) -> None:
    html = desk.page()
    version = desk.engine.get(desk.eid).version
    # meanwhile, in another tab, the mayor withdraws the order
    desk.engine.fire(desk.eid, "withdraw", lr.Actor("mayor", "mayor-1"))
    r = desk.post("mayor", html, version, event="extend", until="2026-03-20T12:00")
    reasons = [x.reason for x in desk.refusals()]
    # expected: 409 'stale' (as for any other action posted from an old page), nothing recorded
    assert (r.status_code, reasons) == (409, []), (r.status_code, reasons)


def test_stale_post_with_no_date_after_the_step_changed(desk: Desk) -> None:
    html = desk.page()
    version = desk.engine.get(desk.eid).version
    desk.engine.fire(desk.eid, "court_suspends", lr.Actor("mayor", "mayor-1"))
    # a page from before: 'withdraw' still possible from 'suspended'; harmless, engine says stale
    r = desk.post("mayor", html, version, event="withdraw")
    assert r.status_code == 409


# -- 2. a person without permission posts an `until` -----------------------------------


@pytest.mark.parametrize("until", ["2026-03-20T12:00", "2027-01-01T00:00", "garbage", None])
def test_officer_posting_extend_is_refused_as_forbidden_once(desk: Desk, until: str | None) -> None:
    html = desk.page("officer")
    assert 'id="until-extend"' not in html  # the officer is not offered the extension
    version = desk.engine.get(desk.eid).version
    r = desk.post(
        "officer", html, version, event="extend", **({} if until is None else {"until": until})
    )
    refusals = desk.refusals()
    assert len(refusals) == 1, refusals
    [refusal] = refusals
    assert desk.engine.get(desk.eid).state == "in_force"
    # the permission refusal must be what is recorded and shown, whatever date was posted
    assert (r.status_code, refusal.category) == (403, "forbidden"), (r.status_code, refusal)
    assert "30-03-2026" not in r.text  # the order's latest end is not told to a non-mayor


# -- 3. values that could echo ---------------------------------------------------------


@pytest.mark.parametrize(
    "until",
    [
        '"><script>alert(1)</script>',
        "٢٠٢٦-٠٣-٢٠T١٢:٠٠",  # Arabic-Indic digits: \d matches them
        "２０２６-０３-２０T１２:００",
        "2026-03-20T12:00:60",
        "2026-03-20T24:00",
        "x" * 3000,
        "2026-03-20T12:00\n",
    ],
)
def test_nothing_posted_is_echoed_or_recorded(desk: Desk, until: str) -> None:
    html = desk.page()
    version = desk.engine.get(desk.eid).version
    r = desk.post("mayor", html, version, event="extend", until=until)
    assert r.status_code in (400, 413)
    assert until.strip() not in r.text
    for x in desk.refusals():
        assert until.strip() not in repr(x)
    assert len(desk.refusals()) <= 1


def test_seconds_and_exact_latest(desk: Desk) -> None:
    html = desk.page()
    version = desk.engine.get(desk.eid).version
    r = desk.post("mayor", html, version, event="extend", until="2026-03-30T10:00:00")
    assert r.status_code == 303
    assert desk.engine.deadlines(desk.eid)[0].due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_seconds_past_latest_refused(desk: Desk) -> None:
    html = desk.page()
    version = desk.engine.get(desk.eid).version
    r = desk.post("mayor", html, version, event="extend", until="2026-03-30T10:00:01")
    assert r.status_code == 400
    assert "no later than 30-03-2026 10:00 CEST" in r.text


# -- 4. the autumn repeated hour: the second 02:xx cannot be chosen --------------------


@pytest.fixture
def autumn(tmp_path: Path) -> Iterator[Desk]:
    yield from make_desk(tmp_path, datetime(2026, 10, 20, 10, 0, tzinfo=AMS))


def test_in_the_second_pass_of_the_repeated_hour_the_offered_minute_is_accepted(
    autumn: Desk,
) -> None:
    # now: 25 Oct 2026 02:10 CET (the second 02:10, 01:10 UTC)
    now = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)
    autumn.clock.advance(now - autumn.clock.now())
    assert autumn.engine.get(autumn.eid).state == "in_force"
    html = autumn.page()
    assert 'min="2026-10-25T02:11"' in html  # the page offers 02:11 .. onwards
    version = autumn.engine.get(autumn.eid).version
    r = autumn.post("mayor", html, version, event="extend", until="2026-10-25T02:30")
    # the first 02:30 (CEST, 00:30 UTC) has passed: the second (CET, 01:30 UTC) is meant
    assert r.status_code == 303, (r.status_code, [x.reason for x in autumn.refusals()])
    assert autumn.engine.deadlines(autumn.eid)[0].due == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_the_first_pass_of_the_repeated_hour_is_read_as_cest(autumn: Desk) -> None:
    now = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    autumn.clock.advance(now - autumn.clock.now())
    html = autumn.page()
    version = autumn.engine.get(autumn.eid).version
    r = autumn.post("mayor", html, version, event="extend", until="2026-10-25T02:30")
    assert r.status_code == 303
    assert autumn.engine.deadlines(autumn.eid)[0].due == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
