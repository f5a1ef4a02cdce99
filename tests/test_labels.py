"""Labels, cards entirely in one language, further languages and party groups (issue 14).

- every shipped protocol names each step and event with a bilingual label, and its card,
  pages and diagrams show the labels, not keys;
- a card is entirely in its language: the words come from a message catalogue, and a
  third language (Frisian here) needs a catalogue file and texts, no code;
- a label that is given must be sound; a missing one is a warning of ``check``;
- ``[groups]``: a flow declared once for several parties, expanded at load time, with
  problems located at the template.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import lastresort as lr
from lastresort.cli.app import main
from lastresort.protocol.json_schema import protocol_schema
from lastresort.protocol.labels import label_warnings
from lastresort.render.catalogue import catalogue_for

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(lr.__file__).parent
HERE = Path(__file__).parent / "protocols" / "labels"
FY = Path(__file__).parent / "messages" / "fy.toml"
MINIMAL_FY = HERE / "minimal-fy.toml"
MINIMAL = Path(__file__).parent / "protocols" / "foundations" / "minimal.toml"
FROZEN = Path(__file__).parent / "protocols" / "taskforce-2014.toml"
SHIPPED_FILES = sorted(
    [PACKAGE / "protocol" / "builtin" / "taskforce.toml", *ROOT.glob("plugins/*/src/*/*.toml")]
)


def _data(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


# -- the shipped protocols have every label ---------------------------------------------


def test_there_are_six_shipped_protocols() -> None:
    ids = {lr.load_protocol(path).id for path in SHIPPED_FILES}
    assert ids == {"taskforce", "amsterdam", "rotterdam", "veilig-thuis", "meldcode", "huisverbod"}


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.stem)
def test_every_step_and_event_of_a_shipped_protocol_has_a_label(path: Path) -> None:
    protocol = lr.load_protocol(path)
    assert label_warnings(protocol) == []
    for step in protocol.steps.values():
        assert step.label is not None, step.key
        for lang in ("nl", "en"):
            assert step.label.get(lang).strip()
            assert len(step.label.get(lang)) <= 60, step.label  # short
    for transition in protocol.transitions:
        label = protocol.event_label(transition.event)
        assert label is not None, transition.event
    # the Dutch card names no step or event by its key, and cites its source in Dutch
    card = lr.protocol_card(protocol, "nl")
    words = set(re.findall(r"[A-Za-z_]+", card))
    keys = {k for k in protocol.steps if "_" in k} | {
        t.event for t in protocol.transitions if "_" in t.event
    }
    assert not keys & words, sorted(keys & words)
    assert protocol.source_text is not None
    assert f"Bron: {protocol.source_text.nl}" in card


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.stem)
def test_the_dutch_card_has_no_english_words_of_the_card_itself(path: Path) -> None:
    card = lr.protocol_card(lr.load_protocol(path), "nl")
    for english in ("always", "mon-fri", "daily", "by clock", "door klok", "Responsible"):
        assert english not in card
    assert "(door de klok)" in card or "klok" not in card


# -- a third language: a catalogue file and texts, no code --------------------------------


def _fragments(text: str) -> list[str]:
    """The literal parts of a catalogue text (between placeholders), long enough to
    mean something."""
    return [part.strip() for part in re.split(r"\{\w+\}", text) if len(part.strip()) >= 4]


def test_a_card_in_frisian_is_entirely_in_frisian() -> None:
    fy = lr.load_catalogue(FY)
    protocol = lr.load_protocol(MINIMAL_FY)
    card = lr.protocol_card(protocol, "fy", catalogue=fy)
    lines = card.splitlines()
    assert lines[:3] == [
        "Minimale ôfspraak",
        "Testdoarp · minimal-fy 1 · kontakt mei in bern",
        "Boarne: testprotokol foar de eigen tests",
    ]
    assert "  - Balymeiwurker (meiwurker gemeente; te berikken: mo-fr 08:00-18:00)" in lines
    assert "2. Wachtsje op de saakkundige  (kenmerken: bern oanwêzich)" in lines
    assert (
        "   Termyn: 1 oer 30 min → Saakkundige te let * (foarbyldwearde: de gemeente stelt"
        " dizze termyn sels fêst)" in lines
    )
    assert (
        "     - Saakkundige te let (troch de klok) → Akuut gefaar, plysje; ynformearret Plysje"
        in lines
    )
    # nothing of the Dutch or English catalogues, nor of the protocol's nl/en texts
    foreign: set[str] = set()
    for lang in ("nl", "en"):
        for key, text in catalogue_for(lang).messages.items():
            foreign.update(f for f in _fragments(text) if f not in fy[key])
    texts = [protocol.title, protocol.source_text, protocol.municipality_text]
    texts += [p.name for p in protocol.parties.values()]
    texts += [s.instructions for s in protocol.steps.values()]
    texts += [s.label for s in protocol.steps.values()]
    texts += [t.label for t in protocol.transitions]
    for text in texts:
        assert text is not None
        assert text.has("fy")
        foreign.update(t for t in (text.nl, text.en) if t != text.get("fy") and len(t) >= 4)
    found = sorted(f for f in foreign if f in card)
    assert found == []
    # and no key: every step and event is shown by its label
    assert not {"arrived", "waiting", "with_expert", "call_expert", "expert_overdue"} & set(
        re.findall(r"[a-z_]+", card)
    )


def test_the_diagram_and_the_cli_speak_frisian_too(capsys: pytest.CaptureFixture[str]) -> None:
    fy = lr.load_catalogue(FY)
    protocol = lr.load_protocol(MINIMAL_FY)
    mermaid = lr.to_mermaid(protocol, "fy", catalogue=fy)
    assert 'state "Wachtsje op de saakkundige<br>Balymeiwurker" as waiting' in mermaid
    assert (
        "waiting --> with_police : Saakkundige te let<br>klok, nei 1 oer 30 min · oerdracht"
        in mermaid
    )
    assert "elke stap útsein de einstappen" in mermaid
    dot = lr.to_dot(protocol, "fy", catalogue=fy)
    assert 'label="Saakkundige te let\\nklok, nei 1 oer 30 min · oerdracht"' in dot
    assert "minimal-fy 1 · Testdoarp" in dot
    assert main(["show", str(MINIMAL_FY), "--lang", "fy", "--catalogue", str(FY)]) == 0
    assert capsys.readouterr().out == lr.protocol_card(protocol, "fy", catalogue=fy) + "\n"


def test_a_text_without_the_language_falls_back_to_english() -> None:
    fy = lr.load_catalogue(FY)
    card = lr.protocol_card(lr.load_protocol(MINIMAL), "fy", catalogue=fy)
    assert "Stay with the child and call the expert." in card  # minimal.toml has no fy
    assert "Ferantwurdlik: Counter clerk" in card


def test_a_further_language_without_its_catalogue_is_refused() -> None:
    protocol = lr.load_protocol(MINIMAL_FY)
    with pytest.raises(lr.InvalidArgument) as caught:
        lr.protocol_card(protocol, "fy")
    assert caught.value.call == "protocol_card"
    assert caught.value.argument == "lang"
    assert "lastresort.load_catalogue" in str(caught.value)
    with pytest.raises(lr.InvalidArgument, match="a catalogue of language 'pl'"):
        lr.protocol_card(protocol, "pl", catalogue=lr.load_catalogue(FY))
    with pytest.raises(SystemExit) as usage:  # on the command line: a usage error
        main(["show", str(MINIMAL_FY), "--lang", "fy"])
    assert usage.value.code == 2


def test_the_shipped_catalogues_have_the_same_keys() -> None:
    nl, en = catalogue_for("nl"), catalogue_for("en")
    assert set(nl.messages) == set(en.messages)
    # and each passes the check a further language's file gets
    for lang in ("nl", "en"):
        path = PACKAGE / "render" / "messages" / f"{lang}.toml"
        assert lr.load_catalogue(path).messages == catalogue_for(lang).messages


def _broken_catalogue(tmp_path: Path, edit: Any) -> Path:
    lines = FY.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "fy.toml"
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    return path


def test_a_broken_catalogue_is_refused_naming_every_key(tmp_path: Path) -> None:
    def edit(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            if line.startswith("deadline = "):
                continue  # missing
            if line.startswith("steps = "):
                line = 'steps = "  "'  # empty
            if line.startswith("after_step = "):
                line = 'after_step = "{after} nei it begjin"'  # {step} lost
            if line.startswith("hours = "):
                line += '\nhourz = "x"'  # unknown
            out.append(line)
        return out

    path = _broken_catalogue(tmp_path, edit)
    with pytest.raises(lr.CatalogueError) as caught:
        lr.load_catalogue(path)
    assert caught.value.source == str(path)
    assert caught.value.category is lr.Category.INVALID
    assert sorted(caught.value.problems) == sorted(
        [
            "$.card.deadline: missing (every key of en.toml is needed)",
            "$.card.steps: expected a non-empty text",
            "$.card.after_step: must use {after}, {step}, as en.toml does",
            "$.card.hourz: unknown key (did you mean 'card.hours'?)",
        ]
    )


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("Frysk.toml", 'language = "x"', "'Frysk' is not a language tag"),
        ("fy.toml", "card = [", "invalid TOML"),
    ],
)
def test_an_unreadable_catalogue_is_refused(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(lr.CatalogueError) as caught:
        lr.load_catalogue(path)
    assert problem in caught.value.problems[0]
    with pytest.raises(lr.CatalogueError, match="cannot read file"):
        lr.load_catalogue(tmp_path / "missing" / "fy.toml")


# -- texts in further languages -----------------------------------------------------------


def test_texts_take_further_languages_and_keep_them() -> None:
    protocol = lr.load_protocol(MINIMAL_FY)
    assert protocol.title.get("fy") == "Minimale ôfspraak"
    assert protocol.title.languages() == ("nl", "en", "fy")
    assert protocol.steps["arrived"].label == lr.Text(
        "Kind aan de balie", "Child at the counter", more={"fy": "Bern oan de baly"}
    )
    dumped = lr.dump_protocol(protocol)
    assert dumped["protocol"]["title"] == {
        "nl": "Minimale afspraak",
        "en": "Minimal arrangement",
        "fy": "Minimale ôfspraak",
    }
    assert lr.load_protocol(dumped) == protocol
    assert lr.from_scxml(lr.to_scxml(protocol)) == protocol
    validator = jsonschema.Draft202012Validator(protocol_schema())
    assert list(validator.iter_errors(_data(MINIMAL_FY))) == []


@pytest.mark.parametrize(
    ("title", "problem"),
    [
        ({"nl": "a", "en": "b", "Frysk": "c"}, "$.protocol.title.Frysk: unknown key 'Frysk'"),
        ({"nl": "a", "en": "b", "fy": 3}, "$.protocol.title: expected a string for language 'fy'"),
        ({"nl": "a", "fy": "c"}, "$.protocol.title.en: required key missing"),
        ({"nl": "a", "en": "b", "fy": " "}, "$.protocol.title.fy: empty text"),
    ],
)
def test_a_bad_further_language_is_a_located_problem(title: dict[str, Any], problem: str) -> None:
    data = _data(MINIMAL_FY)
    data["protocol"]["title"] = title
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


# -- labels: sound when given, warned when missing -----------------------------------------


def test_an_empty_label_is_a_problem() -> None:
    data = _data(MINIMAL_FY)
    data["steps"]["waiting"]["label"]["nl"] = ""
    data["transitions"][1]["label"]["en"] = " "
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert caught.value.problems == [
        "$.steps.waiting.label.nl: empty text (texts shown to people need both nl and en)",
        "$.transitions[1].label.en: empty text (texts shown to people need both nl and en)",
    ]


def test_one_event_has_one_label_unless_guards_differ() -> None:
    data = _data(MINIMAL_FY)
    extra = copy.deepcopy(data["transitions"][1])  # expert_takes_over, another label
    extra["from"] = ["arrived"]
    extra["label"] = {"nl": "Overnemen", "en": "Take over"}
    data["transitions"].append(extra)
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert (
        "$.transitions[5].label: differs from the label of event 'expert_takes_over' at"
        " $.transitions[1] (an event has one label: give it once, or the same on each"
        " transition; only transitions with different guards may have labels of their own)"
    ) in caught.value.problems
    # with distinct guards each label says what sets it apart: allowed
    data["transitions"][1]["guard"] = "child_asks"
    data["transitions"][5]["guard"] = "child_consents"
    protocol = lr.load_protocol(data)
    assert protocol.transition_title(protocol.transitions[5], "en") == "Take over"
    assert protocol.event_title("expert_takes_over", "en") == "Expert takes over"
    card = lr.protocol_card(protocol, "en")
    assert "     - Take over (by Expert) → Child with the expert" in card
    assert "child_consents" not in card  # the label says it; no key shown


def test_missing_labels_are_warnings_and_the_card_shows_keys() -> None:
    protocol = lr.load_protocol(MINIMAL)  # loads: labels are not required
    warnings = label_warnings(protocol)
    assert len(warnings) == len(protocol.steps) + len({t.event for t in protocol.transitions})
    assert warnings[0] == (
        "$.steps.arrived: no label; cards show the key 'arrived'"
        ' (add label = { nl = "...", en = "..." })'
    )
    assert (
        "$.transitions[0]: event 'call_expert' has no label; cards show its name"
        ' (add label = { nl = "...", en = "..." } to one of its transitions)'
    ) in warnings
    assert "1. arrived" in lr.protocol_card(protocol, "en").splitlines()


def test_a_label_missing_a_language_others_have_is_a_warning() -> None:
    data = _data(MINIMAL_FY)
    del data["steps"]["closed"]["label"]["fy"]
    assert label_warnings(lr.load_protocol(data)) == [
        "$.steps.closed.label: no text in 'fy' (other labels have one; English is shown instead)"
    ]


def test_the_frozen_2014_fixture_loads_without_labels() -> None:
    # tests/protocols/taskforce-2014.toml is frozen: labels are optional, so it loads as
    # it always did, and check warns instead of failing
    protocol = lr.load_protocol(FROZEN)
    assert all(step.label is None for step in protocol.steps.values())
    assert label_warnings(protocol)


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lastresort.cli", "check", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_prints_warnings_without_changing_the_exit_code(tmp_path: Path) -> None:
    labelled = _check("--json", str(MINIMAL_FY))
    assert json.loads(labelled.stdout)["protocols"][0]["warnings"] == []
    # the same protocol without its labels: warnings, the same exit code
    data = MINIMAL_FY.read_text(encoding="utf-8")
    bare = tmp_path / "bare.toml"
    bare.write_text(re.sub(r"(?m)^label = .*\n", "", data), encoding="utf-8")
    result = _check(str(bare))
    assert result.returncode == labelled.returncode != 2, result.stderr
    # not located: `check FILE` and `check ID` say the same; the path names the place
    assert f"{bare}: warning: $.steps.arrived: no label" in result.stderr
    outcome = json.loads(_check("--json", str(bare)).stdout)["protocols"][0]
    assert len(outcome["warnings"]) == 5 + 5
    assert outcome["problems"] == []
