"""Diagrams: Mermaid and DOT structure of the reference protocol, grouped acute_danger,
clock edges and handovers, escaping (quotes, diacritics, syntax characters, keywords),
determinism, a DOT syntax check (and Graphviz itself when installed), and the
``lastresort diagram`` command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.cli import main
from lastresort.render.catalogue import catalogue_for

ROOT = Path(__file__).resolve().parent.parent
# engine and drawing mechanics on a frozen copy of the 2014 reference protocol (tests/conftest.py)
TASKFORCE = Path(__file__).parent / "protocols" / "taskforce-2014.toml"
HUISVERBOD = ROOT / "plugins" / "huisverbod" / "src" / "lastresort_huisverbod" / "huisverbod.toml"
FIVE_MISTAKES = Path(__file__).parent / "protocols" / "foundations" / "five_mistakes.toml"

# names full of what each format must escape
COUNTER_NAME = 'Baliemedewerker "Anaïs" (café; 50%: #1) <b>x</b> & \\ é ë ï #34;'
EXPERT_NAME = "line one\nline two: direction TB `code`"
TITLE = 'The "mayor": last resort; direction LR & <i>Zoë</i>'


@pytest.fixture
def taskforce() -> lr.Protocol:
    return lr.load_protocol(TASKFORCE)


# -- a small reader of the Mermaid we write -----------------------------------------------

_STATE = re.compile(r'^    state "(?P<label>[^"\n]*)" as (?P<id>\w+)$')
_EDGE = re.compile(r"^    (?P<src>\w+|\[\*\]) --> (?P<dst>\w+|\[\*\])(?: : (?P<label>[^:;\n]+))?$")
_CLASS = re.compile(r"^    class (?P<ids>\w+(?:,\w+)*) (?P<cls>\w+)$")
_OTHER = re.compile(r"^    (%%.*|direction TB|classDef \w+ [^;\n]+)$")
# what Mermaid's lexer reads as a keyword where a state id stands
RESERVED = {"default", "end", "state", "note", "class", "classdef", "direction", "scale"}


def decode_mermaid(label: str) -> list[str]:
    """The lines a Mermaid label shows: ``<br>`` breaks, ``#NNN;`` entity codes."""
    return [re.sub(r"#(\d+);", lambda m: chr(int(m[1])), part) for part in label.split("<br>")]


@dataclass
class Mermaid:
    states: dict[str, list[str]] = field(default_factory=dict)
    edges: list[tuple[str, str, list[str]]] = field(default_factory=list)
    classes: dict[str, str] = field(default_factory=dict)
    title: str = ""


def read_mermaid(text: str) -> Mermaid:
    """Parse the output line by line; every line must be one of the statements we
    use (so anything else, e.g. a label that broke out of its quotes, fails)."""
    lines = text.split("\n")
    assert text.endswith("\n")
    assert lines[:4] == ["---", lines[1], "---", "stateDiagram-v2"], lines[:4]
    found = Mermaid(title=lines[1])
    for line in lines[4:-1]:
        if m := _STATE.match(line):
            assert m["id"] not in found.states, f"state {m['id']} declared twice"
            found.states[m["id"]] = decode_mermaid(m["label"])
        elif m := _EDGE.match(line):
            found.edges.append((m["src"], m["dst"], decode_mermaid(m["label"] or "")))
        elif m := _CLASS.match(line):
            for node in m["ids"].split(","):
                assert node not in found.classes
                found.classes[node] = m["cls"]
        else:
            assert _OTHER.match(line), f"not a statement we write: {line!r}"
    for src, dst, _ in found.edges:
        for node in (src, dst):
            assert node == "[*]" or node in found.states, f"edge uses undeclared {node}"
    for node in found.states:
        assert node.lower() not in RESERVED
        assert re.fullmatch(r"[A-Za-z]\w*", node)
    return found


# -- a small reader of the DOT we write -----------------------------------------------------

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|->|[{}\[\];=,]|[A-Za-z_][\w.]*|//[^\n]*|\s+', re.S)


def dot_tokens(text: str) -> list[str]:
    """Tokenize DOT; fails on an unterminated string or a stray character."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"cannot tokenize DOT at {pos}: {text[pos : pos + 40]!r}"
        if not m[0].isspace() and not m[0].startswith("//"):
            tokens.append(m[0])
        pos = m.end()
    return tokens


def unquote_dot(token: str) -> str:
    assert re.fullmatch(r'".*"', token, re.S), token
    body = token[1:-1]
    out = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), body)
    return out.replace("&amp;", "&")


@dataclass
class Dot:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    graph: dict[str, str] = field(default_factory=dict)


def read_dot(text: str) -> Dot:
    """A syntax check of the DOT we write: one digraph, balanced braces, statements
    ending in ';', attribute lists of key="value", every node declared before use."""
    tokens = dot_tokens(text)
    depth = 0
    for t in tokens:
        depth += {"{": 1, "}": -1}.get(t, 0)
        assert depth >= 0, "unbalanced braces: a '}' closes nothing"
    assert depth == 0, "unbalanced braces"
    assert tokens[:1] + tokens[2:3] + tokens[-1:] == ["digraph", "{", "}"], tokens[:3]
    found, i, body = Dot(), 0, tokens[3:-1]

    def attrs(j: int) -> tuple[dict[str, str], int]:
        result: dict[str, str] = {}
        if j < len(body) and body[j] == "[":
            j += 1
            while body[j] != "]":
                key, eq, value = body[j], body[j + 1], body[j + 2]
                assert (eq, value[:1]) == ("=", '"'), body[j : j + 3]
                result[key] = unquote_dot(value)
                j += 3
                if body[j] == ",":
                    j += 1
            j += 1
        return result, j

    while i < len(body):
        head = body[i]
        if head in {"graph", "node", "edge"}:
            given, i = attrs(i + 1)
            if head == "graph":
                found.graph = given
        elif i + 1 < len(body) and body[i + 1] == "->":
            src, dst = unquote_dot(head), unquote_dot(body[i + 2])
            assert {src, dst} <= set(found.nodes), f"undeclared node in {src}->{dst}"
            given, i = attrs(i + 3)
            found.edges.append((src, dst, given))
        else:
            node = unquote_dot(head)
            assert node not in found.nodes, f"node {node} declared twice"
            found.nodes[node], i = attrs(i + 1)
        assert body[i] == ";", f"statement not ended by ';' at token {i}: {body[i]!r}"
        i += 1
    return found


# -- helpers --------------------------------------------------------------------------------


def expected_edges(protocol: lr.Protocol, lang: str | None = None) -> Counter[tuple[str, str, str]]:
    """(source, target, event) for every transition that is not grouped; with ``lang``,
    the transition's label in that language instead of the event."""
    found: Counter[tuple[str, str, str]] = Counter()
    for t in protocol.transitions:
        if t.event == "acute_danger" or "*" in t.sources:
            continue
        shown = t.event if lang is None else protocol.transition_title(t, lang)
        for source in t.sources:
            found[(source, t.target, shown)] += 1
    return found


def changed(protocol: lr.Protocol, **edits: Any) -> lr.Protocol:
    data = lr.dump_protocol(protocol)
    for path, value in edits.items():
        where = data
        *parents, last = path.split("__")
        for key in parents:
            where = where[key]
        where[last] = value
    return lr.load_protocol(data)


def tricky(taskforce: lr.Protocol) -> lr.Protocol:
    """The reference protocol with keyword, hyphenated and ``lr_`` step keys and
    names full of quotes, diacritics and syntax characters."""
    rename = {"arrived": "default", "awaiting_expert": "lr_any", "escalated": "9-late"}
    rename |= {"closed": "end", "mayor_met": "state"}
    data = lr.dump_protocol(taskforce)
    data["protocol"]["initial"] = rename["arrived"]
    data["protocol"]["title"]["en"] = TITLE
    data["steps"] = {rename.get(k, k): v for k, v in data["steps"].items()}
    for t in data["transitions"]:
        t["to"] = rename.get(t["to"], t["to"])
        if t["from"] != "*":
            t["from"] = [rename.get(s, s) for s in t["from"]]
    data["parties"]["counter"]["name"]["en"] = COUNTER_NAME
    data["parties"]["expert"]["name"]["en"] = EXPERT_NAME
    return lr.load_protocol(data)


# -- Mermaid ----------------------------------------------------------------------------------


def test_mermaid_has_every_step_with_its_party(taskforce: lr.Protocol) -> None:
    m = read_mermaid(lr.to_mermaid(taskforce))
    steps = {key: lines for key, lines in m.states.items() if not key.startswith("lr_")}
    assert list(steps) == list(taskforce.steps)
    for key, step in taskforce.steps.items():
        lines = steps[key]
        assert lines[0] == key
        if step.responsible is not None:
            assert lines[1] == taskforce.parties[step.responsible].name.en
    assert steps["closed"] == ["closed", "final step"]
    assert steps["with_police"] == ["with_police", "Police (112)", "final step · emergency"]
    assert m.title == (
        'title: "Mayor as last resort (Taskforce reference arrangement) — taskforce 2014.1"'
    )


def test_mermaid_has_every_transition_once_per_source(taskforce: lr.Protocol) -> None:
    m = read_mermaid(lr.to_mermaid(taskforce))
    drawn = Counter((s, d, label[0]) for s, d, label in m.edges if s != "[*]" and d != "[*]")
    grouped = drawn.pop(("lr_any", "with_police", "acute_danger"))
    assert grouped == 1
    assert drawn == expected_edges(taskforce)
    assert sum(drawn.values()) == 13


def test_mermaid_start_and_final_states(taskforce: lr.Protocol) -> None:
    m = read_mermaid(lr.to_mermaid(taskforce))
    assert [d for s, d, _ in m.edges if s == "[*]"] == ["arrived"]
    assert [s for s, d, _ in m.edges if d == "[*]"] == ["closed", "with_police"]
    assert m.classes == {"closed": "final", "with_police": "emergency", "lr_any": "group"}


def test_acute_danger_is_drawn_once_from_a_grouping_state(taskforce: lr.Protocol) -> None:
    m = read_mermaid(lr.to_mermaid(taskforce))
    acute = [(s, d, label) for s, d, label in m.edges if label[0] == "acute_danger"]
    assert acute == [("lr_any", "with_police", ["acute_danger", "handover"])]
    assert m.states["lr_any"] == ["every step except the final steps"]
    assert [s for s, d, _ in m.edges if d == "with_police"] == ["escalated", "lr_any"]


def test_clock_edges_carry_their_deadline_and_others_do_not(taskforce: lr.Protocol) -> None:
    m = read_mermaid(lr.to_mermaid(taskforce))
    for source, target, label in m.edges:
        if source in taskforce.steps:
            deadline = taskforce.steps[source].deadline
            if deadline is not None and deadline.event == label[0]:
                # durations in the diagram's language: "15 min", "2 h"
                after = catalogue_for("en").duration(deadline.after)
                assert label[1].startswith(f"clock, after {after}")
                continue
        assert not any("clock" in line for line in label), (source, target, label)
    clock = {(s, label[0], label[1]) for s, _, label in m.edges if "clock" in "".join(label)}
    assert clock == {
        ("arrived", "expert_not_called", "clock, after 15 min"),
        ("awaiting_expert", "expert_overdue", "clock, after 45 min"),
        ("escalated", "no_expert_available", "clock, after 45 min · handover"),
        ("with_expert", "mayor_not_informed", "clock, after 2 h"),
        ("awaiting_mayor", "mayor_overdue", "clock, after 4 h"),
    }


def test_handovers_are_marked(taskforce: lr.Protocol) -> None:
    m = read_mermaid(lr.to_mermaid(taskforce))
    marked = {(s, label[0]) for s, _, label in m.edges if "handover" in " ".join(label)}
    assert marked == {
        ("arrived", "expert_takes_over"),
        ("awaiting_expert", "expert_takes_over"),
        ("escalated", "expert_takes_over"),
        ("escalated", "no_expert_available"),
        ("lr_any", "acute_danger"),
    }


def test_dutch_labels(taskforce: lr.Protocol) -> None:
    m = read_mermaid(lr.to_mermaid(taskforce, lang="nl"))
    assert m.states["arrived"] == ["arrived", "Baliemedewerker"]
    assert m.states["closed"] == ["closed", "eindstap"]
    assert m.states["with_police"] == ["with_police", "Politie (112)", "eindstap · nood"]
    assert m.states["lr_any"] == ["elke stap behalve de eindstappen"]
    edges = {(s, label[0]): label for s, _, label in m.edges}
    assert edges[("arrived", "expert_not_called")] == ["expert_not_called", "klok, na 15 min"]
    assert edges[("arrived", "expert_takes_over")] == ["expert_takes_over", "overdracht"]
    assert "Burgemeester als last resort" in m.title


def test_guards_are_shown(taskforce: lr.Protocol) -> None:
    guarded = changed(
        taskforce,
        transitions=[
            t | ({"guard": "child_consents"} if t["event"] == "expert_takes_over" else {})
            for t in lr.dump_protocol(taskforce)["transitions"]
        ],
    )
    m = read_mermaid(lr.to_mermaid(guarded))
    labels = [label[0] for s, _, label in m.edges if s == "arrived"]
    assert "expert_takes_over [child_consents]" in labels


def test_explicit_acute_sources_are_grouped_too() -> None:
    huisverbod = lr.load_protocol(HUISVERBOD)
    m = read_mermaid(lr.to_mermaid(huisverbod))
    # huisverbod has labels: edges and grouping states show them, not keys
    acute = [(s, d) for s, d, label in m.edges if label[0] == "Acute danger (112)"]
    assert len(acute) == 1
    group = acute[0][0]
    assert m.states[group] == [
        "from Assessing with the RiHG, Consulting Veilig Thuis, Deciding on a huisverbod"
    ]
    assert "lr_any" not in m.states  # nothing leaves from '*'
    drawn = Counter(
        (s, d, label[0].split(" [")[0])
        for s, d, label in m.edges
        if s in huisverbod.steps and d != "[*]"
    )
    assert drawn == expected_edges(huisverbod, lang="en")


def test_a_star_transition_is_drawn_once(taskforce: lr.Protocol) -> None:
    data = lr.dump_protocol(taskforce)
    data["transitions"].append(
        {"event": "mayor_drops_in", "from": "*", "to": "mayor_met", "by": ["expert"]}
    )
    protocol = lr.load_protocol(data, check=False)
    m = read_mermaid(lr.to_mermaid(protocol))
    star = [(s, d, label) for s, d, label in m.edges if label[0] == "mayor_drops_in"]
    assert star == [("lr_any", "mayor_met", ["mayor_drops_in", "handover"])]
    assert len([s for s in m.states if s.startswith("lr_")]) == 1  # one shared grouping state


# -- escaping -----------------------------------------------------------------------------------


def test_mermaid_escapes_quotes_diacritics_and_syntax(taskforce: lr.Protocol) -> None:
    protocol = tricky(taskforce)
    text = lr.to_mermaid(protocol)
    m = read_mermaid(text)  # every line still parses as the statement it should be
    ids = {lines[0]: node for node, lines in m.states.items()}
    # keys Mermaid would read as keywords (or that look like ours) get their own ids
    assert {k: ids[k] for k in ("default", "lr_any", "9-late", "state", "end", "with_expert")} == {
        "default": "lr_step1",
        "lr_any": "lr_step2",
        "9-late": "lr_step3",
        "state": "lr_step6",
        "end": "lr_step8",
        "with_expert": "with_expert",
    }
    assert m.states["lr_step1"] == ["default", COUNTER_NAME]
    assert m.states["with_expert"] == ["with_expert", *EXPERT_NAME.split("\n")]
    assert "Baliemedewerker #34;Anaïs#34; (café#59;" in text  # diacritics in UTF-8 as they are
    assert "direction TB" not in text.replace("    direction TB\n", "")
    assert m.title == 'title: "' + TITLE.replace('"', '\\"') + ' — taskforce 2014.1"'
    assert [d for s, d, _ in m.edges if s == "[*]"] == ["lr_step1"]
    assert m.classes["lr_step8"] == "final"


def test_escape_mermaid_codes_every_special_character() -> None:
    from lastresort.render.diagram import escape_mermaid

    assert escape_mermaid('a "b": c; #1 50% <x> & `y`') == (
        "a #34;b#34;#58; c#59; #35;1 50#37; #60;x#62; #38; #96;y#96;"
    )
    assert escape_mermaid("één\r\ntwee\tdrie") == "één<br>twee drie"
    assert escape_mermaid("the direction  LR of it") == "the direction#32; LR of it"


def test_dot_escapes_quotes_diacritics_and_backslashes(taskforce: lr.Protocol) -> None:
    protocol = tricky(taskforce)
    d = read_dot(lr.to_dot(protocol))
    labels = {node: attrs["label"].split("\n") for node, attrs in d.nodes.items()}
    assert labels["lr_step1"] == ["default", COUNTER_NAME]
    assert labels["with_expert"] == ["with_expert", *EXPERT_NAME.split("\n")]
    assert d.graph["label"].split("\n")[0] == TITLE
    assert d.graph["charset"] == "UTF-8"
    from lastresort.render.diagram import escape_dot

    assert escape_dot('say "hi" \\ & é\nok') == 'say \\"hi\\" \\\\ &amp; é\\nok'


# -- DOT ----------------------------------------------------------------------------------------


def test_dot_has_every_step_and_transition(taskforce: lr.Protocol) -> None:
    d = read_dot(lr.to_dot(taskforce))
    steps = [n for n in d.nodes if not n.startswith("lr_")]
    assert steps == list(taskforce.steps)
    assert set(d.nodes) - set(steps) == {"lr_start", "lr_any"}
    drawn = Counter(
        (s, t, attrs["label"].split("\n")[0]) for s, t, attrs in d.edges if s != "lr_start"
    )
    assert drawn.pop(("lr_any", "with_police", "acute_danger")) == 1
    assert drawn == expected_edges(taskforce)
    assert [(s, t) for s, t, _ in d.edges if s == "lr_start"] == [("lr_start", "arrived")]


def test_dot_clock_edges_are_dashed_and_labelled_with_the_duration(
    taskforce: lr.Protocol,
) -> None:
    d = read_dot(lr.to_dot(taskforce))
    dashed = {(s, attrs["label"]) for s, _, attrs in d.edges if attrs.get("style") == "dashed"}
    assert dashed == {
        ("arrived", "expert_not_called\nclock, after 15 min"),
        ("awaiting_expert", "expert_overdue\nclock, after 45 min"),
        ("escalated", "no_expert_available\nclock, after 45 min · handover"),
        ("with_expert", "mayor_not_informed\nclock, after 2 h"),
        ("awaiting_mayor", "mayor_overdue\nclock, after 4 h"),
    }
    bold = {(s, attrs["label"].split("\n")[0]) for s, _, attrs in d.edges if "penwidth" in attrs}
    assert ("arrived", "expert_takes_over") in bold
    assert ("arrived", "call_expert") not in bold


def test_dot_final_and_emergency_states(taskforce: lr.Protocol) -> None:
    d = read_dot(lr.to_dot(taskforce))
    final = {n for n, attrs in d.nodes.items() if attrs.get("peripheries") == "2"}
    assert final == {"closed", "with_police"}
    assert d.nodes["with_police"]["fillcolor"] == "#fdecea"
    assert d.nodes["lr_any"]["style"] == "dashed"
    red = [(s, t) for s, t, attrs in d.edges if attrs.get("color") == "#c62828"]
    assert red == [("lr_any", "with_police")]


def test_dot_syntax_check_catches_mistakes(taskforce: lr.Protocol) -> None:
    # the checker itself must fail on broken DOT, or it proves nothing
    text = lr.to_dot(taskforce)
    with pytest.raises(AssertionError, match="unbalanced"):
        read_dot(text.rstrip().removesuffix("}"))
    with pytest.raises(AssertionError, match="unbalanced"):
        read_dot(text + "}\n")
    with pytest.raises(AssertionError, match="undeclared"):
        read_dot(text.replace('    "closed" [', '    "closedx" ['))
    with pytest.raises(AssertionError, match="tokenize"):
        read_dot(text.replace('label="close"', 'label="clo"se"'))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
@pytest.mark.parametrize("lang", ["en", "nl"])
def test_graphviz_renders_it_with_the_exact_labels(taskforce: lr.Protocol, lang: str) -> None:
    protocol = tricky(taskforce)
    result = subprocess.run(
        ["dot", "-Tsvg"],
        input=lr.to_dot(protocol, lang).encode("utf-8"),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert not result.stderr.strip(), result.stderr.decode()  # no warnings either
    svg = ET.fromstring(result.stdout)
    texts = {el.text for el in svg.iter() if el.tag.endswith("text")}
    if lang == "en":
        assert {COUNTER_NAME, TITLE} <= texts
        assert {"line one", "line two: direction TB `code`"} <= texts
    assert {"with_police", "acute_danger"} <= texts


# -- determinism and bad input ----------------------------------------------------------------


def test_the_same_protocol_gives_the_same_text(taskforce: lr.Protocol) -> None:
    again = lr.load_protocol(lr.dump_protocol(taskforce))
    assert again is not taskforce
    for lang in ("en", "nl"):
        assert lr.to_mermaid(taskforce, lang) == lr.to_mermaid(again, lang)
        assert lr.to_dot(taskforce, lang) == lr.to_dot(again, lang)


@pytest.mark.slow
def test_the_same_text_in_fresh_interpreters_with_other_hash_seeds() -> None:
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        for fmt in ("mermaid", "dot"):
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "lastresort.cli",
                    "diagram",
                    str(TASKFORCE),
                    "--format",
                    fmt,
                ],
                capture_output=True,
                text=True,
                check=False,
                env=env,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
            outputs.add((fmt, result.stdout))
    assert len(outputs) == 2


def test_an_unknown_language_is_refused(taskforce: lr.Protocol) -> None:
    # a further language needs its catalogue (see tests/test_labels.py)
    with pytest.raises(lr.InvalidArgument, match="lang must be one of en, nl, or come with"):
        lr.to_mermaid(taskforce, lang="de")
    with pytest.raises(ValueError, match="lang must be one of en, nl"):
        lr.to_dot(taskforce, lang="de")


def test_a_graph_that_cannot_be_drawn_is_refused(taskforce: lr.Protocol) -> None:
    data = lr.dump_protocol(taskforce)
    data["transitions"][0]["to"] = "nowhere"
    broken = lr.load_protocol(data, check=False)
    before = lr.dump_protocol(broken)
    for draw in (lr.to_mermaid, lr.to_dot):
        with pytest.raises(lr.ProtocolError) as caught:
            draw(broken)
        assert any("nowhere" in p for p in caught.value.problems), caught.value.problems
    assert lr.dump_protocol(broken) == before


# -- the command ----------------------------------------------------------------------------------


def test_cli_prints_the_mermaid_diagram(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "taskforce"]) == 0  # the installed (shipped) protocol
    out, err = capsys.readouterr()
    shipped = lr.load_protocol(Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml")
    assert (out, err) == (lr.to_mermaid(shipped), "")


def test_cli_prints_dot_in_dutch_for_a_file(
    taskforce: lr.Protocol, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diagram", str(TASKFORCE), "--format", "dot", "--lang", "nl"]) == 0
    assert capsys.readouterr().out == lr.to_dot(taskforce, "nl")


def test_cli_a_bad_file_prints_its_problems_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = FIVE_MISTAKES.read_bytes()
    assert main(["diagram", str(FIVE_MISTAKES)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"lastresort: 5 problems in {FIVE_MISTAKES}:\n")
    assert (
        f"  - {FIVE_MISTAKES}:76:1: $.transitions[3].to: unknown step 'closd'"
        " (did you mean 'closed'?)\n" in err
    )
    assert FIVE_MISTAKES.read_bytes() == before


def test_cli_an_unknown_id_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "tasforce", "--format", "dot"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("lastresort: 1 problem:\n  - $: unknown protocol 'tasforce'; installed:")


@pytest.mark.parametrize(
    "args",
    [["diagram"], ["diagram", "taskforce", "--format", "svg"], ["diagram", "x", "--lang", "de"]],
)
def test_cli_bad_arguments_exit_2_without_a_traceback(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lastresort.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: lastresort diagram")
    assert "Traceback" not in result.stderr


def test_an_emergency_step_that_goes_on_is_highlighted_but_not_final(
    taskforce: lr.Protocol,
) -> None:
    data = lr.dump_protocol(taskforce)
    data["steps"]["with_police"] |= {"kind": "active", "deadline": None}
    data["transitions"].append(
        {"event": "police_hand_back", "from": ["with_police"], "to": "closed", "by": ["police"]}
    )
    data["protocol"]["title"]["en"] = "Two\u2028lines\nhere"
    protocol = lr.load_protocol(data, check=False)
    m = read_mermaid(lr.to_mermaid(protocol))
    assert [s for s, d, _ in m.edges if d == "[*]"] == ["closed"]
    assert m.classes["with_police"] == "emergency"
    assert m.states["with_police"] == ["with_police", "Police (112)", "emergency"]
    assert m.title == 'title: "Two lines here — taskforce 2014.1"'
    d = read_dot(lr.to_dot(protocol))
    assert "peripheries" not in d.nodes["with_police"]
    assert d.nodes["with_police"]["fillcolor"] == "#fdecea"
    assert d.nodes["closed"]["peripheries"] == "2"
