"""Installing a plugin for real, in a temporary directory: a module and a
``*.dist-info`` with its ``lastresort`` entry point, found by ``importlib.metadata``
through ``sys.path`` (in this process) or ``PYTHONPATH`` (in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: a protocol file that loads: the reference protocol with another id
GOOD_TOML = (ROOT / "src/lastresort/protocol/builtin/taskforce.toml").read_text(encoding="utf-8")


def protocol_text(pid: str) -> str:
    """The reference protocol's file with id ``pid``."""
    return GOOD_TOML.replace('id = "taskforce"', f'id = "{pid}"', 1)


def install(where: Path, name: str, source: str, files: dict[str, str] | None = None) -> None:
    """Write package ``name`` (``source`` as its ``__init__``, ``files`` beside it) and a
    distribution ``name`` whose ``lastresort`` entry point ``name`` is that package."""
    package = where / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    for file, text in (files or {}).items():
        (package / file).write_text(text, encoding="utf-8")
    info = where / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[lastresort]\n{name} = {name}\n")


def activate(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    """Make the plugins installed in ``where`` visible to this process (a module of the
    same name imported by an earlier test is forgotten, so this one is imported)."""
    for package in where.iterdir():
        if package.is_dir() and not package.name.endswith(".dist-info"):
            sys.modules.pop(package.name, None)
    monkeypatch.syspath_prepend(str(where))


def cli(where: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``lastresort ARGS`` in a fresh interpreter that sees the plugins in ``where``."""
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [sys.executable, "-m", "lastresort.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


#: a plugin module whose protocol file has a problem (an unknown step in ``to``)
BROKEN_FILE = """
import lastresort as lr

@lr.hookimpl
def lastresort_protocols():
    return [lr.load_packaged_protocol(__name__, "broken.toml")]
"""

#: a plugin providing one good protocol ``good-city`` from its file
GOOD = """
import lastresort as lr

@lr.hookimpl
def lastresort_protocols():
    return [lr.load_packaged_protocol(__name__, "good.toml")]
"""

#: an installed pager for ``taskforce`` and ``good-city`` that appends each
#: notification it is handed to the file named by ``LASTRESORT_TEST_PAGER_LOG`` (so a
#: test sees, even from a subprocess, whether anyone was paged)
PAGER = """
import os
import lastresort as lr

@lr.hookimpl
def lastresort_delivers_for():
    return ["taskforce", "good-city"]

@lr.hookimpl
def lastresort_deliver(notification):
    with open(os.environ["LASTRESORT_TEST_PAGER_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{notification.protocol} {notification.party} {notification.event}\\n")
    return "pager"
"""
