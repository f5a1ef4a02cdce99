"""The reference protocol loads, runs end to end, and the CLI prints it."""

from __future__ import annotations

import lastresort as lr
from lastresort.cli import main
from lastresort.scenario.demo import run_demo


def test_reference_protocol_round_trips(taskforce: lr.Protocol) -> None:
    assert lr.load_protocol(lr.dump_protocol(taskforce)) == taskforce


def test_demo_walks_to_closed_with_an_escalation(engine: lr.Engine, clock: lr.VirtualClock) -> None:
    run = run_demo(engine, "taskforce", clock)
    kinds = [e.kind for e in run.timeline]
    assert engine.get(run.encounter_id).state == "closed"
    assert "DeadlineMissed" in kinds
    assert "ResponsibilityTransferred" in kinds
    assert [e.seq for e in run.timeline] == list(range(1, len(run.timeline) + 1))


def test_cli_lists_and_shows(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["protocols"]) == 0
    assert "taskforce" in capsys.readouterr().out
    assert main(["show", "taskforce", "--lang", "nl"]) == 0
    assert "Baliemedewerker" in capsys.readouterr().out


def test_a_directory_is_not_read_as_a_protocol_file(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "taskforce").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["show", "taskforce"]) == 0
    assert "Counter clerk" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        f"{sys.executable} -m lastresort.cli show taskforce | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_demo_prints_the_timeline_but_nothing_of_the_child(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "DEADLINE MISSED" in out
    assert "HANDOVER" in out
    assert "every chain verifies" in out
    assert "12-15" not in out  # the demo child's age band stays in the store


def test_load_packaged_protocol_reads_a_plugins_data_file() -> None:
    loaded = lr.load_packaged_protocol("lastresort.protocol.builtin", "taskforce.toml")
    assert loaded.id == "taskforce"


def test_load_packaged_protocol_names_what_is_missing() -> None:
    import pytest

    with pytest.raises(lr.ProtocolError, match="cannot find package 'no_such_plugin'"):
        lr.load_packaged_protocol("no_such_plugin", "x.toml")
    with pytest.raises(lr.ProtocolError, match="cannot read file"):
        lr.load_packaged_protocol("lastresort.protocol.builtin", "missing.toml")


def test_the_demo_shows_the_mayor_meeting_the_child_and_does_not_call_it_off() -> None:
    # the README promises "the mayor": where the mayor may act, the demo (`make demo`:
    # the installed protocols, a Monday morning) shows it; it used to arrange a meeting
    # and then cancel it, as the expert acting first won
    run = run_demo()
    engine = run.engine
    steps = [e for e in run.timeline if isinstance(e, lr.StepEntered)]
    events = [e.event for e in steps]
    actors = {e.actor.role for e in steps}
    assert "mayor_spoke_with_child" in events
    assert "meeting_cancelled" not in events
    assert "mayor" in actors
    assert engine.get(run.encounter_id).state == "closed"


def test_the_demo_of_every_installed_protocol_ends_in_a_terminal_step() -> None:
    # a guard that refuses the walk's first choice (veilig-thuis: a disclosure is
    # reported, not referred on; meldcode: a disclosure is a suspicion) sends the walk
    # the way the guard leaves open, instead of stopping half-way
    for protocol_id in ("taskforce", "amsterdam", "rotterdam", "veilig-thuis", "meldcode"):
        run = run_demo(protocol_id=protocol_id)
        protocol = run.engine.protocol(protocol_id)
        state = run.engine.get(run.encounter_id).state
        assert protocol.steps[state].terminal, (protocol_id, state)
