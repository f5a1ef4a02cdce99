"""One strict check (issue 14): ``lastresort check FILE`` and ``lastresort check ID`` give
the same problems, suggestions, locations and exit code for the same protocol file; the
ID is an installed plugin's protocol loaded from that file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.cli import check as check_module
from lastresort.cli.app import main
from lastresort.engine.plugins import make_plugin_manager

from . import plugin_kit

TASKFORCE = Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml"
SOURCE = TASKFORCE.read_text(encoding="utf-8")


def _edit(old: str, new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        assert text.count(old) >= 1, old
        return text.replace(old, new, 1)

    return change


#: name -> (how the reference file is broken, a problem the output must name, exit code)
BROKEN: dict[str, tuple[Callable[[str], str], str, int]] = {
    # a privacy violation: on main `check FILE` passed it with exit 0
    "forbidden-fact": (
        _edit("[facts]\n", '[facts]\nnaam = "bool"\n'),
        ":325:1: $.facts.naam: may not be declared: it reads as 'naam'",
        2,
    ),
    # a simulation model that cannot be: on main `check FILE` exited 0
    "p90-below-median": (
        _edit('median = "30m", p90 = "50m"', 'median = "30m", p90 = "5m"'),
        ":37:1: $.parties.expert.response: p90 (5m) is below the median (30m)",
        2,
    ),
    "typo-in-to": (
        _edit('to = "with_expert"', 'to = "with_expet"'),
        ":199:1: $.transitions[2].to: unknown step 'with_expet' (did you mean 'with_expert'?)",
        2,
    ),
    "unknown-key": (
        _edit('tags = ["child_with_expert"]', 'tag = ["child_with_expert"]'),
        ":101:1: $.steps.with_expert.tag: unknown key 'tag' (did you mean 'tags'?)",
        2,
    ),
    "bad-duration": (
        _edit('median = "1m"', 'median = "1 minute"'),
        ":31:14: $.parties.counter.response.median: invalid duration '1 minute'",
        2,
    ),
    "wrong-type": (
        _edit("no_show = 0.05", 'no_show = "5%"'),
        ":38:1: $.parties.expert.no_show: expected a number, got str '5%'",
        2,
    ),
    "unknown-party": (
        _edit('by = ["expert"]', 'by = ["expret"]'),
        ":200:7: $.transitions[2].by[0]: unknown party 'expret' (did you mean 'expert'?)",
        2,
    ),
    # sound in structure, unsafe: a clerk may close the encounter (a property fails)
    "clerk-closes": (
        _edit('to = "closed"\nby = ["expert"]', 'to = "closed"\nby = ["expert", "counter"]'),
        "✗ clerk-never-closes",
        1,
    ),
}


#: A vendor's plugin serving one protocol file, as the new-plugin skeleton does.
_PLUGIN = """
import lastresort as lr

@lr.hookimpl
def lastresort_protocols():
    return [lr.load_protocol({path!r})]
"""


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Path], None]:
    def installed(path: Path) -> None:
        # installed for real: an entry point in a directory on sys.path
        where = tmp_path / "site"
        plugin_kit.install(where, "vendor_plugin", _PLUGIN.format(path=str(path)))
        plugin_kit.activate(monkeypatch, where)

    return installed


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", list(BROKEN))
def test_check_file_and_check_id_give_the_same_result(
    name: str,
    tmp_path: Path,
    install: Callable[[Path], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    change, expected, code = BROKEN[name]
    pid = f"vendor-{name}"
    path = tmp_path / f"{pid}.toml"
    path.write_text(change(SOURCE).replace('id = "taskforce"', f'id = "{pid}"'), "utf-8")
    install(path)
    by_file = _run(capsys, str(path))
    by_id = _run(capsys, pid)
    assert by_file[0] == by_id[0] == code, (by_file, by_id)
    # the same text but for how the target was named (the file's lines name the file)
    assert by_file[1] == by_id[1]
    assert by_file[2].replace(f"{path}: unusable", f"{pid}: unusable") == by_id[2]
    assert expected in by_file[1] + by_file[2]
    if code == 2:
        assert f"\n  - {path}{expected}" in by_file[2]
        assert "Traceback" not in by_file[2]
    # and --json says the same: problems, exit code
    json_file = json.loads(_run(capsys, "--json", str(path))[1])
    json_id = json.loads(_run(capsys, "--json", pid)[1])
    assert json_file["exit_code"] == json_id["exit_code"] == code
    (one,), (other,) = json_file["protocols"], json_id["protocols"]
    assert one.pop("target") == str(path)
    assert other.pop("target") == pid
    assert one == other


def test_a_typo_in_to_gives_the_real_problem_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(BROKEN["typo-in-to"][0](SOURCE), "utf-8")
    code, _, err = _run(capsys, str(path))
    assert code == 2
    # on main: this line and nine "no transition reaches this step" lines
    assert err.count("\n  - ") == 1
    assert "no transition reaches" not in err


def test_a_structural_problem_beside_a_sound_graph_still_shows_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "naam.toml"
    path.write_text(BROKEN["forbidden-fact"][0](SOURCE), "utf-8")
    code, out, err = _run(capsys, str(path))
    assert code == 2
    assert "result: all 9 properties hold" in out
    assert "but 1 structural problem (listed apart): the protocol is unusable" in out
    assert "naam.toml: unusable input (1 problem;" in err


def test_a_json_file_is_located_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data["parties"]["expert"]["response"]["p90"] = "5m"
    path = tmp_path / "p.json"
    text = json.dumps(data, indent=2)
    path.write_text(text, "utf-8")
    code, _, err = _run(capsys, str(path))
    assert code == 2
    lines = text.splitlines()
    (line,) = [i for i, t in enumerate(lines, 1) if '"expert": {' in t and i > 3][:1]
    response = next(i for i in range(line, len(lines) + 1) if '"response"' in lines[i - 1])
    col = lines[response - 1].index('"response"') + 1
    assert f"{path}:{response}:{col}: $.parties.expert.response: p90 (5m) is below" in err


def test_a_plugin_validation_problem_in_a_file_is_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Rule:
        @lr.hookimpl
        def lastresort_validate_protocol(self, protocol: lr.Protocol) -> list[str]:
            return ["$.steps.closed.tags: a municipal rule wants 'archived' here"]

    monkeypatch.setattr(
        check_module, "make_plugin_manager", lambda **_: make_plugin_manager([Rule()])
    )
    path = tmp_path / "p.toml"
    path.write_text(SOURCE, "utf-8")
    code, _, err = _run(capsys, str(path))
    assert code == 2  # on main: printed after the report, exit 0
    lines = SOURCE.splitlines()
    header = lines.index("[steps.closed]")
    line = next(i for i in range(header, len(lines)) if lines[i].startswith("tags =")) + 1
    assert f"  - {path}:{line}:1: $.steps.closed.tags: a municipal rule wants" in err


def test_check_without_targets_checks_a_broken_installed_file_the_same_way(
    tmp_path: Path, install: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    change, expected, _ = BROKEN["forbidden-fact"]
    path = tmp_path / "vendor.toml"
    path.write_text(change(SOURCE).replace('id = "taskforce"', 'id = "vendor"'), "utf-8")
    install(path)
    code, out, err = _run(capsys)
    assert code == 2
    assert "vendor: unusable input (1 problem;" in err
    assert f"  - {path}{expected}" in err
    # the broken file is checked as `check vendor` checks it; since plugin isolation,
    # `check` also checks every other installed protocol beside it (their reports too)
    by_id = _run(capsys, "vendor")
    assert by_id[0] == 2
    assert by_id[2] in err
    assert by_id[1] in out
    assert "taskforce" in out


def test_an_id_beside_a_broken_installed_file_is_checked_and_the_broken_one_fails(
    tmp_path: Path, install: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    change, expected, _ = BROKEN["typo-in-to"]
    path = tmp_path / "vendor.toml"
    path.write_text(change(SOURCE).replace('id = "taskforce"', 'id = "vendor"'), "utf-8")
    install(path)
    # plugin isolation: the broken plugin is left out, the other protocols are checked
    code, out, err = _run(capsys, "taskforce")
    assert code == 0, err
    assert "properties hold" in out
    # and the broken one still fails, located, never a traceback
    code, _, err = _run(capsys, "vendor")
    assert code == 2
    assert f"  - {path}{expected}" in err
    assert "Traceback" not in err
