"""``lastresort simulate``: table, JSON, CSV, HTML report, progress, and bad input
that gets a clear message, exit 2 and no files. Also runs docs/simulation.md."""

from __future__ import annotations

import csv
import importlib
import json
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import lastresort as lr
from lastresort.cli import main
from lastresort.simulate import check_config, load_config

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "simulation.md"


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_has_one_column_per_protocol(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, taskforce: lr.Protocol
) -> None:
    other = tmp_path / "slow.json"
    data = lr.dump_protocol(taskforce)
    data["protocol"]["id"] = "slow"
    data["parties"]["expert"]["response"] = {"median": "50m", "p90": "1h30m"}
    other.write_text(json.dumps(data), encoding="utf-8")
    code, out, _ = simulate(capsys, "taskforce", str(other), "--encounters", "150", "--seed", "7")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "150 children per protocol, seed 7"
    assert lines[1].split() == ["taskforce", "slow"]
    p50 = next(line for line in lines if line.startswith("child with an expert: p50"))
    fast, slow = p50.split()[-2:]
    assert fast != slow
    assert any(line.startswith("breach of max_wait_for_expert (1h45m)") for line in lines)


def test_workers_do_not_change_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("taskforce", "--encounters", "400", "--seed", "3")
    code, one, _ = simulate(capsys, *args)
    code2, two, _ = simulate(capsys, *args, "--workers", "2")
    assert code == code2 == 0
    assert one == two


def test_json_and_csv_carry_the_same_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "kpi.csv"
    code, out, err = simulate(
        capsys, "taskforce", "--encounters", "120", "--seed", "1", "--json", "--csv", str(path)
    )
    assert code == 0
    data = json.loads(out)
    kpis = data["comparison"]["protocols"][0]
    assert kpis["protocol"] == "taskforce"
    assert kpis["encounters"] == 120
    assert data["config"]["chunk"] == 250
    assert data["config"]["arrivals"]["per_week"] == 1.0
    rows = {row[0]: row[1:] for row in csv.reader(path.open(encoding="utf-8"))}
    assert rows["metric"] == ["taskforce"]
    assert float(rows["with_expert.p90"][0]) == kpis["with_expert"]["p90"]
    assert int(rows["encounters"][0]) == 120
    assert f"wrote {path}" in err


def test_dutch_labels(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate(capsys, "taskforce", "--encounters", "50", "--lang", "nl")
    assert code == 0
    assert "kind bij deskundige: p50" in out
    assert "50 kinderen per protocol" in out


def test_progress_bar_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = simulate(capsys, "taskforce", "--encounters", "300", "--progress")
    assert code == 0
    assert "simulate [" in err
    assert "300/300" in err
    assert "simulate [" not in out
    code, _, err = simulate(capsys, "taskforce", "--encounters", "30")
    assert "simulate [" not in err  # not a terminal: no bar unless asked


def test_html_report_is_self_contained(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "out.html"
    code, _, err = simulate(
        capsys, "taskforce", "--encounters", "200", "--report", str(path), "--seed", "2"
    )
    assert code == 0
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3  # waiting times, deadlines, party load
    assert not re.search(r"<(script|link|img)\b", page)  # nothing fetched from elsewhere
    assert "taskforce" in page
    assert f"wrote {path}" in err


def test_report_without_matplotlib_says_what_to_install(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.import_module

    def no_matplotlib(name: str, package: str | None = None) -> ModuleType:
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_matplotlib)
    path = tmp_path / "out.html"
    table = tmp_path / "out.csv"
    code, out, err = simulate(
        capsys, "taskforce", "--encounters", "20", "--report", str(path), "--csv", str(table)
    )
    assert code == 2
    assert "pip install 'lastresort[report]'" in err
    assert out == ""  # nothing was simulated
    assert not path.exists()
    assert not table.exists()
    # everything else still works without it
    code, out, _ = simulate(capsys, "taskforce", "--encounters", "20", "--csv", str(table))
    assert code == 0
    assert table.exists()


def test_unknown_protocol_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    table = tmp_path / "out.csv"
    code, out, err = simulate(capsys, "taskforce", "amsterdamm", "--csv", str(table))
    assert code == 2
    assert "unknown protocol 'amsterdamm'; installed:" in err
    assert "Traceback" not in err
    assert out == ""
    assert not table.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--encounters", "0"], "argument --encounters: must be at least 1, got 0"),
        (["--encounters", "many"], "argument --encounters: expected a whole number, got 'many'"),
        (["--workers", "-2"], "argument --workers: must be at least 1, got -2"),
        (["--seed", "1.5"], "argument --seed: expected a whole number, got '1.5'"),
    ],
)
def test_bad_numbers_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "taskforce", *args])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert message in err
    assert out == ""


def test_bad_config_and_output_paths_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "sim.toml"
    bad.write_text("[arrivals]\nper_week = 0\n[children]\nacute = 'often'\n", encoding="utf-8")
    code, out, err = simulate(capsys, "taskforce", "--config", str(bad))
    assert code == 2
    assert "$.arrivals.per_week: expected a number above 0, got 0" in err
    assert "$.children.acute: expected a number, got str 'often'" in err
    assert out == ""
    code, _, err = simulate(capsys, "taskforce", "--csv", str(tmp_path / "no" / "x.csv"))
    assert code == 2
    assert "--csv: the directory" in err
    code, _, err = simulate(capsys, "taskforce", "--config", str(tmp_path / "missing.toml"))
    assert code == 2
    assert "cannot read file" in err


# -- docs/simulation.md is run, so it cannot rot -----------------------------------------


def test_docs_config_example_loads_and_fits_the_reference_protocol(
    taskforce: lr.Protocol,
) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/simulation.md has no TOML example"
    config = load_config(tomllib.loads(blocks[0]))

    assert check_config(config, [taskforce]) == []
    assert config.arrivals.per_week == 2.0


def test_docs_python_blocks_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    namespace: dict[str, Any] = {"__name__": "docs"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"simulation.md[block {i}]", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - the message names the block
            pytest.fail(f"docs/simulation.md block {i} failed: {exc!r}\n{block}")
    out = capsys.readouterr().out
    assert "with expert p90" in out
    assert "identical: True" in out


def test_docs_mention_every_config_key() -> None:
    import attrs

    from lastresort.simulate import Arrivals, Children, PartySettings, ProtocolSettings
    from lastresort.simulate import SimulationConfig as Config

    text = DOC.read_text(encoding="utf-8")
    for cls in (Config, Arrivals, Children, PartySettings, ProtocolSettings):
        for field in attrs.fields(cls):
            assert f"`{field.name}`" in text, f"{cls.__name__}.{field.name} is not documented"
