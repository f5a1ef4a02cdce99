"""WCAG 2.1 AA contrast of the desk's stylesheet, computed from the CSS itself: every
rule that sets a text ``color`` sets its ``background-color`` too, and each such pair
has a contrast ratio of at least 4.5:1 (1.4.3). The relative luminance and ratio are
WCAG's formulas."""

from __future__ import annotations

import re
from importlib import resources

import pytest

CSS = resources.files("lastresort.service.desk").joinpath("static/desk.css").read_text("utf-8")
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


def luminance(hex_colour: str) -> float:
    digits = hex_colour.lstrip("#")
    assert len(digits) == 6, f"write colours as #rrggbb, not {hex_colour}"
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def pairs(css: str) -> list[tuple[str, str, str | None]]:
    """(selector, color, background-color) of every rule that sets ``color``."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    found = []
    for selector, body in _RULE.findall(css):
        props = dict(
            (k.strip(), v.strip())
            for k, _, v in (d.partition(":") for d in body.split(";"))
            if k.strip()
        )
        if "color" in props:
            found.append((selector.strip(), props["color"], props.get("background-color")))
    return found


def test_the_formula_matches_wcags_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # just fails AA
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # just passes


def test_the_parser_finds_a_pair_that_fails() -> None:
    bad = pairs(".x { color: #777777; background-color: #ffffff; }")
    assert bad == [(".x", "#777777", "#ffffff")]
    assert contrast(bad[0][1], bad[0][2]) < 4.5


def test_every_text_colour_of_the_desk_has_its_background_and_contrast_of_4_5() -> None:
    found = pairs(CSS)
    assert len(found) >= 10  # the parser saw the stylesheet
    failing = []
    for selector, colour, background in found:
        if background is None:
            failing.append(f"{selector}: color without background-color")
        elif (ratio := contrast(colour, background)) < 4.5:
            failing.append(f"{selector}: {colour} on {background} is {ratio:.2f}:1")
    assert failing == []


def test_the_focus_ring_contrasts_with_the_page_and_the_emergency_bar() -> None:
    # non-text contrast (1.4.11): 3:1 against what surrounds the ring
    ring = re.search(r":focus[^{]*\{[^}]*outline:\s*3px solid (#[0-9a-f]{6})", CSS)
    assert ring is not None
    for background in ("#ffffff", "#00264d", "#7a0010", "#00529b"):
        halo = "#ffbf47"
        assert max(contrast(ring.group(1), background), contrast(halo, background)) >= 3
