"""The `lastresort` command's foundation: `protocols` and `show`, and a bad file
giving its problems and exit code 2, never a traceback (issue 2, item 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.cli import main
from lastresort.render.card import protocol_card

FOUNDATIONS = Path(__file__).parent / "protocols" / "foundations"
FIVE_MISTAKES = FOUNDATIONS / "five_mistakes.toml"
MINIMAL = FOUNDATIONS / "minimal.toml"
ENTRY_POINT = Path(sys.executable).parent / "lastresort"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the command in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "lastresort.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def five_mistakes_message(path: Path) -> str:
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(path)
    return f"lastresort: {caught.value}\n"


def test_show_a_file_with_five_mistakes_prints_them_and_exits_2() -> None:
    result = run("show", FIVE_MISTAKES)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        f"lastresort: 5 problems in {FIVE_MISTAKES}:\n"
        f"  - {FIVE_MISTAKES}:19:1: $.parties.expert.no_show: expected a number, got str '5%'\n"
        f"  - {FIVE_MISTAKES}:33:14: $.steps.waiting.deadline.after: invalid duration"
        " '45 minutes'; use e.g. '45m', '2h', '10d', '1h30m' or ISO 8601 'PT45M'\n"
        f"  - {FIVE_MISTAKES}:64:1: $.transitions[1].notfy: unknown key 'notfy'"
        " (did you mean 'notify'?)\n"
        f"  - {FIVE_MISTAKES}:56:7: $.transitions[0].by[0]: unknown party 'clerk'\n"
        f"  - {FIVE_MISTAKES}:76:1: $.transitions[3].to: unknown step 'closd'"
        " (did you mean 'closed'?)\n"
    )
    assert result.stderr == five_mistakes_message(FIVE_MISTAKES)


@pytest.mark.skipif(not ENTRY_POINT.exists(), reason="the console script is not installed")
def test_the_installed_command_does_the_same() -> None:
    result = subprocess.run(
        [str(ENTRY_POINT), "show", str(FIVE_MISTAKES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == five_mistakes_message(FIVE_MISTAKES)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (
            "bad.json",
            "{",
            "$: invalid JSON: Expecting property name enclosed in double quotes:"
            " line 1 column 2 (char 1)",
        ),
        ("list.json", "[]", "$: expected a table (mapping), got list"),
        (
            "bad.toml",
            "[protocol]\nid = \n",
            "$: invalid TOML: Invalid value (at line 2, column 6)",
        ),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "$: nested too deeply to read"),
    ],
)
def test_unreadable_files_exit_2_with_the_problem(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = run("show", path)
    assert result.returncode == 2
    assert result.stdout == ""
    # a file that cannot be parsed has no parts to point at; one that parses is located
    where = f"{path}:1:1: " if name == "list.json" else ""
    assert result.stderr == f"lastresort: 1 problem in {path}:\n  - {where}{problem}\n"


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    result = run("show", path)
    assert result.returncode == 2
    assert result.stderr == (
        f"lastresort: 1 problem in {path}:\n"
        f"  - $: cannot read file: [Errno 2] No such file or directory: '{path}'\n"
    )


def test_an_unknown_protocol_id_exits_2() -> None:
    result = run("show", "amsterdma")
    assert result.returncode == 2
    assert result.stderr.startswith("lastresort: 1 problem:\n  - $: unknown protocol 'amsterdma';")
    assert "taskforce" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["show"], ["show", "taskforce", "--lang", "de"], ["shwo"]])
def test_bad_arguments_exit_2_with_usage(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: lastresort")
    assert "Traceback" not in result.stderr


def test_in_process_main_returns_2_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = FIVE_MISTAKES.read_bytes()
    assert main(["show", str(FIVE_MISTAKES)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == five_mistakes_message(FIVE_MISTAKES)
    assert FIVE_MISTAKES.read_bytes() == before


def test_protocols_lists_id_version_and_municipality() -> None:
    result = run("protocols")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "version", "kind", "municipality"]
    taskforce = next(line for line in lines if line.startswith("taskforce "))
    assert taskforce.split()[:3] == ["taskforce", "2026-12-04", "encounter"]
    assert taskforce.endswith("Any municipality (reference arrangement)")


def test_show_a_file_prints_its_card(tmp_path: Path) -> None:
    result = run("show", MINIMAL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == protocol_card(lr.load_protocol(MINIMAL), "en") + "\n"
    # a JSON file of the same protocol shows the same card
    path = tmp_path / "minimal.json"
    path.write_text(json.dumps(lr.dump_protocol(lr.load_protocol(MINIMAL))), encoding="utf-8")
    assert run("show", path).stdout == result.stdout


def test_card_shows_steps_in_order_who_is_responsible_and_deadlines() -> None:
    card = protocol_card(lr.load_protocol(MINIMAL), "en").splitlines()
    numbered = [line for line in card if line[:1].isdigit()]
    assert numbered == [
        "1. arrived",
        "2. waiting",
        "3. with_expert  (marks: child with the expert)",
        "4. closed [final step]",
        "5. with_police [final step]  (marks: emergency)",
    ]
    # minimal.toml has no labels: the card shows keys where labels are missing, and
    # otherwise only words of the card's language (party names, not keys)
    waiting = card.index("2. waiting")
    assert card[waiting + 1 : waiting + 4] == [
        "   Responsible: Counter clerk",
        "   Stay with the child until the expert arrives.",
        "   Deadline: 45 min → expert_overdue",
    ]
    assert "     - expert_overdue (by the clock) → with_police; informs Police" in card
    assert card[card.index("4. closed [final step]") + 1] == "   Responsible: nobody (closed)"
    acute = "Acute danger: call 112. Possible from every step → with_police (Police)."
    assert card[card.index(acute) :] == [
        acute,
        "",
        "Commitments:",
        "  - a report or a safe arrangement before closing",
    ]


@pytest.mark.parametrize(("lang", "clerk"), [("nl", "Baliemedewerker"), ("en", "Counter clerk")])
def test_show_taskforce_in_both_languages(lang: str, clerk: str) -> None:
    result = run("show", "taskforce", "--lang", lang)
    assert result.returncode == 0, result.stderr
    protocol = lr.load_protocol(
        Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml"
    )
    assert result.stdout.splitlines()[0] == protocol.title.get(lang)
    word = "Verantwoordelijk" if lang == "nl" else "Responsible"
    assert f"   {word}: {clerk}\n" in result.stdout
    for step in protocol.steps.values():
        assert step.instructions.get(lang) in result.stdout
    # steps by their labels, numbered in the protocol's order
    numbered = [line for line in result.stdout.splitlines() if line[:1].isdigit()]
    assert [line.split(". ", 1)[1].split(" [")[0].split("  (")[0] for line in numbered] == [
        step.title(lang) for step in protocol.steps.values()
    ]


def test_card_lists_every_commitment() -> None:
    data = lr.dump_protocol(lr.load_protocol(MINIMAL))
    data["requirements"] = {
        "mayor_contact": True,
        "max_wait_for_expert": "1h",
        "max_wait_for_mayor": "1d",
        "report_before_close": False,
    }
    card = protocol_card(lr.load_protocol(data), "nl").splitlines()
    assert card[card.index("Afspraken:") :] == [
        "Afspraken:",
        "  - de burgemeester spreekt het kind vóór de afsluiting",
        "  - langste wachttijd op een deskundige: 1 u",
        "  - langste wachttijd op de burgemeester: 1 d",
    ]
