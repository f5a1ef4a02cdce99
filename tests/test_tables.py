"""``lastresort.render.tables.text_table``: the one text-table layout of the CLI."""

from __future__ import annotations

import pytest

import lastresort as lr
from lastresort.render.tables import text_table


def test_columns_are_padded_two_spaces_apart_without_trailing_spaces() -> None:
    lines = text_table([("id", "kind"), ("taskforce", "encounter"), ("x", "")])
    assert lines == ["id         kind", "taskforce  encounter", "x"]


def test_right_aligned_columns_and_a_rule_under_the_head() -> None:
    lines = text_table([("", "a", "bb"), ("wait", "1", "12345")], right={1, 2}, rule=True)
    assert lines == ["      a     bb", "----  -  -----", "wait  1  12345"]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [([], "at least the head"), ([("a", "b"), ("c",)], r"lengths \[1, 2\]")],
)
def test_bad_rows_are_refused_naming_the_argument(
    rows: list[tuple[str, ...]], problem: str
) -> None:
    with pytest.raises(lr.InvalidArgument, match=rf"text_table: rows must be .*{problem}"):
        text_table(rows)
