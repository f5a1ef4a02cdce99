"""``lastresort check [ID|FILE ...] [--json] [--max-examples N]``: run the verifier
(the report's text is :mod:`lastresort.verifier.text`).

Exit codes: 0 every property of every protocol holds; 1 a property fails;
2 unusable input (an unknown id, an unreadable or malformed file, any structural or
validation problem, a graph that cannot be built); the problems are printed, each
located ``file:line:col`` when read from a file, never a traceback.

``check FILE`` and ``check ID`` take one code path: a file, and an installed protocol
whose file failed to load, are loaded as strictly as a plugin loads them, checked by
the plugins' validation hooks and verified; the same file gives the same problems and
exit code either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from ..engine.installed import load_installed
from ..engine.loading import BrokenPlugin
from ..engine.plugins import Hooks, make_plugin_manager
from ..errors import LastResortError, ProtocolError
from ..protocol.files import load_protocol, locate_problems, read_document
from ..protocol.labels import label_warnings
from ..protocol.model import Protocol
from ..verifier.text import render_report
from ..verifier.verification import MAX_EXAMPLES, Report, verify
from ._common import Known, is_file_target, unknown_protocol

__all__ = ["register", "run_check"]


@frozen
class Outcome:
    """What ``check`` found for one target: its structural problems and, when its graph
    could be built, the verifier's report.

    :param target: the id or file as given (or the id of an installed protocol).
    :param report: the verifier's report, when the graph could be built.
    :param problems: every structural problem (loading, validation, plugins'
        ``lastresort_validate_protocol``), each located ``file:line:col: $.path: ...``
        when it was read from a file. Any problem makes the exit code 2: an Engine
        refuses the protocol until it is fixed.
    :param warnings: what does not stop the protocol from running but should be fixed
        (steps and events without a label, see :func:`~lastresort.protocol.labels.label_warnings`);
        they never change the exit code.
    """

    target: str
    report: Report | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def code(self) -> int:
        """2 a structural problem (or no report), 1 a property fails, 0 all hold."""
        if self.report is None or self.problems:
            return 2
        return 0 if self.report.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        if self.report is None:
            return {
                "target": self.target,
                "usable": False,
                "problems": list(self.problems),
                "warnings": list(self.warnings),
            }
        return {
            "target": self.target,
            "usable": not self.problems,
            **self.report.to_dict(),
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


def _verified(
    target: str,
    protocol: Protocol,
    problems: list[str],
    hooks: Hooks,
    max_examples: int,
) -> Outcome:
    problems = list(dict.fromkeys(problems))
    # not located, so that `check FILE` and `check ID` say the same (their $.paths place them)
    warnings = label_warnings(protocol)
    try:
        report = verify(protocol, hooks.protocol_properties(protocol), max_examples=max_examples)
    except ProtocolError as exc:
        # a graph that cannot be built: validation has named why (with suggestions)
        return Outcome(target, problems=tuple(problems or exc.lines), warnings=tuple(warnings))
    return Outcome(target, report, tuple(problems), tuple(warnings))


def _checked_file(target: str, path: str, hooks: Hooks, max_examples: int) -> Outcome:
    """The one check of a protocol file, given as a file or as an installed protocol
    whose file failed to load: loaded as strictly as a plugin loads it."""
    try:
        protocol = load_protocol(path)
        problems: list[str] = []
    except ProtocolError as exc:
        problems = exc.lines
        try:  # the structure may still be sound: verify it to show counterexamples too
            protocol = load_protocol(path, check=False)
        except ProtocolError:
            return Outcome(target, problems=tuple(problems))
    problems += locate_problems(path, hooks.validate_protocol(protocol))
    return _verified(target, protocol, problems, hooks, max_examples)


def _checked(target: str, protocol: Protocol, hooks: Hooks, max_examples: int) -> Outcome:
    """An installed protocol that loaded: only plugins' validation can still object."""
    return _verified(target, protocol, hooks.validate_protocol(protocol), hooks, max_examples)


def _broken_file(exc: ProtocolError) -> tuple[str, str] | None:
    """The id and file of the installed protocol whose file ``exc`` is about, if any."""
    if exc.source is None or exc.located is None:
        return None  # not a file's problems (two plugins giving one id, say)
    try:
        data, _ = read_document(exc.source)
    except ProtocolError:
        return None
    header = data.get("protocol") if isinstance(data, Mapping) else None
    pid = header.get("id") if isinstance(header, Mapping) else None
    return (pid if isinstance(pid, str) else exc.source), exc.source


def _broken(plugin: BrokenPlugin, hooks: Hooks, max_examples: int) -> Outcome:
    """A plugin left out as broken: its protocol file checked as ``check FILE`` does
    when that is what failed, otherwise its problems (exit 2 either way)."""
    error = plugin.error
    found = _broken_file(error) if isinstance(error, ProtocolError) else None
    if found is not None:
        return _checked_file(*found, hooks, max_examples)
    target = plugin.protocols[0] if len(plugin.protocols) == 1 else f"plugin {plugin.name}"
    return Outcome(target, problems=(f"plugin {plugin.name!r} ({plugin.stage}):", *plugin.problems))


def run_check(targets: Sequence[str], max_examples: int = MAX_EXAMPLES) -> list[Outcome]:
    """Check each target (an installed protocol id, or a ``.toml``/``.json`` file);
    with no targets, every installed protocol and every installed plugin left out as
    broken (each a failure, exit 2). A file and an installed protocol go through the
    same checks: the strict load, plugins' validation, the verifier. A target that a
    broken plugin provides fails with that plugin's problems.

    :param max_examples: the most violations shown per property (all are counted).

    :raises ProtocolError: for a problem of the core's own protocol.
    :raises PluginLoadError: when the core's plugin cannot be registered.
    """
    if all(is_file_target(target) for target in targets) and targets:
        # files only: the installed protocols are not needed, their plugins' hooks are
        # (an installed plugin that cannot even be registered is left out)
        hooks = Hooks(make_plugin_manager(broken=[]))
        return [_checked_file(target, target, hooks, max_examples) for target in targets]
    loaded = load_installed()
    hooks = loaded.hooks
    if not targets:
        out = [_checked(pid, p, hooks, max_examples) for pid, p in sorted(loaded.protocols.items())]
        return out + [_broken(plugin, hooks, max_examples) for plugin in loaded.broken]
    out = []
    for target in targets:
        if is_file_target(target):
            out.append(_checked_file(target, target, hooks, max_examples))
            continue
        if target in loaded.protocols:
            out.append(_checked(target, loaded.protocols[target], hooks, max_examples))
            continue
        broken = [
            plugin
            for plugin in loaded.broken
            if target in plugin.protocols
            or (
                isinstance(plugin.error, ProtocolError)
                and (found := _broken_file(plugin.error)) is not None
                and found[0] == target
            )
        ]
        if broken:
            out.extend(_broken(plugin, hooks, max_examples) for plugin in broken)
        else:
            out.append(Outcome(target, problems=(unknown_protocol(target, Known(loaded)),)))
    return out


def _command(args: argparse.Namespace) -> int:
    try:
        outcomes = run_check(args.targets, args.max_examples)
    except LastResortError as exc:
        problems = exc.lines if isinstance(exc, ProtocolError) else [str(exc)]
        if args.json:
            print(json.dumps({"ok": False, "exit_code": 2, "problems": problems}, indent=2))
        else:
            print(f"lastresort check: {exc}", file=sys.stderr)
        return 2
    code = max((o.code for o in outcomes), default=0)
    if args.json:
        data = {
            "ok": code == 0,
            "exit_code": code,
            "protocols": [o.to_dict() for o in outcomes],
        }
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return code
    printed = False
    for outcome in outcomes:
        for warning in outcome.warnings:
            print(f"{outcome.target}: warning: {warning}", file=sys.stderr)
        if outcome.problems:
            count = len(outcome.problems)
            print(
                f"{outcome.target}: unusable input ({count} problem{'s' * (count != 1)};"
                " an Engine refuses this protocol until they are fixed):",
                file=sys.stderr,
            )
            for problem in outcome.problems:
                print(f"  - {problem}", file=sys.stderr)
        if outcome.report is not None:
            print(("\n" if printed else "") + render_report(outcome.report))
            printed = True
            if outcome.problems:
                count = len(outcome.problems)
                print(
                    f"  but {count} structural problem{'s' * (count != 1)} (listed apart):"
                    " the protocol is unusable until they are fixed"
                )
    return code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` subcommand."""
    p = sub.add_parser(
        "check",
        help="verify protocols' safety properties and time bounds",
        description="Verify safety properties with shortest counterexamples, and worst-case"
        " waiting times. Exit 0: all hold; 1: a property fails; 2: unusable input.",
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="ID|FILE",
        help="installed protocol ids or .toml/.json files (default: every installed protocol)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON report for machines")
    p.add_argument(
        "--max-examples",
        type=_at_least_one,
        default=MAX_EXAMPLES,
        metavar="N",
        help=f"show at most N violations per property; all are counted (default {MAX_EXAMPLES})",
    )
    p.set_defaults(run=_command)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value
