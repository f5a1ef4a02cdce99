"""``lastresort schema``: print the JSON Schema (draft 2020-12) of the protocol file format.

The schema is the file shipped in the package (``lastresort/protocol/schema/
protocol.schema.json``), generated from the model; editors read it through a
``#:schema`` line or their settings (docs/protocol-format.md).
"""

from __future__ import annotations

import argparse
import sys

from ..protocol.json_schema import shipped_schema_text

__all__ = ["register"]


def _schema(args: argparse.Namespace) -> int:
    sys.stdout.write(shipped_schema_text())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` subcommand."""
    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of the protocol file format",
        description="Print the JSON Schema (draft 2020-12) of protocol files, for editors"
        " (taplo / Even Better TOML) and CI validators.",
    )
    p.set_defaults(run=_schema)
