"""Plugin isolation on the command line (issue 14): with a broken plugin installed
beside good ones, ``protocols`` lists it as broken (exit 3), and ``show``, ``demo``,
``scenario run``, ``docs``, ``diagram``, ``simulate`` and ``check`` work for every other protocol; ``check``
still fails on the broken one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import plugin_kit
from .plugin_kit import BROKEN_FILE, GOOD, protocol_text

ROOT = Path(__file__).resolve().parents[1]
LATE = ROOT / "examples" / "scenarios" / "taskforce-expert-late.scenario.toml"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("isolation") / "site"
    plugin_kit.install(where, "good_city", GOOD, {"good.toml": protocol_text("good-city")})
    text = protocol_text("broken-city").replace('to = "with_expert"', 'to = "with_expret"', 1)
    plugin_kit.install(where, "broken_city", BROKEN_FILE, {"broken.toml": text})
    plugin_kit.install(where, "bad_import", "raise RuntimeError('vendor bug at import')")
    return where


def test_protocols_lists_the_usable_ones_and_each_broken_plugin_with_its_reason(
    site: Path,
) -> None:
    done = plugin_kit.cli(site, "protocols")
    assert done.returncode == 3, done.stderr
    assert "good-city" in done.stdout
    assert "taskforce" in done.stdout
    assert "amsterdam" in done.stdout
    assert "broken-city" not in done.stdout
    assert "2 broken plugins, left out" in done.stderr
    assert "broken_city: protocols" in done.stderr
    assert "broken.toml:" in done.stderr
    assert "with_expret" in done.stderr
    assert "bad_import: import" in done.stderr
    assert "vendor bug at import" in done.stderr
    assert "Traceback" not in done.stderr


def test_protocols_exits_0_when_every_plugin_loads() -> None:
    done = plugin_kit.cli(Path("/nonexistent"), "protocols")
    assert done.returncode == 0, done.stderr
    assert "broken" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("show", "good-city"),
        ("show", "amsterdam"),
        ("demo",),
        ("demo", "--protocol", "good-city"),
        ("scenario", "run", str(LATE)),
        ("check", "good-city"),
        ("check", "amsterdam"),
        ("docs", "good-city"),
        ("diagram", "amsterdam"),
        ("simulate", "good-city", "--encounters", "5", "--no-progress"),
    ],
    ids=" ".join,
)
def test_every_other_protocol_keeps_working(site: Path, args: tuple[str, ...]) -> None:
    done = plugin_kit.cli(site, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_show_of_a_left_out_protocol_says_which_plugin_and_why(site: Path) -> None:
    # the broken file's protocol could not be read, so its id is not known; a
    # collision's protocols are: see test_isolation.py
    done = plugin_kit.cli(site, "show", "broken-city")
    assert done.returncode == 2
    assert "unknown protocol 'broken-city'" in done.stderr


def test_check_fails_on_the_broken_plugin_and_checks_the_others(site: Path) -> None:
    done = plugin_kit.cli(site, "check")
    assert done.returncode == 2
    assert "with_expret" in done.stderr
    assert "vendor bug at import" in done.stderr
    assert "good-city" in done.stdout
    by_id = plugin_kit.cli(site, "check", "broken-city")
    assert by_id.returncode == 2
    assert "with_expret" in by_id.stderr


def test_show_names_the_broken_plugin_of_a_colliding_protocol(tmp_path: Path) -> None:
    where = tmp_path / "site"
    plugin_kit.install(where, "twin_a", GOOD, {"good.toml": protocol_text("twin-city")})
    plugin_kit.install(where, "twin_b", GOOD, {"good.toml": protocol_text("twin-city")})
    done = plugin_kit.cli(where, "show", "twin-city")
    assert done.returncode == 2
    assert re.search(
        r"protocol 'twin-city' is not usable: plugin 'twin_[ab]' is left out \(collision\)",
        done.stderr,
    )
    assert "'twin_a'" in done.stderr
    assert "'twin_b'" in done.stderr
