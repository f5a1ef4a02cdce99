"""``lastresort new-plugin`` and docs/writing-a-plugin.md.

The skeleton is a working plugin: it installs into this venv, its own tests pass, it is ruff-
and mypy-clean, and lastresort lists, shows and checks it. Every command output and snippet on
the page is what the code gives, and the page's example (a guard, its transition and its tests)
works when applied to the skeleton. Refusals exit 2 and write nothing; the templates ship in
the wheel.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.cli import main
from lastresort.cli import new_plugin as newplugin
from lastresort.cli.new_plugin import NewPluginError, PluginNames, plugin_names, render_plugin

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs/writing-a-plugin.md"
PY = sys.executable
CLI = "import sys; from lastresort.cli import main; sys.exit(main(sys.argv[1:]))"
BLOCK = re.compile(r"<!-- (?P<kind>[a-z-]+): (?P<arg>.+?) -->\n```[a-z]*\n(?P<body>.*?)```", re.S)


def blocks(kind: str) -> list[tuple[str, str]]:
    """The page's code blocks marked ``<!-- kind: arg -->``, as (arg, body)."""
    text = DOC.read_text(encoding="utf-8")
    return [(m["arg"], m["body"]) for m in BLOCK.finditer(text) if m["kind"] == kind]


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run a command; fail with its whole output unless it exits 0."""
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, (
        f"{shlex.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout


def files(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its content, to prove nothing was written."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def pip(*args: str) -> str:
    return run(PY, "-m", "pip", "--disable-pip-version-check", *args)


# -- the page's outputs and fragments ------------------------------------------------------------


def test_page_shows_what_new_plugin_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ((command, expected),) = [(a, b) for a, b in blocks("output") if "new-plugin" in a]
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(command)[1:]) == 0
    assert capsys.readouterr().out == expected
    lines = expected.splitlines()
    listed = [line.strip() for line in lines[1 : lines.index("next:")]]
    assert sorted(files(tmp_path / "utrecht")) == listed


def test_page_fragments_are_the_skeletons_own() -> None:
    skeleton = render_plugin("utrecht", "Utrecht")["src/lastresort_utrecht/utrecht.toml"]
    fragments = blocks("from")
    assert len(fragments) >= 5
    for where, body in fragments:
        assert where == "utrecht.toml"
        assert body in skeleton, body


def test_page_shows_the_load_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ((command, expected),) = [(a, b) for a, b in blocks("output") if "broken.toml" in a]
    skeleton = render_plugin("utrecht", "Utrecht")["src/lastresort_utrecht/utrecht.toml"]
    # the two mistakes the page describes
    broken = skeleton.replace('to = "with_expert"', 'to = "with_expret"').replace(
        'after = "45m", event = "expert_overdue"', 'after = "45 minutes", event = "expert_overdue"'
    )
    assert broken.count("with_expret") == 1
    assert broken.count('after = "45 minutes"') == 1
    (tmp_path / "broken.toml").write_text(broken, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(command)[1:]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == expected


# -- the skeleton, with the page's example applied, installed and run ------------------------------


#: The page's plugin under a name of its own: this test installs it into the shared venv, so
#: two runs at the same time (or an installed "utrecht") never collide.
INSTALLED = plugin_names(f"utrecht-{secrets.token_hex(3)}")


def as_installed(text: str) -> str:
    """A snippet of the page, with the page's plugin renamed to :data:`INSTALLED`."""
    return (
        text.replace("lastresort_utrecht", INSTALLED.package)
        .replace("utrecht.toml", f"{INSTALLED.module}.toml")
        .replace('"utrecht"', f'"{INSTALLED.name}"')
    )


@pytest.fixture
def utrecht(tmp_path: Path) -> Iterator[Path]:
    """The skeleton the page writes, with the page's guard example applied, installed into
    this venv (a regular, not an editable, install: the wheel must carry the TOML file) and
    uninstalled afterwards."""
    plugin = newplugin.write_plugin(INSTALLED.name, tmp_path, "Utrecht")
    pristine = files(plugin)
    run(PY, "-m", "ruff", "check", "--config", "pyproject.toml", str(plugin))
    run(PY, "-m", "ruff", "format", "--check", "--config", "pyproject.toml", str(plugin))
    for where, body in blocks("append"):
        with (plugin / as_installed(where)).open("a", encoding="utf-8") as out:
            out.write(("\n\n" if where.endswith(".py") else "\n") + as_installed(body))
    for where, body in blocks("write"):
        (plugin / where).write_text(as_installed(body), encoding="utf-8")
    assert files(plugin) != pristine
    try:
        pip("install", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(plugin))
        yield plugin
    finally:
        pip("uninstall", "-y", "-q", INSTALLED.dist)


@pytest.mark.slow
def test_skeleton_with_the_pages_example_installs_and_passes_its_tests(utrecht: Path) -> None:
    assert len(blocks("append")) == 2
    assert len(blocks("write")) == 1
    # the page's snippets keep the skeleton clean
    run(PY, "-m", "ruff", "check", "--config", "pyproject.toml", str(utrecht))
    run(PY, "-m", "ruff", "format", "--check", "--config", "pyproject.toml", str(utrecht))
    env = {**os.environ, "MYPYPATH": str(utrecht / "src")}
    cache = str(utrecht.parent / ".mypy_cache")
    package = f"src/{INSTALLED.package}"
    run(PY, "-m", "mypy", "--strict", "--cache-dir", cache, package, "tests", cwd=utrecht, env=env)
    # its own tests, from its own directory, against the installed distribution
    out = run(PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=utrecht)
    # 11, and 2 of delivery (its scope, and the recording fixture)
    assert re.search(r"\b13 passed\b", out), out
    # lastresort finds it through the entry point
    listed = run(PY, "-c", CLI, "protocols", cwd=utrecht)
    row = rf"^{INSTALLED.name}\s+0\.1\s+encounter\s+Utrecht$"
    assert re.search(row, listed, re.M), listed
    card = run(PY, "-c", CLI, "show", INSTALLED.name, "--lang", "nl", cwd=utrecht)
    assert "Baliemedewerker" in card
    assert "mayor_spoke_by_video" in card
    report = run(PY, "-c", CLI, "check", INSTALLED.name, cwd=utrecht)
    ((_, last_line),) = blocks("output-line")
    assert last_line in report


def test_uninstalled_after_the_run() -> None:
    names = "import importlib.metadata as m; print([d.metadata['Name'] for d in m.distributions()])"
    assert INSTALLED.dist not in run(PY, "-c", names)


# -- refusals: exit 2, a message that says why, nothing written ------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Utrecht", "invalid plugin name 'Utrecht'"),
        ("den haag", "invalid plugin name 'den haag'"),
        ("den_haag", "invalid plugin name 'den_haag'"),
        ("den--haag", "invalid plugin name"),
        ("-utrecht", "invalid plugin name"),
        ("utrecht-", "invalid plugin name"),
        ("1utrecht", "invalid plugin name"),
        ("utrecht/../x", "invalid plugin name"),
        ("súdwest", "invalid plugin name"),
        ("", "invalid plugin name ''"),
        ("a" * 41, "longer than 40 characters"),
        ("lastresort-utrecht", "give the municipality's name only"),
        ("lastresort", "give the municipality's name only"),
        ("taskforce", "reference protocol"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, why: str
) -> None:
    assert main(["new-plugin", "--dir", str(tmp_path), "--", name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lastresort: ")
    assert why in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("municipality", "why"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("Den\nHaag", "contains '\\n'"),
        ('Den "Haag"', "contains '\"'"),
        ("Den\\Haag", "contains '\\\\'"),
        ("x" * 81, "longer than 80 characters"),
    ],
)
def test_bad_municipalities_are_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], municipality: str, why: str
) -> None:
    args = ["new-plugin", "zuidstad", "--dir", str(tmp_path), "--municipality", municipality]
    assert main(args) == 2
    assert why in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_is_refused_and_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "zuidstad").mkdir()
    (tmp_path / "zuidstad" / "notes.txt").write_text("mine", encoding="utf-8")
    (tmp_path / "noordstad").write_text("a file", encoding="utf-8")
    before = files(tmp_path)
    assert main(["new-plugin", "zuidstad", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["new-plugin", "noordstad", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert files(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noordstad", "zuidstad"]


def test_a_file_as_dir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plugins").write_text("not a directory", encoding="utf-8")
    before = files(tmp_path)
    assert main(["new-plugin", "zuidstad", "--dir", str(tmp_path / "plugins")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert files(tmp_path) == before


def test_an_installed_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = newplugin.importlib.metadata.distribution

    def distribution(name: str) -> object:
        if name == "lastresort-zuidstad":
            return object()
        return real(name)

    monkeypatch.setattr(newplugin.importlib.metadata, "distribution", distribution)
    assert main(["new-plugin", "zuidstad", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'lastresort-zuidstad' is already installed" in err
    assert "pip uninstall lastresort-zuidstad" in err
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_writing_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []
    real = Path.write_text

    def write_text(self: Path, data: str, encoding: str | None = None) -> int:
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(self)
        return real(self, data, encoding=encoding)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(NewPluginError, match="No space left on device") as refused:
        newplugin.write_plugin("zuidstad", tmp_path / "plugins")
    assert "nothing was written" in str(refused.value)
    assert len(written) == 3
    assert list((tmp_path / "plugins").iterdir()) == []


# -- names, texts and the wheel --------------------------------------------------------------------


def test_names_derive_from_the_protocol_id() -> None:
    assert plugin_names("den-haag") == PluginNames(
        "den-haag", "lastresort-den-haag", "lastresort_den_haag", "den_haag", "den_haag"
    )
    files_ = render_plugin("den-haag")
    assert sorted(files_) == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/lastresort_den_haag/__init__.py",
        "src/lastresort_den_haag/den_haag.toml",
        "src/lastresort_den_haag/py.typed",
        "tests/test_den_haag.py",
    ]
    project = tomllib.loads(files_["pyproject.toml"])["project"]
    assert project["name"] == "lastresort-den-haag"
    assert project["entry-points"]["lastresort"] == {"den_haag": "lastresort_den_haag"}
    assert project["dependencies"] == [f"lastresort>={lr.__version__}"]
    protocol = lr.load_protocol(tomllib.loads(files_["src/lastresort_den_haag/den_haag.toml"]))
    assert (protocol.id, protocol.municipality) == ("den-haag", "Den Haag")


@pytest.mark.parametrize("municipality", ["'s-Hertogenbosch", "Súdwest-Fryslân", "Bergen (NH)"])
def test_municipality_names_as_people_write_them(municipality: str) -> None:
    files_ = render_plugin("gemeente", municipality)
    protocol = lr.load_protocol(tomllib.loads(files_["src/lastresort_gemeente/gemeente.toml"]))
    assert protocol.municipality == municipality
    assert protocol.title.nl == f"Burgemeester als last resort: {municipality}"
    assert municipality in files_["README.md"]
    assert tomllib.loads(files_["pyproject.toml"])["project"]["description"].endswith(
        f"of {municipality} as a lastresort plugin"
    )


def test_help_lists_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["new-plugin", "--help"])
    assert done.value.code == 0
    assert "--municipality" in capsys.readouterr().out


def test_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    pip(
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        str(tmp_path),
        str(ROOT),
    )
    (wheel,) = tmp_path.glob("lastresort-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in newplugin._FILES:
        assert f"lastresort/cli/template/{template}" in names
