"""Every example runs, and the README shows the minimal embedding as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Traceback" not in done.stderr


def test_embed_minimal_shows_escalation_and_handover() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embed_minimal.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = done.stdout
    assert "deadline missed: expert_overdue" in out
    assert "now in 'with_expert', responsible: expert" in out
    assert "-> notify expert: call_expert" in out


def test_readme_starts_with_the_two_commands_and_shows_the_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert first_block.strip().splitlines() == ["make demo", "make test"]
    example = (ROOT / "examples" / "embed_minimal.py").read_text(encoding="utf-8")
    body = example.split('"""', 2)[2].strip()
    assert body in readme
