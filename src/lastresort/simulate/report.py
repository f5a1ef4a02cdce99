"""Showing a Monte Carlo comparison: a terminal table (one column per protocol),
JSON, CSV, and a self-contained HTML page with plots.

The plots need the optional ``report`` extra (matplotlib); everything else works
without it. Labels are in English or Dutch (``lang``).
"""

from __future__ import annotations

import csv
import html
import importlib
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from attrs import frozen

from ..errors import ReportUnavailable
from ..protocol.conversion import format_duration
from ..render.tables import text_table
from .config import converter, dump_config
from .kpi import Comparison, PartyLoad, ProtocolKPIs, Wait
from .montecarlo import MonteCarloResult

__all__ = [
    "ReportUnavailable",
    "Row",
    "comparison_rows",
    "comparison_table",
    "defaulted_note",
    "format_minutes",
    "html_report",
    "require_plotting",
    "to_csv",
    "to_json",
]

INSTALL_HINT = "pip install 'lastresort[report]'"


@frozen
class Row:
    """One line of the comparison: a metric and its value per protocol.

    :param kind: ``count``, ``minutes``, ``share``, ``number`` or ``text``
        (how the value is shown; CSV and JSON keep the raw value).
    """

    key: str
    en: str
    nl: str
    kind: str
    values: tuple[Any, ...]

    def label(self, lang: str) -> str:
        """The row's label in ``lang`` (``nl`` or ``en``)."""
        return self.nl if lang == "nl" else self.en


def format_minutes(minutes: float | None) -> str:
    """``45m``, ``2h05m``, ``3d04h`` (``—`` for no value)."""
    if minutes is None or math.isnan(minutes):
        return "—"
    if minutes < 10:
        return f"{minutes:.1f}m"
    whole = round(minutes)
    if whole < 60:
        return f"{whole}m"
    hours, rest = divmod(whole, 60)
    if hours < 48:
        return f"{hours}h{rest:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _show(row: Row, value: Any) -> str:
    if value is None:
        return "—"
    if row.kind == "minutes":
        return format_minutes(value)
    if row.kind == "share":
        return f"{100 * value:.1f}%"
    if row.kind == "number":
        return f"{value:.3f}"
    if row.kind == "count":
        return f"{value:,}".replace(",", " ")
    return str(value)


_WAITS: tuple[tuple[str, str, str, Callable[[ProtocolKPIs], Wait]], ...] = (
    ("with_expert", "child with an expert", "kind bij deskundige", lambda k: k.with_expert),
    ("mayor", "mayor contact", "contact burgemeester", lambda k: k.mayor),
    ("report", "report made (melding)", "melding gedaan", lambda k: k.report),
)


def _find(items: Iterable[Any], attr: str, key: str, field: str) -> Any:
    found = next((item for item in items if getattr(item, attr) == key), None)
    return None if found is None else getattr(found, field)


def _union(ks: Sequence[ProtocolKPIs], part: str, attr: str) -> list[str]:
    keys: list[str] = []
    for k in ks:
        keys.extend(getattr(i, attr) for i in getattr(k, part) if getattr(i, attr) not in keys)
    return keys


def comparison_rows(comparison: Comparison) -> list[Row]:
    """The comparison as rows (metrics) with one value per protocol, in order."""
    ks = comparison.protocols
    rows: list[Row] = []

    def add(key: str, en: str, nl: str, kind: str, values: Iterable[Any]) -> None:
        rows.append(Row(key, en, nl, kind, tuple(values)))

    add("version", "protocol version", "protocolversie", "text", (k.version for k in ks))
    add(
        "encounters",
        "children who got in",
        "kinderen binnengekomen",
        "count",
        (k.encounters for k in ks),
    )
    add(
        "arrived_closed",
        "came while the counter was closed",
        "kwamen bij gesloten balie",
        "count",
        (k.arrived_closed for k in ks),
    )
    add("acute", "in acute danger", "in acuut gevaar", "count", (k.acute for k in ks))
    for key, en, nl, get in _WAITS:
        waits = [get(k) for k in ks]
        add(f"{key}.share", f"{en}: reached", f"{nl}: bereikt", "share", (w.share for w in waits))
        for p in ("p50", "p90", "p99", "max"):
            add(f"{key}.{p}", f"{en}: {p}", f"{nl}: {p}", "minutes", (getattr(w, p) for w in waits))
    for step in _union(ks, "deadlines", "step"):
        add(
            f"deadline.{step}",
            f"deadline of '{step}' fired",
            f"termijn van '{step}' verstreken",
            "share",
            (_find(k.deadlines, "step", step, "share") for k in ks),
        )
    for name in _union(ks, "breaches", "requirement"):
        bounds = {b.bound for k in ks for b in k.breaches if b.requirement == name}
        shown = f" ({bounds.pop()})" if len(bounds) == 1 and None not in bounds else ""
        add(
            f"breach.{name}",
            f"breach of {name}{shown}",
            f"overschrijding {name}{shown}",
            "share",
            (_find(k.breaches, "requirement", name, "share") for k in ks),
        )
    for party in _union(ks, "parties", "party"):
        loads = [next((p for p in k.parties if p.party == party), None) for k in ks]

        def each(field: str, loads: list[PartyLoad | None] = loads) -> list[Any]:
            return [None if p is None else getattr(p, field) for p in loads]

        add(f"party.{party}.cases", f"{party}: cases", f"{party}: zaken", "count", each("cases"))
        add(
            f"party.{party}.mean_cases",
            f"{party}: cases held at once (mean)",
            f"{party}: zaken tegelijk (gemiddeld)",
            "number",
            each("mean_cases"),
        )
        if any(p is not None and p.capacity for p in loads):
            add(
                f"party.{party}.utilisation",
                f"{party}: utilisation",
                f"{party}: bezetting",
                "share",
                each("utilisation"),
            )
            add(
                f"party.{party}.queued",
                f"{party}: had to wait (busy)",
                f"{party}: moesten wachten (bezet)",
                "count",
                each("queued"),
            )
        if any(p is not None and p.no_shows for p in loads):
            add(
                f"party.{party}.no_shows",
                f"{party}: did not come",
                f"{party}: kwam niet",
                "count",
                each("no_shows"),
            )
    add("closed", "closed normally", "normaal afgesloten", "count", (k.closed for k in ks))
    add(
        "emergency",
        "ended with emergency services",
        "geëindigd bij hulpdiensten",
        "count",
        (k.emergency for k in ks),
    )
    add("escalated", "escalated", "geëscaleerd", "count", (k.escalated for k in ks))
    add(
        "open_at_end",
        "still open at the end",
        "nog open aan het eind",
        "count",
        (k.open_at_end for k in ks),
    )
    if any(k.refused for k in ks):
        add(
            "refused",
            "refused by a guard",
            "geweigerd door een guard",
            "count",
            (k.refused for k in ks),
        )
    if any(k.deferred for k in ks):
        add(
            "deferred",
            "deadlines deferred (a plugin failed)",
            "termijnen uitgesteld (plugin faalde)",
            "count",
            (k.deferred for k in ks),
        )
    add("events", "steps simulated", "gesimuleerde stappen", "count", (k.events for k in ks))
    return rows


def comparison_table(comparison: Comparison, lang: str = "en") -> str:
    """The comparison as a text table: one row per metric, one column per protocol."""
    rows = comparison_rows(comparison)
    head = ["", *(k.protocol for k in comparison.protocols)]
    body = [[row.label(lang), *(_show(row, v) for v in row.values)] for row in rows]
    head_line, *body_lines = text_table([head, *body], right=range(1, len(head)))

    title = (
        f"{comparison.encounters} kinderen per protocol, seed {comparison.seed}"
        if lang == "nl"
        else f"{comparison.encounters} children per protocol, seed {comparison.seed}"
    )
    rule = "-" * len(head_line)
    note = (
        "tijden vanaf aankomst; pNN over de kinderen die het bereikten"
        if lang == "nl"
        else "times from arrival; pNN over the children who got there"
    )
    return "\n".join([title, head_line, rule, *body_lines, rule, note])


def defaulted_note(result: MonteCarloResult) -> str:
    """One line naming the parties whose response times are ``default_response``'s
    (not their own), or saying that every party had its own model."""
    model = result.config.default_response
    if not result.defaulted or model is None:
        return "response times: every acting party has its own model"
    who = "; ".join(f"{pid}: {', '.join(keys)}" for pid, keys in result.defaulted.items())
    return (
        f"response times: default_response (median {format_duration(model.median)},"
        f" p90 {format_duration(model.p90)}) used for {who}"
    )


def to_json(result: MonteCarloResult) -> str:
    """The KPIs and the configuration as JSON (times in minutes, shares as fractions)."""
    data = {
        "comparison": converter.unstructure(result.comparison),
        "config": dump_config(result.config),
        "default_response_used_for": {pid: list(keys) for pid, keys in result.defaulted.items()},
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


def to_csv(comparison: Comparison, out: IO[str]) -> None:
    """Write the comparison as CSV: ``metric``, then one column per protocol
    (times in minutes, shares as fractions, empty for no value)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", *(k.protocol for k in comparison.protocols)])
    for row in comparison_rows(comparison):
        writer.writerow([row.key, *("" if v is None else v for v in row.values)])


# -- the HTML page ---------------------------------------------------------------------


def require_plotting() -> None:
    """Check that matplotlib can be imported.

    :raises ReportUnavailable: naming what to install.
    """
    try:
        importlib.import_module("matplotlib")
    except ImportError as exc:
        raise ReportUnavailable(install=INSTALL_HINT) from exc


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _plots(result: MonteCarloResult, lang: str) -> list[tuple[str, str]]:
    # imported by name: matplotlib is optional, and typed as Any here on purpose
    Figure = importlib.import_module("matplotlib.figure").Figure

    nl = lang == "nl"
    comparison = result.comparison
    ids = [k.protocol for k in comparison.protocols]
    out: list[tuple[str, str]] = []

    figure = Figure(figsize=(11, 3.6))
    axes = figure.subplots(1, 3, sharey=True)
    for ax, (key, en, dutch, _) in zip(axes, _WAITS, strict=True):
        for pid in ids:
            samples = result.samples[pid]
            minutes = sorted(
                s / 60.0 for s in getattr(samples, key if key != "with_expert" else "expert")
            )
            n = samples.encounters
            if minutes and n:
                ax.step(
                    minutes, [(i + 1) / n for i in range(len(minutes))], where="post", label=pid
                )
        ax.set_title(dutch if nl else en)
        ax.set_xscale("log")
        ax.set_xlabel("minuten na aankomst (log)" if nl else "minutes after arrival (log)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("aandeel kinderen" if nl else "share of children")
    axes[0].legend(loc="upper left", fontsize="small")
    out.append(("Wachttijden" if nl else "Waiting times", _svg(figure)))

    def bars(title: str, labels: list[str], values: dict[str, list[float]], unit: str) -> None:
        # horizontal, one group per label: long step names stay readable
        fig = Figure(figsize=(9, 1.2 + 0.11 * len(labels) * max(len(ids), 2)))
        ax = fig.subplots()
        height = 0.8 / max(len(ids), 1)
        for i, pid in enumerate(ids):
            ys = [j + i * height for j in range(len(labels))]
            ax.barh(ys, values[pid], height=height, label=pid)
        ax.set_yticks([j + 0.4 - height / 2 for j in range(len(labels))], labels)
        ax.invert_yaxis()
        ax.set_xlabel(unit)
        ax.legend(fontsize="small", loc="lower right")
        ax.grid(True, axis="x", alpha=0.3)
        out.append((title, _svg(fig)))

    steps = _union(comparison.protocols, "deadlines", "step")
    if steps:
        shares = {
            k.protocol: [
                100 * next((d.share for d in k.deadlines if d.step == s), 0.0) for s in steps
            ]
            for k in comparison.protocols
        }
        bars(
            "Verstreken termijnen" if nl else "Deadlines fired",
            steps,
            shares,
            "% van de kinderen" if nl else "% of children",
        )
    parties = _union(comparison.protocols, "parties", "party")
    load = {
        k.protocol: [
            next((p.mean_cases for p in k.parties if p.party == name), 0.0) for name in parties
        ]
        for k in comparison.protocols
    }
    bars(
        "Belasting per partij" if nl else "Party load",
        parties,
        load,
        "zaken tegelijk (gem.)" if nl else "cases held at once (mean)",
    )
    return out


def html_report(result: MonteCarloResult, lang: str = "en") -> str:
    """A self-contained HTML page (inline SVG plots, no external files) with the
    comparison table, the waiting-time distributions, deadline firings and party load.

    :raises ReportUnavailable: when matplotlib is not installed.
    """
    require_plotting()
    comparison = result.comparison
    rows = comparison_rows(comparison)
    nl = lang == "nl"
    title = "Vergelijking van afspraken" if nl else "Comparison of arrangements"
    head = "".join(f"<th>{html.escape(k.protocol)}</th>" for k in comparison.protocols)
    body = "\n".join(
        "<tr><td>"
        + html.escape(row.label(lang))
        + "</td>"
        + "".join(f"<td>{html.escape(_show(row, v))}</td>" for v in row.values)
        + "</tr>"
        for row in rows
    )
    figures = "\n".join(
        f"<h2>{html.escape(name)}</h2>\n<figure>{svg}</figure>"
        for name, svg in _plots(result, lang)
    )
    config = html.escape(json.dumps(dump_config(result.config), indent=2, ensure_ascii=False))
    return f"""<!DOCTYPE html>
<html lang="{"nl" if nl else "en"}">
<head>
<meta charset="utf-8">
<title>lastresort — {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
th, td {{ padding: 0.2rem 0.8rem; border-bottom: 1px solid #ddd; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
figure {{ margin: 0; }} svg {{ max-width: 100%; height: auto; }}
pre {{ background: #f6f6f6; padding: 1rem; overflow: auto; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>{comparison.encounters} {"kinderen per protocol" if nl else "children per protocol"},
seed {comparison.seed}, chunk {comparison.chunk}. {
        "Tijden vanaf aankomst; pNN over de kinderen die het bereikten."
        if nl
        else "Times from arrival; pNN over the children who got there."
    }</p>
<p>{html.escape(defaulted_note(result))}</p>
<table>
<thead><tr><th></th>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
{figures}
<details><summary>{"Configuratie" if nl else "Configuration"}</summary><pre>{config}</pre></details>
<p><small>lastresort simulate</small></p>
</body>
</html>
"""
