"""docs/cli.md against the real ``lastresort`` command: every command and option is
documented, every row of the exit-code table is run and exits as documented (a ``2``
prints a message, never a traceback, and writes nothing), only the commands that find
problems exit ``1``, and a closed standard output is 141, not 1."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lastresort.cli import main
from lastresort.cli.app import COMMANDS, EXIT_BROKEN_PIPE, build_parser

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = ROOT / "docs" / "cli.md"
STORE = ROOT / "tests" / "fixtures" / "store-v3.db"
PASSING_SCENARIO = ROOT / "examples" / "scenarios" / "amsterdam-acute-danger.scenario.toml"
#: the commands that find problems (a property, a scenario, an audit trail): exit 1
FINDERS = {"check", "scenario", "audit"}
#: what the table's codes may be
CODES = {0, 1, 2}


def section(name: str) -> str:
    """The text of docs/cli.md's section of ``lastresort NAME``."""
    text = CLI_MD.read_text(encoding="utf-8")
    match = re.search(rf"^## `lastresort {re.escape(name)}`\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/cli.md has no section '## `lastresort {name}`'"
    return match.group(1)


def rows() -> list[tuple[str, int, str]]:
    """``(command line, exit code, when)`` of every row of the exit-code table."""
    found = []
    for line in CLI_MD.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `(lastresort [^`]+)` \| (\d+) \| (.+) \|$", line)
        if match:
            found.append((match[1], int(match[2]), match[3]))
    return found


def options(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string and positional name of a parser and its subparsers."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += options(sub)
            continue
        found += action.option_strings or [str(action.metavar or action.dest)]
    return found


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser(list(COMMANDS))
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_a_section_naming_each_of_its_options() -> None:
    for name, parser in subparsers().items():
        text = section(name)
        # the words of the section's code spans: `--db PATH`, `add --party PARTY`, `ID`/`FILE`
        words = {w for span in re.findall(r"`([^`]+)`", text) for w in span.split()}
        for option in options(parser):
            # a positional's metavar ID|FILE is written `ID`/`FILE`
            wanted = option.split("|")
            assert all(w in words for w in wanted), (
                f"docs/cli.md: `lastresort {name}` does not document {option}"
            )


def test_the_table_has_a_row_for_every_outcome_of_every_command() -> None:
    table = rows()
    assert len(table) >= 2 * len(COMMANDS)
    codes: dict[str, set[int]] = {}
    for line, code, _ in table:
        command = shlex.split(line)[1]
        assert command in COMMANDS, f"docs/cli.md's table runs an unknown command: {line}"
        assert code in CODES, f"{line}: exit code {code} is not one of {sorted(CODES)}"
        codes.setdefault(command, set()).add(code)
    for command in COMMANDS:
        expected = {0, 1, 2} if command in FINDERS else {0, 2}
        assert codes.get(command) == expected, (
            f"docs/cli.md: `lastresort {command}` has rows for exit codes "
            f"{sorted(codes.get(command, set()))}, expected {sorted(expected)}"
        )


def _tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with a hash of its bytes."""
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """The directory ``$TMP`` of the table: a failing scenario and a store file in it."""
    shutil.copyfile(STORE, tmp_path / "store.db")
    text = PASSING_SCENARIO.read_text(encoding="utf-8")
    wrong = text.replace('responsible = "police"', 'responsible = "mayor"', 1)
    assert wrong != text
    (tmp_path / "failing.scenario.toml").write_text(wrong, encoding="utf-8")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(("line", "code", "when"), rows(), ids=[r[0][11:60] for r in rows()])
def test_documented_exit_code(
    line: str,
    code: int,
    when: str,
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(ROOT)
    argv = [arg.replace("$TMP", str(tmp)) for arg in shlex.split(line)[1:]]
    before = _tree(tmp)
    try:
        actual = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        actual = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert actual == code, f"`{line}` ({when}) exited {actual}, docs/cli.md says {code}\n{err}"
    assert "Traceback" not in out + err
    if argv[:2] == ["audit", "verify"]:
        # it never writes (its sidecar files -wal/-shm aside): the store's bytes stay
        assert _tree(tmp)["store.db"] == before["store.db"], f"`{line}` changed the store"
    if code == 2:
        assert err.strip(), f"`{line}` exits 2 without saying why"
        assert _tree(tmp) == before, f"`{line}` was refused but wrote into $TMP"
    elif "prints nothing" not in when:
        assert out.strip(), f"`{line}` printed nothing"


def test_the_exit_code_rules_are_stated_once_for_all_commands() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    for code in ("`0`", "`1`", "`2`", f"`{EXIT_BROKEN_PIPE}`"):
        assert f"| {code} |" in text


@pytest.mark.slow
def test_a_closed_standard_output_exits_141_not_1(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # no reader at all: the first write fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "lastresort.cli", "schema"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write)
    assert proc.returncode == EXIT_BROKEN_PIPE, proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_refuses_an_unknown_protocol_before_creating_its_store(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert main(["demo", "--protocol", "no-such-protocol", "--db", str(db)]) == 2
    assert not db.exists()


def test_purge_dry_run_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    shutil.copyfile(STORE, db)
    before = db.read_bytes()
    assert main(["purge", str(db), "--older-than", "20y", "--dry-run"]) == 0
    assert db.read_bytes() == before
