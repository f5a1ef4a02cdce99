"""A deadline whose date the person chooses, at the desk: the mayor extends a
huisverbod to a date (Wth art. 9(1): no later than four weeks after imposing).

The page offers a date and time field, bounded by now and the latest moment the
engine accepts (``Engine.latest_until``), in the protocol's time zone; what is posted
is checked as the engine checks it, refused with a message that says what is wrong,
recorded, and changes nothing. The shipped huisverbod plugin (an entry point of
this venv) is the protocol; its four weeks cross the start of summer time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

import lastresort as lr
from lastresort.service import CredentialStore, create_app

from .kit import csrf_of

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 3, 2, 10, 0, tzinfo=AMS)  # summer time starts on 29 March
OFFICER = lr.Actor("officer", "hovj-4")
#: imposed at START (10:00 CET); four weeks on the calendar in Amsterdam end on 30 March
#: at 10:00 CEST, an hour before four weeks of elapsed time: the earlier holds
LATEST = datetime(2026, 3, 30, 10, 0, tzinfo=AMS)


@dataclass
class Huisverbod:
    engine: lr.Engine
    clock: lr.VirtualClock
    mayor: TestClient
    encounter_id: str

    def page(self) -> str:
        response = self.mayor.get(f"/desk/encounters/{self.encounter_id}")
        assert response.status_code == 200, response.text
        return response.text

    def fire(self, event: str, **extra: str) -> object:
        html = self.page()
        version = self.engine.get(self.encounter_id).version
        return self.mayor.post(
            f"/desk/encounters/{self.encounter_id}/fire",
            data={"csrf": csrf_of(html), "event": event, "version": str(version), **extra},
        )

    def refusals(self) -> list[lr.Refusal]:
        return [r for r in self.engine.refusals() if r.encounter_id == self.encounter_id]


@pytest.fixture
def huisverbod(tmp_path: Path) -> Iterator[Huisverbod]:
    """A huisverbod imposed at START by the officer, in force a day later; the mayor
    signed in at the desk."""
    clock = lr.VirtualClock(START)
    engine = lr.Engine(store=lr.SQLiteStore(tmp_path / "desk.db"), clock=clock)
    assert "huisverbod" in engine.protocols, engine.broken_plugins
    encounter = engine.open("huisverbod", OFFICER, facts={"subject": "adult"})
    for event in ("consult_veilig_thuis", "veilig_thuis_consulted", "impose"):
        engine.fire(encounter.id, event, OFFICER)
    clock.advance(timedelta(hours=25))
    engine.tick()
    assert engine.get(encounter.id).state == "in_force"
    credentials = CredentialStore(tmp_path / "credentials.json")
    token, _ = credentials.add(
        party="mayor", actor_id="mayor-1", scopes=("act",), protocols=("huisverbod",)
    )
    app = create_app(engine, credentials=credentials, run_scheduler=False)
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as mayor:
        page = mayor.get("/desk/")
        signed = mayor.post("/desk/sign-in", data={"token": token, "csrf": csrf_of(page.text)})
        assert signed.status_code == 303, signed.text
        mayor.cookies.set("lr_desk_lang", "en")
        yield Huisverbod(engine, clock, mayor, encounter.id)
    engine.store.close()


def test_the_engine_says_the_latest_date_it_accepts(huisverbod: Huisverbod) -> None:
    engine, eid = huisverbod.engine, huisverbod.encounter_id
    assert engine.latest_until(eid, "extended") == LATEST.astimezone(UTC)
    # read in UTC, the calendar and the elapsed four weeks agree: 09:00 UTC
    assert engine.latest_until(eid, "extended", "UTC") == datetime(2026, 3, 30, 9, tzinfo=UTC)
    assert engine.latest_until(eid, "extended", UTC) == datetime(2026, 3, 30, 9, tzinfo=UTC)
    assert engine.latest_until(eid, "in_force") is None  # a plain deadline: not chosen
    assert engine.latest_until(eid, "withdrawn") is None  # no deadline


@pytest.mark.parametrize(
    ("args", "error", "named"),
    [
        (("nobody", "extended"), lr.UnknownEncounter, "nobody"),
        ((None, "extended"), lr.InvalidArgument, "encounter_id"),
        (("{eid}", "no_such_step"), lr.InvalidArgument, "step"),
        (("{eid}", "extended", "Mars/Olympus"), lr.InvalidArgument, "zone"),
        (("{eid}", "extended", 3600), lr.InvalidArgument, "zone"),
        (("{eid}", "extended", "x" * 300), lr.InvalidArgument, "zone"),  # OSError inside
    ],
)
def test_latest_until_refuses_what_is_not_an_encounter_step_or_zone(
    huisverbod: Huisverbod, args: tuple[object, ...], error: type[Exception], named: str
) -> None:
    eid = huisverbod.encounter_id
    call = [eid if a == "{eid}" else a for a in args]
    with pytest.raises(error, match=named):
        huisverbod.engine.latest_until(*call)  # type: ignore[arg-type]


def test_the_extension_asks_for_a_date_between_now_and_the_latest(huisverbod: Huisverbod) -> None:
    html = huisverbod.page()
    assert 'type="datetime-local" id="until-extend" name="until" required' in html
    assert 'min="2026-03-03T11:01"' in html  # now (11:00 CET) and a minute
    assert 'max="2026-03-30T10:00"' in html
    assert "No later than 30-03-2026 10:00 CEST (time in Europe/Amsterdam)." in html
    # only the extension asks: withdrawing has no date
    assert html.count('type="datetime-local"') == 1


def test_the_mayor_extends_to_the_chosen_date(huisverbod: Huisverbod) -> None:
    response = huisverbod.fire("extend", until="2026-03-20T12:00")
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    engine, eid = huisverbod.engine, huisverbod.encounter_id
    assert engine.get(eid).state == "extended"
    [deadline] = engine.deadlines(eid)
    assert deadline.due == datetime(2026, 3, 20, 12, 0, tzinfo=AMS)
    assert deadline.due == datetime(2026, 3, 20, 11, 0, tzinfo=UTC)
    assert not huisverbod.refusals()


def test_the_latest_moment_itself_is_accepted_after_summer_time_starts(
    huisverbod: Huisverbod,
) -> None:
    response = huisverbod.fire("extend", until="2026-03-30T10:00")
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    [deadline] = huisverbod.engine.deadlines(huisverbod.encounter_id)
    assert deadline.due == LATEST  # 08:00 UTC: the calendar's four weeks, not elapsed time


@pytest.mark.parametrize(
    ("until", "reason", "shown"),
    [
        (None, "until-missing", "Choose the date and time until which it holds."),
        ("", "until-missing", "Choose the date and time until which it holds."),
        (
            "2026-03-30T10:01",
            "until-out-of-range",
            "The date must lie after now and no later than 30-03-2026 10:00 CEST.",
        ),
        (
            "2026-03-03T11:00",  # now: not later than now
            "until-out-of-range",
            "The date must lie after now and no later than 30-03-2026 10:00 CEST.",
        ),
        (
            "2026-03-29T02:30",  # the clock jumps from 02:00 to 03:00 that night
            "until-nonexistent",
            "This is not a date and time that exists in Europe/Amsterdam",
        ),
        ("2026-03-20T12:00+01:00", "until-malformed", "This request is not valid (until)."),
        ("2026-03-20 12:00", "until-malformed", "This request is not valid (until)."),
        ("2026-02-30T12:00", "until-malformed", "This request is not valid (until)."),
        ("next friday, child at aunt's", "until-malformed", "This request is not valid (until)."),
    ],
)
def test_a_wrong_date_is_refused_explained_recorded_and_changes_nothing(
    huisverbod: Huisverbod, until: str | None, reason: str, shown: str
) -> None:
    engine, eid = huisverbod.engine, huisverbod.encounter_id
    before = engine.get(eid)
    pending = engine.deadlines(eid)
    timeline = engine.timeline(eid)
    response = huisverbod.fire("extend", **({} if until is None else {"until": until}))
    assert response.status_code == 400  # type: ignore[attr-defined]
    html = response.text  # type: ignore[attr-defined]
    assert shown in html
    assert "Nothing has changed" in html
    if until:
        assert until not in html.replace('min="2026-03-03T11:01"', "")  # never echoed
    assert engine.get(eid) == before
    assert engine.deadlines(eid) == pending
    assert engine.timeline(eid) == timeline
    [refusal] = huisverbod.refusals()
    assert (refusal.action, refusal.reason, refusal.category) == ("desk:fire", reason, "invalid")
    assert refusal.actor_id == "mayor-1"


def test_a_date_for_an_action_that_asks_none_is_refused(huisverbod: Huisverbod) -> None:
    engine, eid = huisverbod.engine, huisverbod.encounter_id
    before = engine.get(eid)
    response = huisverbod.fire("withdraw", until="2026-03-20T12:00")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "This request is not valid (until)." in response.text  # type: ignore[attr-defined]
    assert engine.get(eid) == before
    assert [r.reason for r in huisverbod.refusals()] == ["until-not-asked"]


def test_the_field_is_in_dutch_too(huisverbod: Huisverbod) -> None:
    huisverbod.mayor.cookies.set("lr_desk_lang", "nl")
    html = huisverbod.page()
    assert "Tot (datum en tijd)" in html
    assert "Uiterlijk 30-03-2026 10:00 CEST (tijd in Europe/Amsterdam)." in html
