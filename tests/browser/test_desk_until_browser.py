"""The date field of a chosen deadline in Chromium: the mayor extends a huisverbod at
the desk (the shipped huisverbod plugin), typing the date with the keyboard. The
browser itself holds the field to its bounds (``min``/``max``/``required``): an empty
or too late date is not even posted; a date in bounds extends the order to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

import lastresort as lr
from lastresort.service import CredentialStore
from tests.browser.conftest import Served, serving
from tests.browser.test_desk_browser import TABLET, check_page, shot

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 3, 2, 10, 0, tzinfo=AMS)
OFFICER = lr.Actor("officer", "hovj-4")


@pytest.fixture
def order(tmp_path: Path) -> Iterator[tuple[Served, str]]:
    """A huisverbod in force (imposed at START), served; the mayor's token."""
    clock = lr.VirtualClock(START)
    engine = lr.Engine(store=lr.SQLiteStore(tmp_path / "desk.db"), clock=clock)
    encounter = engine.open("huisverbod", OFFICER, facts={"subject": "adult"})
    for event in ("consult_veilig_thuis", "veilig_thuis_consulted", "impose"):
        engine.fire(encounter.id, event, OFFICER)
    clock.advance(timedelta(hours=25))
    engine.tick()
    credentials = CredentialStore(tmp_path / "credentials.json")
    token, _ = credentials.add(party="mayor", actor_id="mayor-1", protocols=("huisverbod",))
    with serving(engine, credentials) as base:
        yield Served(base, engine, clock, {"mayor": token}, credentials), encounter.id


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=TABLET, locale="nl-NL")
    yield context.new_page()
    context.close()


def test_the_mayor_extends_to_a_date_typed_with_the_keyboard(
    order: tuple[Served, str], page: Page
) -> None:
    served, eid = order
    page.goto(f"{served.base}/desk/")
    page.get_by_label("Toegangssleutel").fill(served.tokens["mayor"])
    page.get_by_role("button", name="Inloggen").click()
    page.goto(f"{served.base}/desk/encounters/{eid}")
    check_page(page)  # the field is labelled and at least 44px high, nothing overflows
    field = page.get_by_label("Tot (datum en tijd)")
    expect(field).to_have_attribute("max", "2026-03-30T10:00")
    expect(page.locator("#until-hint-extend")).to_contain_text("Uiterlijk 30-03-2026 10:00 CEST")
    before = served.engine.get(eid).version

    # empty, then too late: the browser refuses to post (nothing reaches the service)
    page.locator('button[data-event="extend"]').click()
    assert field.evaluate("el => el.validity.valueMissing") is True
    field.fill("2026-03-30T10:01")
    assert field.evaluate("el => el.validity.rangeOverflow") is True
    page.locator('button[data-event="extend"]').click()
    assert served.engine.get(eid).version == before
    assert not served.engine.refusals()

    # in bounds: typed, then the form sent with the keyboard
    field.fill("2026-03-20T12:00")
    shot(page, "mayor-extend")
    field.press("Enter")
    expect(page.locator("#message")).to_be_visible()
    check_page(page)
    assert served.engine.get(eid).state == "extended"
    [deadline] = served.engine.deadlines(eid)
    assert deadline.due == datetime(2026, 3, 20, 12, 0, tzinfo=AMS)
