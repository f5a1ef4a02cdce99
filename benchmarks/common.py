"""What benchmarks/run.py and benchmarks/profiles.py share: the engine every
lastresort measurement runs on, the facts its encounters declare, and the table
printer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import bench_engine

import lastresort as lr

START = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
#: Facts every benchmark encounter declares (what a counter clerk would record).
FACTS: dict[str, str | bool] = {"age_band": "12-15", "disclosure": True}


def engine(store: lr.Store | None = None) -> lr.Engine:
    return lr.Engine(
        protocols=[lr.load_protocol(bench_engine.PROTOCOL_FILE)],
        store=store if store is not None else lr.MemoryStore(),
        clock=lr.VirtualClock(START),
        entry_points=False,
    )


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``header``: first column left, the others right-aligned."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
