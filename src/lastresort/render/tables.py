"""Plain-text tables: cells padded to their column's width, two spaces apart.

One function for every text table lastresort prints (a protocol's timeline, the
installed protocols, the simulator's comparison), so they line up the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..errors import InvalidArgument

__all__ = ["text_table"]


def text_table(
    rows: Sequence[Sequence[str]], *, right: Collection[int] = (), rule: bool = False
) -> list[str]:
    """The lines of a table whose first row is its head; trailing spaces removed.

    :param rows: the head, then the body; every row has the same number of cells.
    :param right: the columns (by index) aligned right; the others align left.
    :param rule: put a line of dashes under the head, one run per column.
    :raises InvalidArgument: for no rows, or rows of different lengths.
    """
    if not rows:
        raise InvalidArgument(call="text_table", argument="rows", problem="at least the head")
    if len({len(row) for row in rows}) != 1:
        lengths = sorted({len(row) for row in rows})
        raise InvalidArgument(
            call="text_table",
            argument="rows",
            problem=f"rows of one length, not of lengths {lengths}",
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    lines = [line(row) for row in rows]
    if rule:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return lines
