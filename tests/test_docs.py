"""Python blocks in the docs are run, in order, per page, so the docs cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: page -> lines its blocks must print
PAGES = {
    "docs/embedding.md": ["['call_expert', 'acute_danger']", "who may: expert", "['pager:expert']"],
}


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks((ROOT / page).read_text(encoding="utf-8"))
    assert blocks, f"{page} has no python blocks"
    namespace: dict[str, object] = {"__name__": "docs"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page}[block {i}]", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - the failure names the block
            pytest.fail(f"{page} block {i} failed: {exc!r}\n{block}")
    out = capsys.readouterr().out
    for expected in PAGES[page]:
        assert expected in out
