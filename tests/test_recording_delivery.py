"""Recording delivery (issue 14): ``lastresort.testing.RecordingDelivery``, the
``recording_delivery`` fixture that replaces every delivery, and scenario runs that
record instead of paging unless ``--real-delivery`` is asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.scenario.files import load_scenario
from lastresort.scenario.runner import run_scenario
from lastresort.testing import RecordingDelivery, make_engine, replacing_delivery, walk_happy_path

from . import plugin_kit
from .plugin_kit import PAGER

ROOT = Path(__file__).resolve().parents[1]
LATE = ROOT / "examples" / "scenarios" / "taskforce-expert-late.scenario.toml"


@pytest.fixture
def pager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed pager for taskforce; returns the file it writes each page to."""
    where = tmp_path / "site"
    plugin_kit.install(where, "test_pager", PAGER)
    plugin_kit.activate(monkeypatch, where)
    log = tmp_path / "paged.txt"
    monkeypatch.setenv("LASTRESORT_TEST_PAGER_LOG", str(log))
    return log


def paged(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_the_installed_pager_pages_without_the_fixture(pager: Path) -> None:
    # the control: the fixture below is what keeps the pager quiet
    engine = lr.Engine(store=lr.MemoryStore(), delivery_timeout=None)
    walk_happy_path(engine, "taskforce")
    engine.deliver()
    assert paged(pager)


def test_recording_delivery_fixture_replaces_installed_and_explicit_delivery(
    pager: Path, recording_delivery: RecordingDelivery
) -> None:
    class Explicit:
        calls = 0

        @lr.hookimpl
        def lastresort_deliver(self, notification: lr.Notification) -> str:
            Explicit.calls += 1
            return "explicit"

    engine = lr.Engine(store=lr.MemoryStore(), plugins=[Explicit()], delivery_timeout=None)
    encounter = walk_happy_path(engine, "taskforce")
    engine.deliver()
    assert paged(pager) == []
    assert Explicit.calls == 0
    outbox = engine.outbox(encounter.id)
    assert outbox
    assert [n.key for n in recording_delivery.delivered] == [n.key for n in outbox]
    receipts = {
        e.receipt for e in engine.timeline(encounter.id) if isinstance(e, lr.NotificationDelivered)
    }
    assert receipts == {"recorded"}
    assert recording_delivery.to("expert")
    assert all(n.party == "expert" for n in recording_delivery.to("expert"))


def test_an_engine_built_outside_the_replacement_delivers_as_before(pager: Path) -> None:
    recording = RecordingDelivery()
    with replacing_delivery(recording):
        inside = lr.Engine(store=lr.MemoryStore(), delivery_timeout=None)
    outside = lr.Engine(store=lr.MemoryStore(), delivery_timeout=None)
    walk_happy_path(inside, "taskforce")
    inside.deliver()  # delivered after the block: still recorded, decided when built
    assert recording.delivered
    assert paged(pager) == []
    walk_happy_path(outside, "taskforce")
    outside.deliver()
    assert paged(pager)


def test_recording_delivery_refuses_and_defers_when_told(taskforce: lr.Protocol) -> None:
    recording = RecordingDelivery(refuse=["expert"], defer=lambda n: n.party == "mayor_staff")
    engine, _ = make_engine([taskforce], plugins=[recording])
    encounter = walk_happy_path(engine, "taskforce")
    engine.deliver()
    outcomes = {(a.notification.party, a.outcome) for a in recording.attempts}
    assert ("expert", "refused") in outcomes
    assert all(n.party != "expert" for n in recording.delivered)
    dead = [e for e in engine.timeline(encounter.id) if isinstance(e, lr.NotificationDeadLettered)]
    assert {e.party for e in dead} >= {"expert"}
    assert {e.error_kind for e in dead} == {"DeliveryRefused"}
    recording.clear()
    assert recording.attempts == []


def test_recording_delivery_defer_sets_the_next_attempt(taskforce: lr.Protocol) -> None:
    recording = RecordingDelivery(defer=["expert"], retry_after=timedelta(minutes=7))
    engine, clock = make_engine([taskforce], plugins=[recording])
    encounter = engine.open("taskforce", lr.Actor("counter", "c-1"))
    engine.fire(encounter.id, "call_expert", lr.Actor("counter", "c-1"))
    engine.deliver()
    (note,) = [n for n in engine.outbox(encounter.id) if n.party == "expert"]
    assert note.delivered_at is None
    assert note.attempts == 1
    assert note.next_attempt_at >= clock.now() + timedelta(minutes=7)
    assert [a.outcome for a in recording.attempts] == ["deferred"]


def test_recording_delivery_can_be_scoped(taskforce: lr.Protocol) -> None:
    recording = RecordingDelivery(protocols=["other-city"])
    engine, _ = make_engine([taskforce], plugins=[recording])
    walk_happy_path(engine, "taskforce")
    engine.deliver()
    assert recording.attempts == []


def test_a_scenario_run_records_deliveries_by_default(pager: Path) -> None:
    result = run_scenario(load_scenario(LATE))
    assert result.passed, result.report()
    assert paged(pager) == []
    assert result.delivery is not None
    assert {n.party for n in result.delivery.delivered} >= {"expert", "mayor_staff"}


def test_a_scenario_run_with_real_delivery_pages(pager: Path) -> None:
    result = run_scenario(load_scenario(LATE), real_delivery=True)
    assert result.passed, result.report()
    assert result.delivery is None
    assert any(line.startswith("taskforce mayor_staff") for line in paged(pager))


def run(where: Path, log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where), "LASTRESORT_TEST_PAGER_LOG": str(log)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_the_scenario_command_records_unless_real_delivery(tmp_path: Path) -> None:
    where = tmp_path / "site"
    plugin_kit.install(where, "test_pager", PAGER)
    log = tmp_path / "paged.txt"
    done = run(where, log, "-m", "lastresort.cli", "scenario", "run", str(LATE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert paged(log) == []
    done = run(where, log, "-m", "lastresort.cli", "scenario", "run", "--real-delivery", str(LATE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert paged(log)


def test_pytest_scenario_items_record_unless_real_delivery(tmp_path: Path) -> None:
    where = tmp_path / "site"
    plugin_kit.install(where, "test_pager", PAGER)
    log = tmp_path / "paged.txt"
    args = ["-m", "pytest", "-q", "-p", "lastresort.testing", "-p", "no:cacheprovider"]
    args += ["--rootdir", str(tmp_path), "-c", os.devnull, str(LATE)]
    done = run(where, log, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert paged(log) == []
    done = run(where, log, *args, "--real-delivery")
    assert done.returncode == 0, done.stdout + done.stderr
    assert paged(log)


ACUTE = ROOT / "examples" / "scenarios" / "amsterdam-acute-danger.scenario.toml"


def test_a_scenario_asserts_on_the_contact_a_notification_was_delivered_to(
    tmp_path: Path,
) -> None:
    text = ACUTE.read_text(encoding="utf-8")
    assert 'contact = "112"' in text
    result = run_scenario(load_scenario(ACUTE))
    assert result.passed, result.report()
    assert result.delivery is not None
    assert [n.contact for n in result.delivery.to("police")] == ["112"]
    wrong = tmp_path / "wrong.scenario.toml"
    wrong.write_text(text.replace('contact = "112"', 'contact = "113"'), encoding="utf-8")
    failed = run_scenario(load_scenario(wrong))
    assert not failed.passed
    assert "once at '113' (addressed to: 112)" in failed.report()
    bad = tmp_path / "bad.scenario.toml"
    bad.write_text(text.replace('contact = "112"', "contact = 112"), encoding="utf-8")
    with pytest.raises(lr.ScenarioError, match=r"delivered\[0\]\.contact"):
        load_scenario(bad)
