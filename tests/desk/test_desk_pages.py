"""The counter-desk page over HTTP: sign-in, the session cookie, CSRF, refusals
(shown in the person's language, recorded, nothing changed), the work queue,
opening with facts only, and the language switch. The browser tests
(tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import lastresort as lr
from lastresort.service.desk.session import COOKIE
from tests.desk.kit import csrf_of, person
from tests.service.kit import Service

FREE_TEXT = "Jan Jansen 123456782"


def _refusals(service: Service) -> list[lr.Refusal]:
    return service.engine.refusals(limit=1000)


def _snapshot(service: Service, encounter_id: str) -> tuple[object, ...]:
    engine = service.engine
    return (engine.get(encounter_id), engine.timeline(encounter_id), engine.deadlines(encounter_id))


# -- signing in -----------------------------------------------------------------------


def test_sign_in_sets_a_strict_httponly_session_cookie_bound_to_the_token(
    service: Service,
) -> None:
    clerk = person(service, "counter", signed_in=False)
    page = clerk.client.get("/desk/")
    assert page.status_code == 200
    assert 'type="password"' in page.text
    assert 'for="token"' in page.text
    response = clerk.client.post(
        "/desk/sign-in", data={"token": service.tokens["counter"], "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/desk" in cookie
    # the token itself is never in the cookie
    assert service.tokens["counter"] not in cookie
    home = clerk.client.get("/desk/")
    assert "counter · clerk-7" in home.text


@pytest.mark.parametrize("token", ["", "lr_000000000000_" + "x" * 43, FREE_TEXT])
def test_a_wrong_token_is_refused_recorded_and_signs_nobody_in(
    service: Service, token: str
) -> None:
    clerk = person(service, "counter", signed_in=False)
    page = clerk.client.get("/desk/")
    before = len(_refusals(service))
    response = clerk.client.post("/desk/sign-in", data={"token": token, "csrf": csrf_of(page.text)})
    assert response.status_code == 401
    assert "onbekend, ongeldig of ingetrokken" in response.text
    assert FREE_TEXT not in response.text
    assert not any(c.startswith(COOKIE + "=") for c in response.headers.get_list("set-cookie"))
    refusals = _refusals(service)[before:]
    assert [(r.action, r.reason[:16]) for r in refusals] == [("desk:sign-in", "unauthenticated:")]
    assert "Ingelogd als" not in clerk.client.get("/desk/").text


def test_sign_in_without_the_forms_csrf_token_is_refused(service: Service) -> None:
    clerk = person(service, "counter", signed_in=False)
    clerk.client.get("/desk/")
    response = clerk.client.post(
        "/desk/sign-in", data={"token": service.tokens["counter"], "csrf": "forged"}
    )
    assert response.status_code == 403
    assert _refusals(service)[-1].reason == "csrf"
    assert "Ingelogd als" not in clerk.client.get("/desk/").text


def test_an_audit_only_token_cannot_sign_in_to_act(service: Service) -> None:
    staff = person(service, "mayor_staff", signed_in=False)
    page = staff.client.get("/desk/")
    response = staff.client.post(
        "/desk/sign-in",
        data={"token": service.tokens["mayor_staff"], "csrf": csrf_of(page.text)},
    )
    assert response.status_code == 403
    assert _refusals(service)[-1].reason == "no-act-scope"


def test_a_tampered_cookie_signs_nobody_in(service: Service) -> None:
    clerk = person(service, "counter")
    value = clerk.client.cookies[COOKIE]
    payload, mac = value.split(".")
    # another token id in the payload with the old signature
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    [domain] = [c.domain for c in clerk.client.cookies.jar if c.name == COOKIE]
    clerk.client.cookies.delete(COOKIE)
    clerk.client.cookies.set(COOKIE, f"{forged}.{mac}", domain=domain, path="/desk")
    # exactly the forged cookie is sent (a second, genuine one would hide the forgery)
    assert [c.value for c in clerk.client.cookies.jar if c.name == COOKIE] == [f"{forged}.{mac}"]
    assert "Ingelogd als" not in clerk.client.get("/desk/").text


def test_revoking_the_token_ends_its_session_at_once(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open(age_band="12-15")
    token_id = service.tokens["counter"].split("_")[1]
    service.credentials.revoke(token_id)
    before = _snapshot(service, encounter_id)
    response = clerk.client.post(
        f"/desk/encounters/{encounter_id}/fire",
        data={"csrf": "x", "event": "call_expert", "version": "1"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/desk/"
    assert _snapshot(service, encounter_id) == before


def test_sign_out_needs_the_csrf_token_and_ends_the_session(service: Service) -> None:
    clerk = person(service, "counter")
    refused = clerk.client.post("/desk/sign-out", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert "Ingelogd als" in clerk.client.get("/desk/").text
    response = clerk.client.post("/desk/sign-out", data={"csrf": clerk.csrf()})
    assert response.status_code == 303
    page = clerk.client.get(response.headers["location"])
    assert "U bent uitgelogd" in page.text
    assert "Ingelogd als" not in page.text


# -- opening ----------------------------------------------------------------------------


def test_the_clerk_opens_an_encounter_with_facts_only(service: Service) -> None:
    clerk = person(service, "counter")
    form = clerk.client.get("/desk/new?protocol=taskforce").text
    # every control has a label; no free text input anywhere
    assert 'type="text"' not in form
    assert "<textarea" not in form
    for name in re.findall(r'<select id="([^"]+)"', form):
        assert f'<label for="{name}">' in form
    encounter_id = clerk.open(age_band="8-11", disclosure="yes", accompanied="")
    encounter = service.engine.get(encounter_id)
    assert encounter.facts == {"age_band": "8-11", "disclosure": True}
    assert service.engine.timeline(encounter_id)[0].actor == lr.Actor("counter", "clerk-7")


@pytest.mark.parametrize(
    "data",
    [
        {"fact_age_band": FREE_TEXT},  # not a declared value
        {"fact_disclosure": FREE_TEXT},  # not yes/no
        {"fact_name": FREE_TEXT},  # no such fact: no free text field anywhere
        {"note": FREE_TEXT},
    ],
)
def test_opening_with_anything_but_declared_facts_is_refused_and_opens_nothing(
    service: Service, data: dict[str, str]
) -> None:
    clerk = person(service, "counter")
    response = clerk.client.post(
        "/desk/encounters?protocol=taskforce", data={"csrf": clerk.csrf(), **data}
    )
    assert response.status_code in (400, 403)
    assert "Er is niets veranderd" in response.text
    assert FREE_TEXT not in response.text
    assert list(service.engine.store.encounter_ids()) == []
    assert all(FREE_TEXT not in repr(r) for r in _refusals(service))


def test_only_the_party_of_the_first_step_is_offered_to_open(service: Service) -> None:
    assert 'id="open-new"' in person(service, "counter").client.get("/desk/").text
    assert 'id="open-new"' not in person(service, "expert").client.get("/desk/").text


# -- acting -----------------------------------------------------------------------------


def test_a_whole_encounter_as_clerk_expert_and_mayor(service: Service) -> None:
    clerk, expert, mayor = (person(service, p) for p in ("counter", "expert", "mayor"))
    encounter_id = clerk.open(age_band="12-15")
    assert encounter_id not in mayor.client.get("/desk/").text  # not in the mayor's queue
    steps = [
        (clerk, "call_expert", "awaiting_expert"),
        (expert, "expert_takes_over", "with_expert"),
        (expert, "arrange_mayor_meeting", "awaiting_mayor"),
        (mayor, "mayor_spoke_with_child", "mayor_met"),
        (expert, "report_made", "reported"),
        (expert, "close", "closed"),
    ]
    for who, event, step in steps:
        assert encounter_id in who.client.get("/desk/").text  # in their work queue
        page = who.client.get(f"/desk/encounters/{encounter_id}").text
        assert f'data-event="{event}"' in page
        response = who.fire(encounter_id, event)
        assert response.status_code == 303, response.text
        assert service.engine.get(encounter_id).state == step
    actors = {e.actor for e in service.engine.timeline(encounter_id)}
    assert lr.Actor("mayor", "mayor-1") in actors
    assert lr.Actor("expert", "vt-12") in actors
    assert encounter_id not in expert.client.get("/desk/").text  # closed: out of the queue


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_a_forbidden_action_is_shown_recorded_and_changes_nothing(
    service: Service, lang: str
) -> None:
    clerk = person(service, "counter")
    clerk.client.get(f"/desk/lang/{lang}?next=/desk/")
    encounter_id = clerk.open()
    before = _snapshot(service, encounter_id)
    count = len(_refusals(service))
    response = clerk.fire(encounter_id, "expert_takes_over")
    assert response.status_code == 403
    expected = {
        "nl": "Dit mag u nu niet doen: expert_takes_over in stap arrived",
        "en": "You may not do this now: expert_takes_over in step arrived",
    }[lang]
    assert expected in response.text
    assert f'<html lang="{lang}">' in response.text
    assert 'href="tel:112"' in response.text
    assert _snapshot(service, encounter_id) == before
    refusal = _refusals(service)[count:]
    assert [(r.actor_id, r.encounter_id, r.reason) for r in refusal] == [
        ("clerk-7", encounter_id, "NotPermitted")
    ]


def test_free_text_as_an_event_is_refused_without_echo(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    before = _snapshot(service, encounter_id)
    response = clerk.fire(encounter_id, FREE_TEXT)
    assert response.status_code in (400, 403, 409)
    assert FREE_TEXT not in response.text
    assert _snapshot(service, encounter_id) == before
    assert all(FREE_TEXT not in repr(r) for r in _refusals(service))


def test_a_post_without_the_csrf_token_changes_nothing(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    before = _snapshot(service, encounter_id)
    response = clerk.fire(encounter_id, "call_expert", csrf="forged")
    assert response.status_code == 403
    assert _snapshot(service, encounter_id) == before
    assert _refusals(service)[-1].reason == "csrf"


def test_a_stale_page_is_told_someone_else_acted(service: Service) -> None:
    clerk, expert = person(service, "counter"), person(service, "expert")
    encounter_id = clerk.open()
    assert expert.fire(encounter_id, "expert_takes_over").status_code == 303
    before = _snapshot(service, encounter_id)
    # the clerk's page still shows version 1; acute danger is allowed in both steps
    response = clerk.fire(encounter_id, "acute_danger", version=1)
    assert response.status_code == 409
    assert "Iemand anders heeft deze melding net gewijzigd" in response.text
    assert _snapshot(service, encounter_id) == before


def test_the_acute_danger_action_is_offered_to_who_may_fire_it(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    page = clerk.client.get(f"/desk/encounters/{encounter_id}").text
    assert 'id="acute-danger"' in page
    assert 'href="tel:112"' in page
    assert clerk.fire(encounter_id, "acute_danger").status_code == 303
    assert service.engine.get(encounter_id).state == "with_police"


def test_an_unknown_encounter_is_not_found_and_not_echoed(service: Service) -> None:
    clerk = person(service, "counter")
    response = clerk.client.get("/desk/encounters/Jan%20Jansen")
    assert response.status_code == 404
    assert "Jan Jansen" not in response.text
    assert 'href="tel:112"' in response.text


def test_the_deadline_shows_the_time_left_from_the_engines_clock(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    page = clerk.client.get(f"/desk/encounters/{encounter_id}").text
    assert "nog 15 min" in page
    service.clock.advance(timedelta(minutes=10))
    assert "nog 5 min" in clerk.client.get(f"/desk/encounters/{encounter_id}").text


# -- language ---------------------------------------------------------------------------


def test_dutch_first_and_an_english_switch_that_is_no_open_redirect(service: Service) -> None:
    clerk = person(service, "counter")
    assert '<html lang="nl">' in clerk.client.get("/desk/").text
    response = clerk.client.get("/desk/lang/en?next=/desk/new%3Fprotocol%3Dtaskforce")
    assert response.status_code == 303
    assert response.headers["location"] == "/desk/new?protocol=taskforce"
    page = clerk.client.get("/desk/new?protocol=taskforce").text
    assert '<html lang="en">' in page
    assert "Open a new encounter" in page
    for target in ("https://evil.example/", "//evil.example/desk/", "/desk/..\\evil"):
        away = clerk.client.get("/desk/lang/nl", params={"next": target})
        assert away.headers["location"] == "/desk/"


def test_a_crafted_done_link_puts_no_words_on_the_page(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    page = clerk.client.get(f"/desk/encounters/{encounter_id}?done=payment_received").text
    assert "payment" not in page
    assert 'id="message"' not in page
    page = clerk.client.get(f"/desk/encounters/{encounter_id}?done=call_expert").text
    assert "Vastgelegd: Deskundige bellen." in page


def test_time_left_across_the_night_summer_time_starts(service: Service) -> None:
    # 29 March 2026, 01:50 CET: 15 minutes later is 03:05 CEST (the clocks skip an hour)
    service.clock.set(datetime(2026, 3, 29, 1, 50, tzinfo=ZoneInfo("Europe/Amsterdam")))
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    page = clerk.client.get(f"/desk/encounters/{encounter_id}").text
    assert "nog 15 min (om 03:05 CEST)" in page


def test_a_passed_deadline_shows_as_overdue(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    service.clock.advance(timedelta(minutes=16))  # not ticked: the deadline is still pending
    page = clerk.client.get(f"/desk/encounters/{encounter_id}").text
    assert "verstreken sinds 10:15 CET" in page
    assert 'class="overdue"' in page


def test_two_clicks_on_one_page_fire_once(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    first = clerk.fire(encounter_id, "call_expert", version=1)
    second = clerk.fire(encounter_id, "call_expert", version=1)  # a double click
    assert first.status_code == 303
    assert second.status_code == 409
    steps = [e for e in service.engine.timeline(encounter_id) if type(e).__name__ == "StepEntered"]
    assert len(steps) == 1


def test_the_work_queue_puts_the_nearest_deadline_first(service: Service) -> None:
    clerk = person(service, "counter")
    later = clerk.open()
    clerk.fire(later, "call_expert")  # 45 minutes from now
    service.clock.advance(timedelta(minutes=1))
    sooner = clerk.open()  # 15 minutes from now
    page = clerk.client.get("/desk/").text
    assert page.index(sooner) < page.index(later)
    # the expert has both (expert_takes_over from either step), the mayor neither
    expert_page = person(service, "expert").client.get("/desk/").text
    assert sooner in expert_page
    assert later in expert_page
    mayor_page = person(service, "mayor").client.get("/desk/").text
    assert sooner not in mayor_page
    assert later not in mayor_page


def test_only_short_urlencoded_forms_with_each_field_once_are_read(service: Service) -> None:
    clerk = person(service, "counter")
    encounter_id = clerk.open()
    before = _snapshot(service, encounter_id)
    url = f"/desk/encounters/{encounter_id}/fire"
    good = {"csrf": clerk.csrf(), "event": "call_expert", "version": "1"}
    as_json = clerk.client.post(url, json=good)
    oversize = clerk.client.post(url, data={**good, "version": "1" * 5000})
    twice = clerk.client.post(
        url,
        content="&".join(f"{k}={v}" for k, v in good.items()) + "&event=acute_danger",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert [as_json.status_code, oversize.status_code, twice.status_code] == [415, 413, 400]
    assert _snapshot(service, encounter_id) == before
