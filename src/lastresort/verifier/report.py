"""The verifier's report: one :class:`PropertyResult` per property, and the bounds.

:mod:`lastresort.verifier.verification` builds a :class:`Report`; its JSON shape goes
through the report's own converter (built here from the protocol converter), its text
is :mod:`lastresort.verifier.text`.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen
from cattrs import Converter
from cattrs.gen import make_dict_unstructure_fn

from ..protocol.conversion import make_converter as make_protocol_converter
from ..protocol.model import ProtocolKind
from .bounds import Bound, PathStep, render_path
from .text import render_report

__all__ = ["PropertyResult", "Report"]


@frozen
class PropertyResult:
    """The verdict on one property.

    :param name: the property's stable name.
    :param ok: it holds (or does not apply).
    :param message: why it fails, or a short confirmation.
    :param counterexample: the shortest event path from the initial step that
        shows the failure (empty when it holds or is not about a path).
    :param applicable: ``False`` when the property does not apply to this protocol.
    :param rule: the rule checked.
    :param further: the messages of further violations of the same property, at
        most ``max_examples - 1`` of them (see :func:`~lastresort.verify`).
    :param violations: how many violations were found in all (0 when it holds);
        ``shown`` of them are in the result.
    """

    name: str
    ok: bool
    message: str
    counterexample: tuple[PathStep, ...] = ()
    applicable: bool = True
    rule: str = ""
    further: tuple[str, ...] = ()
    violations: int = 0

    @property
    def shown(self) -> int:
        """How many of the ``violations`` the result shows (the first in ``message``
        with its counterexample, the others in ``further``)."""
        return 0 if self.ok else 1 + len(self.further)


@frozen
class Report:
    """What :func:`verify` found for one protocol.

    :param protocol: the protocol's id.
    :param version: its version.
    :param kind: ``encounter`` or ``order``.
    :param results: one result per property, core properties first.
    :param bounds: the worst-case measures (waits for an encounter; the total
        time in force for an order).
    """

    protocol: str
    version: str
    kind: ProtocolKind
    results: tuple[PropertyResult, ...]
    bounds: tuple[Bound, ...]

    @property
    def ok(self) -> bool:
        """Whether every property holds."""
        return all(r.ok for r in self.results)

    def result(self, name: str) -> PropertyResult:
        """The result of property ``name``. :raises KeyError: for an unknown name."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no property {name!r}; known: {', '.join(r.name for r in self.results)}")

    @property
    def failed(self) -> tuple[PropertyResult, ...]:
        """The results that fail."""
        return tuple(r for r in self.results if not r.ok)

    def problems(self) -> list[str]:
        """One readable line per failing property, with its counterexample path."""
        return [
            f"{r.name}: {r.message}"
            + (f"; path: {render_path(r.counterexample)}" if r.counterexample else "")
            for r in self.failed
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data (through the report's converter); durations as ``1h45m``."""
        return {
            "protocol": self.protocol,
            "version": self.version,
            "kind": self.kind.value,
            "ok": self.ok,
            "results": [
                {**converter.unstructure(r, PropertyResult), "shown": r.shown} for r in self.results
            ],
            "bounds": [
                {**converter.unstructure(b, Bound), "unbounded": b.unbounded, "holds": b.holds}
                for b in self.bounds
            ],
        }

    def to_text(self) -> str:
        """The readable report: each property ✓/✗/–, counterexamples, the bounds."""
        return render_report(self)


def make_converter() -> Converter:
    """The report's converter: the protocol converter, and every field of a path step,
    result and bound written (none left out at its default)."""
    conv = make_protocol_converter()
    for cls in (PathStep, PropertyResult, Bound):
        conv.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=False)
        )
    return conv


converter: Converter = make_converter()
