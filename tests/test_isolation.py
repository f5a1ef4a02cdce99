"""Plugin isolation (issue 14): an installed plugin that cannot be used is left out,
whole, and every other protocol keeps working; strict mode fails on it. The plugins
here are installed for real (an entry point in a directory on ``sys.path``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.testing import pseudonymous, walk_happy_path

from . import plugin_kit
from .plugin_kit import BROKEN_FILE, GOOD, protocol_text


def engine(**kwargs: object) -> lr.Engine:
    return lr.Engine(store=lr.MemoryStore(), delivery_timeout=None, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of installed plugins: ``good_city`` (protocol ``good-city``) and
    whatever a test adds; activated once the test has added its own."""
    where = tmp_path / "site"
    plugin_kit.install(where, "good_city", GOOD, {"good.toml": protocol_text("good-city")})
    return where


def broken_file_plugin(where: Path) -> None:
    text = protocol_text("broken-city").replace('to = "with_expert"', 'to = "with_expret"', 1)
    plugin_kit.install(where, "broken_city", BROKEN_FILE, {"broken.toml": text})


def test_a_broken_protocol_file_is_left_out_and_every_other_protocol_works(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_file_plugin(site)
    plugin_kit.activate(monkeypatch, site)
    eng = engine()
    assert "good-city" in eng.protocols
    assert "taskforce" in eng.protocols
    assert "broken-city" not in eng.protocols
    (broken,) = eng.broken_plugins
    assert isinstance(broken, lr.BrokenPlugin)
    assert broken.name == "broken_city"
    assert broken.stage == "protocols"
    # located in the plugin's file, naming what is wrong
    assert any("broken.toml:" in p and "with_expret" in p for p in broken.problems)
    assert isinstance(broken.error, lr.ProtocolError)
    # the other protocols run
    assert walk_happy_path(eng, "good-city").closed_at is not None
    assert walk_happy_path(eng, "taskforce").closed_at is not None


def test_strict_plugins_fails_on_the_broken_plugin_with_its_error(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_file_plugin(site)
    plugin_kit.activate(monkeypatch, site)
    with pytest.raises(lr.ProtocolError) as caught:
        engine(strict_plugins=True)
    assert "with_expret" in str(caught.value)
    assert caught.value.source is not None
    assert caught.value.source.endswith("broken.toml")


@pytest.mark.parametrize(
    ("source", "stage", "says"),
    [
        ("raise RuntimeError('vendor bug at import')", "import", "vendor bug at import"),
        (
            "import lastresort as lr\n@lr.hookimpl\ndef lastresort_protocolz():\n    return []\n",
            "register",
            "lastresort_protocolz",
        ),
        (
            "import lastresort as lr\n@lr.hookimpl\ndef lastresort_protocols(nonsense):\n"
            "    return []\n",
            "register",
            "nonsense",
        ),
        (
            "import lastresort as lr\n@lr.hookimpl\ndef lastresort_protocols():\n"
            "    raise KeyError('lost')\n",
            "protocols",
            "KeyError",
        ),
        (
            "import lastresort as lr\n@lr.hookimpl\ndef lastresort_protocols():\n"
            "    return ['not a protocol']\n",
            "protocols",
            "returned list, expected a list of lastresort.Protocol",
        ),
        (
            "import lastresort as lr\n@lr.hookimpl\ndef lastresort_protocols():\n"
            "    return lr.Actor('counter', 'c-1')\n",
            "protocols",
            "returned Actor",
        ),
    ],
    ids=["import", "misspelt-hook", "bad-argument", "hook-raises", "garbage-list", "garbage"],
)
def test_a_plugin_that_fails_to_load_is_left_out_with_the_reason(
    site: Path, monkeypatch: pytest.MonkeyPatch, source: str, stage: str, says: str
) -> None:
    plugin_kit.install(site, "bad_vendor", source)
    plugin_kit.activate(monkeypatch, site)
    eng = engine()
    assert {"good-city", "taskforce"} <= set(eng.protocols)
    (broken,) = eng.broken_plugins
    assert (broken.name, broken.stage) == ("bad_vendor", stage)
    assert says in broken.reason
    assert eng.plugin_manager.get_plugin("bad_vendor") is None
    with pytest.raises((lr.PluginLoadError, lr.ProtocolError)) as caught:
        engine(strict_plugins=True)
    assert says in str(caught.value)


def test_a_protocol_id_collision_leaves_both_installed_plugins_out_naming_both(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_kit.install(site, "twin_a", GOOD, {"good.toml": protocol_text("twin-city")})
    plugin_kit.install(site, "twin_b", GOOD, {"good.toml": protocol_text("twin-city")})
    plugin_kit.activate(monkeypatch, site)
    eng = engine()
    assert "twin-city" not in eng.protocols
    assert "good-city" in eng.protocols
    broken = {b.name: b for b in eng.broken_plugins}
    assert set(broken) == {"twin_a", "twin_b"}
    for plugin in broken.values():
        assert plugin.stage == "collision"
        assert plugin.protocols == ("twin-city",)
        assert "'twin_a'" in plugin.reason
        assert "'twin_b'" in plugin.reason
    with pytest.raises(lr.ProtocolError, match=r"twin_a.*twin_b|twin_b.*twin_a"):
        engine(strict_plugins=True)


def test_an_installed_plugin_colliding_with_the_core_is_left_out_the_core_keeps_it(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_kit.install(site, "copycat", GOOD, {"good.toml": protocol_text("taskforce")})
    plugin_kit.activate(monkeypatch, site)
    eng = engine()
    (broken,) = eng.broken_plugins
    assert (broken.name, broken.stage) == ("copycat", "collision")
    assert "lastresort.default" in broken.reason
    assert (
        eng.protocol("taskforce").source
        == lr.load_packaged_protocol("lastresort.protocol.builtin", "taskforce.toml").source
    )


#: a plugin with an invalid protocol (a guard nobody answers) and hooks that record
#: every call in ``CALLS``: none of them may run once it is left out
NOISY = """
import attrs
import lastresort as lr

CALLS = []
_base = lr.load_packaged_protocol(__name__, "noisy.toml")
PROTOCOL = attrs.evolve(
    _base,
    transitions=[attrs.evolve(t, guard="nobody_answers") if i == 2 else t
                 for i, t in enumerate(_base.transitions)],
)

@lr.hookimpl
def lastresort_protocols():
    return [PROTOCOL]

@lr.hookimpl
def lastresort_on_event(event):
    CALLS.append(("observer", event.kind))

@lr.hookimpl
def lastresort_guard(name):
    CALLS.append(("guard", name))
    return "refused by a broken plugin"

@lr.hookimpl
def lastresort_guard_names():
    return ["child_consents"]

@lr.hookimpl
def lastresort_delivers_for():
    return ["*"]

@lr.hookimpl(tryfirst=True)
def lastresort_deliver(notification):
    CALLS.append(("deliver", notification.protocol))
    return "noisy"

@lr.hookimpl(tryfirst=True)
def lastresort_party_directory(party):
    CALLS.append(("directory", party.key))
    return "noisy-desk"
"""


def test_nothing_of_a_left_out_plugin_runs_later(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_kit.install(site, "noisy", NOISY, {"noisy.toml": protocol_text("noisy-city")})
    plugin_kit.activate(monkeypatch, site)
    eng = engine()
    (broken,) = eng.broken_plugins
    assert (broken.name, broken.stage, broken.protocols) == ("noisy", "validation", ("noisy-city",))
    assert "nobody_answers" in broken.reason
    calls = sys.modules["noisy"].CALLS
    calls.clear()
    encounter = walk_happy_path(eng, "good-city")
    eng.deliver()
    assert eng.outbox(encounter.id)
    assert all(n.delivered_at is not None for n in eng.outbox(encounter.id))
    assert calls == []  # no observer, guard, delivery or directory of it ran


def test_leaving_one_plugin_out_leaves_out_a_protocol_that_needed_its_guard(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # guard_giver answers the guard but its protocols hook is broken; needs_guard's
    # protocol uses that guard: once guard_giver is left out, nobody answers it
    plugin_kit.install(
        site,
        "guard_giver",
        "import lastresort as lr\n"
        "@lr.hookimpl\ndef lastresort_guard_names():\n    return ['vendor_guard']\n"
        "@lr.hookimpl\ndef lastresort_guard(name):\n    return None\n"
        "@lr.hookimpl\ndef lastresort_protocols():\n    return 42\n",
    )
    plugin_kit.install(
        site,
        "needs_guard",
        NOISY.replace("nobody_answers", "vendor_guard"),
        {"noisy.toml": protocol_text("guarded-city")},
    )
    plugin_kit.activate(monkeypatch, site)
    eng = engine()
    broken = {b.name: b for b in eng.broken_plugins}
    assert broken["guard_giver"].stage == "protocols"
    assert broken["needs_guard"].stage == "validation"
    assert "vendor_guard" in broken["needs_guard"].reason
    assert "guarded-city" not in eng.protocols
    assert "good-city" in eng.protocols


def test_a_validator_that_raises_is_left_out_and_the_protocol_it_checked_stays(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_kit.install(
        site,
        "crashy_rules",
        "import lastresort as lr\n"
        "@lr.hookimpl\ndef lastresort_validate_protocol(protocol):\n"
        "    raise ZeroDivisionError('rule bug')\n",
    )
    plugin_kit.activate(monkeypatch, site)
    eng = engine()
    (broken,) = eng.broken_plugins
    assert (broken.name, broken.stage) == ("crashy_rules", "validation")
    assert "ZeroDivisionError: rule bug" in broken.reason
    assert {"good-city", "taskforce"} <= set(eng.protocols)
    with pytest.raises(lr.PluginLoadError, match=r"crashy_rules.*rule bug") as caught:
        engine(strict_plugins=True)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_explicit_protocols_beside_a_broken_installed_plugin(
    site: Path, monkeypatch: pytest.MonkeyPatch, taskforce: lr.Protocol
) -> None:
    plugin_kit.install(site, "bad_import", "raise ImportError('missing vendor dependency')")
    plugin_kit.activate(monkeypatch, site)
    eng = engine(protocols=[taskforce])
    assert list(eng.protocols) == [taskforce.id]
    (broken,) = eng.broken_plugins
    assert (broken.name, broken.stage) == ("bad_import", "import")
    assert "missing vendor dependency" in broken.reason


def test_explicit_plugins_stay_strict(taskforce: lr.Protocol) -> None:
    class Misspelt:
        @lr.hookimpl
        def lastresort_protocolz(self) -> list[lr.Protocol]:
            return []

    with pytest.raises(lr.PluginLoadError, match="lastresort_protocolz"):
        lr.Engine(plugins=[Misspelt()], entry_points=False)

    class Raises:
        @lr.hookimpl
        def lastresort_protocols(self) -> list[lr.Protocol]:
            raise KeyError("explicit")

    with pytest.raises(KeyError):
        lr.Engine(plugins=[Raises()])


def test_the_installed_plugins_of_this_repository_all_load() -> None:
    eng = engine()
    assert eng.broken_plugins == ()
    assert {"amsterdam", "rotterdam", "taskforce"} <= set(eng.protocols)


def test_a_broken_plugin_is_logged_without_stopping(
    site: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken_file_plugin(site)
    plugin_kit.activate(monkeypatch, site)
    with caplog.at_level("ERROR", logger="lastresort.engine"):
        engine()
    assert any("broken_city" in r.getMessage() for r in caplog.records)


def test_an_actor_still_needs_an_id_in_a_lenient_engine(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_kit.activate(monkeypatch, site)
    eng = engine()
    with pytest.raises(lr.ActorRefused):
        eng.open("good-city", "counter")
    assert eng.open("good-city", pseudonymous("counter")).protocol == "good-city"
