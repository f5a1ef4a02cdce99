"""The SCXML export: ``lr.to_scxml`` / ``lr.from_scxml`` and ``lastresort export``.

Every shipped protocol and the ``new-plugin`` template: the document passes the
structural checks, python-statemachine loads it, and reading it back gives an equal
protocol. Bad input is refused with a clear error and writes nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from attrs import evolve
from statemachine.io import load as load_scxml

import lastresort as lr
from lastresort.cli.app import main
from lastresort.render.scxml import LASTRESORT_NS, SCXML_NS, scxml_problems
from tests.test_differential import IDS, SHIPPED

S = "{" + SCXML_NS + "}"


@pytest.mark.parametrize("name", IDS)
def test_every_shipped_protocol_round_trips(name: str) -> None:
    protocol, _ = SHIPPED[name]
    document = lr.to_scxml(protocol)
    assert scxml_problems(document) == []
    assert lr.from_scxml(document) == protocol
    # and the document is a statechart python-statemachine runs
    machine = load_scxml(document, format="scxml")
    assert {s.id for s in machine.states} >= set(protocol.steps)


@pytest.mark.parametrize("name", IDS)
def test_the_statechart_holds_the_protocols_structure(name: str) -> None:
    protocol, _ = SHIPPED[name]
    root = ET.fromstring(lr.to_scxml(protocol))
    assert root.tag == S + "scxml"
    assert root.get("version") == "1.0"
    assert root.get("initial") == protocol.initial
    states = {el.get("id"): el for el in root if el.tag in (S + "state", S + "final")}
    assert list(states) == list(protocol.steps)
    for key, step in protocol.steps.items():
        el = states[key]
        assert (el.tag == S + "final") == step.terminal
        transitions = [
            t for t in el.findall(S + "transition") if t.get(f"{{{LASTRESORT_NS}}}rearm") is None
        ]
        expected = [t for t in protocol.transitions if key in protocol.sources_of(t)]
        # ``*`` expanded, in declaration order: SCXML takes the first whose cond holds
        assert [(t.get("event"), t.get("target")) for t in transitions] == [
            (t.event, t.target) for t in expected
        ]
        send = el.find(f"{S}onentry/{S}send")
        if step.deadline is None:
            assert send is None
            continue
        assert send is not None
        assert send.get("event") == step.deadline.event
        cancel = el.find(f"{S}onexit/{S}cancel")
        assert cancel is not None
        assert cancel.get("sendid") == send.get("id")
        if step.deadline.since is None and step.deadline.until is None:
            assert send.get("delay") == f"{int(step.deadline.after.total_seconds())}s"
        else:
            assert send.get("delayexpr") == "_event.data.deadline"


def test_a_handover_condition_names_only_the_receiver_and_a_guard_its_variable() -> None:
    protocol, _ = SHIPPED["rotterdam"]
    root = ET.fromstring(lr.to_scxml(protocol))
    guarded = [t for t in root.iter(S + "transition") if t.get(f"{{{LASTRESORT_NS}}}guard")]
    assert guarded
    for t in guarded:
        name = t.get(f"{{{LASTRESORT_NS}}}guard")
        assert t.get("cond", "").endswith(f" and guard_{name}")
    data = {d.get("id") for d in root.iter(S + "data")}
    assert {f"guard_{t.get(f'{{{LASTRESORT_NS}}}guard')}" for t in guarded} <= data


def test_an_edit_in_an_scxml_tool_is_an_edit_of_the_protocol() -> None:
    protocol, _ = SHIPPED["taskforce"]
    document = lr.to_scxml(protocol)
    step = next(k for k, s in protocol.steps.items() if s.deadline and not s.deadline.since)
    spec = protocol.steps[step].deadline
    assert spec is not None
    old = f'event="{spec.event}" delay="{int(spec.after.total_seconds())}s"'
    assert old in document
    edited = lr.from_scxml(document.replace(old, f'event="{spec.event}" delay="600s"'))
    assert edited.steps[step].deadline == evolve(
        spec, after=__import__("datetime").timedelta(minutes=10)
    )
    assert edited.transitions == protocol.transitions


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.replace('version="1.0" name=', 'version="2.0" name=', 1), "version is '2.0'"),
        (lambda d: d.replace(SCXML_NS, "urn:other", 1), "not <scxml>"),
        (
            lambda d: d.replace('target="awaiting_expert"', 'target="nowhere"', 1),
            "target 'nowhere' names no state",
        ),
        (
            lambda d: d.replace('initial="arrived"', 'initial="gone"', 1),
            "initial 'gone' names no state",
        ),
        (lambda d: d.replace(' delay="', ' later="', 1), "neither delay nor delayexpr"),
        (lambda d: d[: len(d) // 2], "not a well-formed SCXML document"),
        (lambda d: '<!DOCTYPE x [<!ENTITY a "b">]>' + d.split("?>", 1)[1], "DOCTYPE"),
    ],
)
def test_a_broken_document_is_refused_naming_the_problem(change: object, problem: str) -> None:
    protocol, _ = SHIPPED["taskforce"]
    broken = change(lr.to_scxml(protocol))  # type: ignore[operator]
    assert any(problem in p for p in scxml_problems(broken)), scxml_problems(broken)
    with pytest.raises(lr.ProtocolError) as info:
        lr.from_scxml(broken)
    assert any(problem in p for p in info.value.problems)


def test_a_document_not_written_by_lastresort_is_refused() -> None:
    plain = f'<scxml xmlns="{SCXML_NS}" version="1.0" initial="a"><state id="a"/></scxml>'
    assert scxml_problems(plain) == []
    with pytest.raises(lr.ProtocolError, match="no <lr:protocol> element"):
        lr.from_scxml(plain)


def test_bad_arguments_are_invalid_arguments() -> None:
    with pytest.raises(lr.InvalidArgument, match=r"a lastresort\.Protocol, not dict"):
        lr.to_scxml({})  # type: ignore[arg-type]
    with pytest.raises(lr.InvalidArgument, match="a str, not bytes"):
        lr.from_scxml(b"<scxml/>")  # type: ignore[arg-type]
    protocol, _ = SHIPPED["taskforce"]
    steps = {("1" + k if k == protocol.initial else k): s for k, s in protocol.steps.items()}
    odd = evolve(protocol, steps=steps, initial="1" + protocol.initial, transitions=())
    with pytest.raises(lr.InvalidArgument, match="step '1arrived'"):
        lr.to_scxml(odd)


def test_cli_export_prints_and_writes_the_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--format", "scxml", "taskforce"]) == 0
    printed = capsys.readouterr().out
    assert printed == lr.to_scxml(SHIPPED["taskforce"][0])
    out = tmp_path / "taskforce.scxml"
    assert main(["export", "--format", "scxml", "taskforce", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == printed


def test_cli_export_of_an_unknown_protocol_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.scxml"
    assert main(["export", "--format", "scxml", "amsterdma", "--out", str(out)]) == 2
    assert "unknown protocol 'amsterdma'" in capsys.readouterr().err
    assert not out.exists()


def test_lastresort_imports_and_exports_without_the_oracle_engines() -> None:
    """python-statemachine and sismic are test extras, never runtime dependencies."""
    code = (
        "import sys; sys.modules['statemachine'] = None; sys.modules['sismic'] = None\n"
        "import lastresort as lr, lastresort.cli.export\n"
        "from lastresort.cli._common import installed_protocols\n"
        "p = installed_protocols()['taskforce']\n"
        "assert lr.from_scxml(lr.to_scxml(p)) == p\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
    deps = (
        Path("pyproject.toml")
        .read_text(encoding="utf-8")
        .split("[project.optional-dependencies]")[0]
    )
    assert "statemachine" not in deps
    assert "sismic" not in deps


def test_one_occurrence_of_a_star_transition_edited_becomes_its_own_transition() -> None:
    protocol, _ = SHIPPED["taskforce"]
    index, star = next((i, t) for i, t in enumerate(protocol.transitions) if t.sources == ("*",))
    sources = protocol.sources_of(star)
    moved = sources[1]
    new = next(k for k in protocol.steps if k not in (star.target, moved))
    document = lr.to_scxml(protocol)
    head, _, tail = document.partition(f'<state id="{moved}"')
    block, _, rest = tail.partition("</state>")
    old = f'event="{star.event}" target="{star.target}"'
    assert old in block
    edited_block = block.replace(old, f'event="{star.event}" target="{new}"')
    edited = lr.from_scxml(f'{head}<state id="{moved}"{edited_block}</state>{rest}', check=False)
    assert len(edited.transitions) == len(protocol.transitions) + 1
    assert edited.transitions[index] == evolve(
        star, sources=tuple(s for s in sources if s != moved)
    )
    assert edited.transitions[index + 1] == evolve(star, sources=(moved,), target=new)
