"""A whole encounter through the counter-desk page in Chromium, as a counter clerk,
an expert and the mayor (three browser contexts, three tokens), at a tablet's width
(768px). Every page is checked for the 112 action, landmarks, lang, labels, target
size and horizontal overflow; one path is walked with the keyboard only; a forbidden
action is tried. Screenshots go to tmp/artefacts/desk/ (and docs/images/)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import Served, keep, screenshot_path

TABLET = {"width": 768, "height": 1024}


def check_page(page: Page) -> None:
    """What every desk page must have (WCAG 2.1 AA items a browser can check)."""
    # the 112 action: visible, a tel: link, on screen without scrolling
    call = page.locator("#call-112")
    expect(call).to_be_visible()
    expect(call).to_have_attribute("href", "tel:112")
    assert call.bounding_box() is not None
    # language and landmarks
    assert page.locator("html").get_attribute("lang") in ("nl", "en")
    for landmark in ("header", "main", "nav"):
        assert page.locator(landmark).count() >= 1, landmark
    # usable at 768px: nothing wider than the viewport
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url}: {overflow}px of horizontal scrolling"
    # every visible control is labelled and at least 44px high (target size)
    problems = page.evaluate(
        """() => {
        const out = [];
        for (const el of document.querySelectorAll('button, select, input, a[href]')) {
            if (el.type === 'hidden' || el.offsetParent === null) continue;
            // a radio's target is its whole label
            const box = (el.type === 'radio' && el.closest('label') || el).getBoundingClientRect();
            const inText = el.tagName === 'A' && el.closest('p, td, li.inline');
            if (!inText && box.height < 44) out.push(`${el.outerHTML.slice(0, 80)}: ${box.height}px high`);
            if (el.tagName === 'INPUT' && el.type !== 'radio' && !(el.labels && el.labels.length))
                out.push(`${el.outerHTML.slice(0, 80)}: no label`);
            if (el.tagName === 'SELECT' && !(el.labels && el.labels.length))
                out.push(`${el.outerHTML.slice(0, 80)}: no label`);
            if (el.type === 'radio' && !el.closest('label')) out.push(`${el.name}: radio without label`);
            if (!(el.textContent.trim() || el.value || el.labels?.length || el.getAttribute('aria-label')))
                out.push(`${el.outerHTML.slice(0, 80)}: no accessible name`);
        }
        return out;
    }"""
    )
    assert problems == [], f"{page.url}: {problems}"


def shot(page: Page, name: str) -> None:
    path = screenshot_path(name)
    page.screenshot(path=str(path), full_page=True)
    keep(path)


@pytest.fixture
def contexts(browser: Browser) -> Iterator[dict[str, BrowserContext]]:
    made = {
        who: browser.new_context(viewport=TABLET, locale="nl-NL")
        for who in ("counter", "expert", "mayor")
    }
    yield made
    for context in made.values():
        context.close()


def sign_in(page: Page, served: Served, who: str) -> None:
    page.goto(f"{served.base}/desk/")
    check_page(page)
    page.get_by_label("Toegangssleutel").fill(served.tokens[who])
    page.get_by_role("button", name="Inloggen").click()
    expect(page.locator(".who")).to_contain_text(who)
    check_page(page)


def act(page: Page, served: Served, encounter_id: str, event: str) -> None:
    page.goto(f"{served.base}/desk/encounters/{encounter_id}")
    check_page(page)
    before = served.engine.get(encounter_id).version
    page.locator(f'button[data-event="{event}"]').click()
    expect(page.locator("#message")).to_be_visible()
    check_page(page)
    assert served.engine.get(encounter_id).version > before


def test_a_whole_encounter_as_clerk_expert_and_mayor(
    served: Served, contexts: dict[str, BrowserContext]
) -> None:
    clerk, expert, mayor = (contexts[w].new_page() for w in ("counter", "expert", "mayor"))
    sign_in(clerk, served, "counter")
    shot(clerk, "queue-empty")

    # the clerk opens an encounter with facts only
    clerk.get_by_role("button", name="Kiezen").click()
    check_page(clerk)
    clerk.get_by_label("age band").select_option("12-15")
    clerk.locator('input[name="fact_disclosure"][value="yes"]').check()
    shot(clerk, "open")
    clerk.get_by_role("button", name="Openen").click()
    expect(clerk.locator("#message")).to_contain_text("De melding is geopend")
    check_page(clerk)
    encounter_id = clerk.url.split("/encounters/")[1].split("?")[0]
    expect(clerk.locator("#responsible")).to_contain_text("Baliemedewerker")
    expect(clerk.locator("#deadline")).to_contain_text("nog 15 min")
    expect(clerk.locator("#acute-danger")).to_be_visible()
    shot(clerk, "clerk-arrived")
    clerk.locator('button[data-event="call_expert"]').click()
    expect(clerk.locator("#message")).to_contain_text("Deskundige bellen")
    assert served.engine.get(encounter_id).state == "awaiting_expert"
    expect(clerk.locator("#deadline")).to_contain_text("nog 45 min")

    # the expert finds it in the work queue and takes over
    sign_in(expert, served, "expert")
    expect(expert.locator(f'a[href="/desk/encounters/{encounter_id}"]')).to_be_visible()
    shot(expert, "queue")
    expert.locator(f'a[href="/desk/encounters/{encounter_id}"]').click()
    check_page(expert)
    act(expert, served, encounter_id, "expert_takes_over")
    expect(expert.locator("#responsible")).to_contain_text("u")
    shot(expert, "expert-with-expert")
    act(expert, served, encounter_id, "arrange_mayor_meeting")

    # the mayor, in English
    mayor.goto(f"{served.base}/desk/")
    mayor.get_by_role("link", name="English").click()
    check_page(mayor)
    assert mayor.locator("html").get_attribute("lang") == "en"
    mayor.get_by_label("Access key").fill(served.tokens["mayor"])
    mayor.get_by_role("button", name="Sign in").click()
    expect(mayor.locator(f'a[href="/desk/encounters/{encounter_id}"]')).to_be_visible()
    mayor.locator(f'a[href="/desk/encounters/{encounter_id}"]').click()
    expect(mayor.locator("#responsible")).to_contain_text("expert")
    shot(mayor, "mayor-en")
    act(mayor, served, encounter_id, "mayor_spoke_with_child")
    expect(mayor.locator(".timeline")).to_contain_text("mayor · mayor-1")

    act(expert, served, encounter_id, "report_made")
    act(expert, served, encounter_id, "close")
    assert served.engine.get(encounter_id).state == "closed"
    expect(expert.locator("h1")).to_contain_text("afgesloten")
    expect(expert.locator(".actions")).to_have_count(0)
    shot(expert, "closed")
    actors = {(e.actor.role, e.actor.id) for e in served.engine.timeline(encounter_id)}
    assert {("counter", "clerk-7"), ("expert", "vt-12"), ("mayor", "mayor-1")} <= actors


def test_a_forbidden_action_is_refused_on_the_page_and_recorded(
    served: Served, contexts: dict[str, BrowserContext]
) -> None:
    clerk = contexts["counter"].new_page()
    sign_in(clerk, served, "counter")
    clerk.get_by_role("button", name="Kiezen").click()
    clerk.get_by_role("button", name="Openen").click()
    encounter_id = clerk.url.split("/encounters/")[1].split("?")[0]
    before = (served.engine.get(encounter_id), served.engine.timeline(encounter_id))
    refusals = len(served.engine.refusals(limit=1000))
    # a tampered form: the clerk's button made to send the expert's action
    clerk.locator('button[data-event="call_expert"]').evaluate(
        "b => b.form.querySelector('input[name=event]').value = 'expert_takes_over'"
    )
    clerk.locator('button[data-event="call_expert"]').click()
    message = clerk.locator("#message")
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text("Dit mag u nu niet doen: expert_takes_over in stap arrived")
    check_page(clerk)
    shot(clerk, "refused")
    assert (served.engine.get(encounter_id), served.engine.timeline(encounter_id)) == before
    recorded = served.engine.refusals(limit=1000)[refusals:]
    assert [(r.actor_id, r.encounter_id, r.reason) for r in recorded] == [
        ("clerk-7", encounter_id, "NotPermitted")
    ]


def _tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until ``selector`` has the focus; each stop shows a focus ring."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        ring = page.evaluate(
            """() => { const s = getComputedStyle(document.activeElement);
            return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"""
        )
        if page.evaluate("document.activeElement !== document.body"):
            assert ring[0] != "none", f"no visible focus on {page.url}"
            assert ring[1] >= 2, f"a thin focus ring on {page.url}"
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab on {page.url}")


def test_the_clerk_can_do_everything_with_the_keyboard_only(
    served: Served, contexts: dict[str, BrowserContext]
) -> None:
    page = contexts["counter"].new_page()
    page.goto(f"{served.base}/desk/")
    # the first stop is the skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    _tab_to(page, "#token")
    page.keyboard.type(served.tokens["counter"])
    page.keyboard.press("Enter")
    expect(page.locator(".who")).to_contain_text("counter")
    _tab_to(page, "#protocol ~ button")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Nieuwe melding")
    _tab_to(page, "#fact_age_band")
    page.keyboard.press("ArrowDown")  # the first age band
    _tab_to(page, 'input[name="fact_disclosure"]')
    page.keyboard.press("ArrowRight")  # not asked -> yes
    _tab_to(page, "button.primary")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("geopend")
    encounter_id = page.url.split("/encounters/")[1].split("?")[0]
    assert served.engine.get(encounter_id).facts == {"age_band": "0-7", "disclosure": True}
    _tab_to(page, 'button[data-event="call_expert"]')
    shot(page, "keyboard-focus")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("Deskundige bellen")
    assert served.engine.get(encounter_id).state == "awaiting_expert"
    # 112 by keyboard: the acute danger action is reachable and fires
    _tab_to(page, "#acute-danger")
    page.keyboard.press("Space")
    expect(page.locator("h1")).to_contain_text("with_police")
    assert served.engine.get(encounter_id).state == "with_police"
