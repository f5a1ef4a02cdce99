"""Scoped delivery (issue 14): a plugin's ``lastresort_deliver`` is called only for the
protocols it names in ``lastresort_delivers_for``; for any other it is not called, so
it can neither page anyone nor count as delivery."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import lastresort as lr
from lastresort.testing import walk_happy_path

from . import plugin_kit
from .plugin_kit import GOOD, protocol_text


class Channel:
    """A delivery plugin for ``scope`` that records what it was handed."""

    def __init__(self, scope: Any, receipt: str = "pager") -> None:
        self.scope = scope
        self.receipt = receipt
        self.handed: list[lr.Notification] = []

    @lr.hookimpl
    def lastresort_delivers_for(self) -> Any:
        return self.scope

    @lr.hookimpl
    def lastresort_deliver(self, notification: lr.Notification) -> str:
        self.handed.append(notification)
        return self.receipt


def two_protocols(taskforce: lr.Protocol) -> list[lr.Protocol]:
    return [taskforce, attrs.evolve(taskforce, id="other-city")]


def receipts(engine: lr.Engine, encounter_id: str) -> set[str]:
    return {
        e.receipt for e in engine.timeline(encounter_id) if isinstance(e, lr.NotificationDelivered)
    }


def test_lastresort_delivers_for_scopes_each_plugin_to_its_protocols(
    taskforce: lr.Protocol,
) -> None:
    amsterdam = Channel(["taskforce"], "amsterdam-pager")
    # registered last, so asked first: without scopes it would deliver everything
    other = Channel(["other-city"], "other-pager")
    engine = lr.Engine(
        protocols=two_protocols(taskforce),
        plugins=[amsterdam, other],
        entry_points=False,
        delivery_timeout=None,
    )
    a = walk_happy_path(engine, "taskforce")
    b = walk_happy_path(engine, "other-city")
    engine.deliver()
    assert receipts(engine, a.id) == {"amsterdam-pager"}
    assert receipts(engine, b.id) == {"other-pager"}
    # never even called for another protocol's notification
    assert {n.protocol for n in amsterdam.handed} == {"taskforce"}
    assert {n.protocol for n in other.handed} == {"other-city"}


def test_lastresort_delivers_for_star_delivers_every_protocol(taskforce: lr.Protocol) -> None:
    webhook = Channel(["*"], "webhook")
    engine = lr.Engine(protocols=two_protocols(taskforce), plugins=[webhook], entry_points=False)
    a = walk_happy_path(engine, "taskforce")
    b = walk_happy_path(engine, "other-city")
    engine.deliver()
    assert receipts(engine, a.id) == receipts(engine, b.id) == {"webhook"}


def test_lastresort_delivers_for_an_unclaimed_protocol_falls_to_the_default_log(
    taskforce: lr.Protocol,
) -> None:
    pager = Channel(["other-city"])
    engine = lr.Engine(protocols=[taskforce], plugins=[pager], entry_points=False)
    a = walk_happy_path(engine, "taskforce")
    engine.deliver()
    assert pager.handed == []
    assert receipts(engine, a.id) == {"log"}


def test_a_delivery_wrapper_out_of_scope_is_not_run(taskforce: lr.Protocol) -> None:
    seen: list[str] = []

    class Wrapper:
        @lr.hookimpl
        def lastresort_delivers_for(self) -> list[str]:
            return ["other-city"]

        @lr.hookimpl(wrapper=True)
        def lastresort_deliver(self, notification: lr.Notification) -> Any:
            seen.append(notification.protocol)
            yield
            return "forged"

    engine = lr.Engine(protocols=two_protocols(taskforce), plugins=[Wrapper()], entry_points=False)
    a = walk_happy_path(engine, "taskforce")
    b = walk_happy_path(engine, "other-city")
    engine.deliver()
    assert receipts(engine, a.id) == {"log"}
    assert receipts(engine, b.id) == {"forged"}
    assert set(seen) == {"other-city"}


def test_an_explicit_plugin_without_delivers_for_delivers_for_its_engine(
    taskforce: lr.Protocol,
) -> None:
    class Unscoped:
        @lr.hookimpl
        def lastresort_deliver(self, notification: lr.Notification) -> str:
            return "unscoped"

    engine = lr.Engine(protocols=[taskforce], plugins=[Unscoped()], entry_points=False)
    a = walk_happy_path(engine, "taskforce")
    engine.deliver()
    assert receipts(engine, a.id) == {"unscoped"}


@pytest.mark.parametrize("scope", ["taskforce", [1], 42, [b"taskforce"]])
def test_an_unusable_delivers_for_answer_is_an_error_naming_the_plugin(
    taskforce: lr.Protocol, scope: Any
) -> None:
    channel = Channel(scope)
    with pytest.raises(lr.PluginLoadError) as caught:
        lr.Engine(protocols=[taskforce], plugins=[channel], entry_points=False)
    assert "lastresort_delivers_for returned" in str(caught.value)
    assert caught.value.plugin is not None
    assert channel.handed == []


#: an installed plugin that delivers without saying for which protocols
UNSCOPED = """
import lastresort as lr

CALLS = []

@lr.hookimpl
def lastresort_deliver(notification):
    CALLS.append(notification.protocol)
    return "amsterdam-pager"
"""


def test_an_installed_plugin_delivering_without_delivers_for_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "site"
    plugin_kit.install(where, "good_city", GOOD, {"good.toml": protocol_text("good-city")})
    plugin_kit.install(where, "unscoped_pager", UNSCOPED)
    plugin_kit.activate(monkeypatch, where)
    engine = lr.Engine(store=lr.MemoryStore(), delivery_timeout=None)
    (broken,) = engine.broken_plugins
    assert (broken.name, broken.stage) == ("unscoped_pager", "delivery")
    assert "lastresort_delivers_for" in broken.reason
    encounter = walk_happy_path(engine, "good-city")
    engine.deliver()
    assert "amsterdam-pager" not in receipts(engine, encounter.id)
    assert sys.modules["unscoped_pager"].CALLS == []
    with pytest.raises(lr.PluginLoadError, match="unscoped_pager"):
        lr.Engine(store=lr.MemoryStore(), strict_plugins=True)


def test_lastresort_delivers_for_of_a_plugin_registered_later_is_heeded(
    taskforce: lr.Protocol,
) -> None:
    engine = lr.Engine(
        protocols=two_protocols(taskforce), entry_points=False, delivery_timeout=None
    )
    late = Channel(["other-city"], "late-pager")
    engine.plugin_manager.register(late)
    a = walk_happy_path(engine, "taskforce")
    b = walk_happy_path(engine, "other-city")
    engine.deliver()
    assert receipts(engine, a.id) == {"log"}
    assert receipts(engine, b.id) == {"late-pager"}
    engine.plugin_manager.unregister(late)
    c = walk_happy_path(engine, "other-city")
    engine.deliver()
    assert receipts(engine, c.id) == {"log"}


def test_the_innermost_replacement_delivers(taskforce: lr.Protocol) -> None:
    from lastresort.testing import RecordingDelivery, replacing_delivery

    outer, inner = RecordingDelivery(), RecordingDelivery()
    with replacing_delivery(outer):
        with replacing_delivery(inner):
            nested = lr.Engine(protocols=[taskforce], entry_points=False)
        after = lr.Engine(protocols=[taskforce], entry_points=False)
    walk_happy_path(nested, "taskforce")
    nested.deliver()
    assert inner.delivered
    assert outer.delivered == []
    walk_happy_path(after, "taskforce")
    after.deliver()
    assert outer.delivered
