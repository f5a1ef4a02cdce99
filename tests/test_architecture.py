"""The package layout (docs/architecture.md): imports point one way, the public face is
pinned, no module is shadowed by a function, the CLI imports a subcommand only when it
runs, and no package changes another package's converter."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

import lastresort

SRC = Path(lastresort.__file__).parent

#: the ground floor: top-level modules every package may use
GROUND = {"errors", "clock", "events", "outbox", "privacy", "arguments"}
#: package (or ground floor) -> the packages it may import besides itself and the ground
#: floor; a package missing here may import anything but the CLI
MAY_IMPORT: dict[str, set[str]] = {
    "ground": set(),  # and lastresort.protocol.model, the values events and notifications name
    "protocol": set(),
    "verifier": {"protocol"},
    "store": {"protocol"},
    "engine": {"protocol", "verifier", "store"},
    "render": {"protocol", "verifier"},
    "scenario": {"protocol", "verifier", "store", "engine", "render"},
    "simulate": {"protocol", "verifier", "store", "engine", "render", "scenario"},
}
#: what nobody imports: the command line and the HTTP service (which may import
#: anything but the command line)
NOBODY_IMPORTS = {"cli", "service"}


def _part(module: str) -> str | None:
    """The package (or ``ground``) a ``lastresort.*`` module belongs to; ``None`` for the
    face (``lastresort``, ``lastresort.testing``)."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] in GROUND:
        return "ground"
    if parts[1] == "testing":
        return None
    return parts[1]


def _imports(module: str, tree: ast.Module, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every ``lastresort`` module ``tree`` imports (at any depth, also under
    ``TYPE_CHECKING``), with its line."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "lastresort":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "lastresort":
                continue
            if node.module is None or target == "lastresort":  # from . import x: x may be a module
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target


def forbidden_imports(modules: Mapping[str, tuple[ast.Module, bool]]) -> list[str]:
    """``"<module>:<line> imports <target>: <why>"`` for every import against the layout.

    :param modules: module name -> (its parsed source, whether it is a package).
    """
    found = []
    for module, (tree, is_package) in sorted(modules.items()):
        mine = _part(module)
        for line, target in _imports(module, tree, is_package):
            theirs = _part(target)
            why = None
            if theirs in NOBODY_IMPORTS and mine not in NOBODY_IMPORTS:
                why = f"nothing imports {theirs}"
            elif mine == "service" and theirs == "cli":
                why = "service may import anything but cli"
            elif mine == "ground" and target == "lastresort.protocol.model":
                continue
            elif mine in MAY_IMPORT and theirs not in {mine, "ground", None}:
                if theirs not in MAY_IMPORT[mine]:
                    allowed = ", ".join(sorted(MAY_IMPORT[mine] | {"ground floor"}))
                    why = f"{mine} may import only {allowed}"
            elif mine in MAY_IMPORT and theirs is None and target != "lastresort":
                why = f"{mine} may not import the face ({target})"
            if why:
                found.append(f"{module}:{line} imports {target}: {why}")
    return found


def _sources() -> dict[str, tuple[ast.Module, bool]]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ("lastresort", *path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        out[name] = (ast.parse(path.read_text(encoding="utf-8"), str(path)), is_package)
    return out


def test_every_import_points_the_way_the_layout_says() -> None:
    sources = _sources()
    assert "lastresort.store.sqlite" in sources
    assert "lastresort.cli.app" in sources
    assert forbidden_imports(sources) == []


@pytest.mark.parametrize(
    ("module", "is_package", "source", "expected"),
    [
        (
            "lastresort.store.fake",
            False,
            "from ..engine.engine import Engine",
            "lastresort.store.fake:1 imports lastresort.engine.engine:"
            " store may import only ground floor, protocol",
        ),
        (
            "lastresort.verifier.fake",
            False,
            "def f():\n    from lastresort.cli import main",
            "lastresort.verifier.fake:2 imports lastresort.cli: nothing imports cli",
        ),
        (
            "lastresort.protocol",
            True,
            "from ..store import sqlite",
            "lastresort.protocol:1 imports lastresort.store: protocol may import only ground floor",
        ),
        (
            "lastresort.events",
            False,
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engine import Engine",
            "lastresort.events:3 imports lastresort.engine: ground may import only ground floor",
        ),
        (
            "lastresort.outbox",
            False,
            "from .protocol.files import load_protocol",
            "lastresort.outbox:1 imports lastresort.protocol.files:"
            " ground may import only ground floor",
        ),
        (
            "lastresort.service.fake",
            False,
            "from ..cli.serve import register",
            "lastresort.service.fake:1 imports lastresort.cli.serve:"
            " service may import anything but cli",
        ),
        (
            "lastresort.engine.fake",
            False,
            "from ..service import create_app",
            "lastresort.engine.fake:1 imports lastresort.service: nothing imports service",
        ),
        (
            "lastresort.render.fake",
            False,
            "from ..testing import make_engine",
            "lastresort.render.fake:1 imports lastresort.testing:"
            " render may not import the face (lastresort.testing)",
        ),
    ],
)
def test_a_forbidden_import_is_reported_with_where_and_why(
    module: str, is_package: bool, source: str, expected: str
) -> None:
    assert forbidden_imports({module: (ast.parse(source), is_package)}) == [expected]


def test_allowed_imports_are_not_reported() -> None:
    fakes = {
        "lastresort.events": (ast.parse("from .protocol.model import Actor"), False),
        "lastresort.engine.fake": (ast.parse("from ..store.base import Store"), False),
        "lastresort.cli.fake": (ast.parse("from ..simulate import monte_carlo"), False),
        "lastresort.cli.fake2": (ast.parse("from ..service import create_app"), False),
        "lastresort.service.fake": (ast.parse("from ..engine.engine import Engine"), False),
        "lastresort.testing": (ast.parse("from .engine.engine import Engine"), False),
    }
    assert forbidden_imports(fakes) == []


# -- the public face ------------------------------------------------------------------


PINNED_ALL = [
    "Actor",
    "ActorRefused",
    "Backoff",
    "Bound",
    "BrokenPlugin",
    "Catalogue",
    "CatalogueError",
    "Category",
    "ChannelRefused",
    "Clock",
    "ConcurrentUpdate",
    "Deadline",
    "DeadlineCleared",
    "DeadlineDate",
    "DeadlineDeferred",
    "DeadlineGone",
    "DeadlineMissed",
    "DeadlineScheduled",
    "DeliveryDeferred",
    "DeliveryRefused",
    "Encounter",
    "EncounterClosed",
    "EncounterOpened",
    "Engine",
    "Event",
    "Fact",
    "FactKind",
    "FactsRefused",
    "GuardRefused",
    "InvalidArgument",
    "LastResortError",
    "MayorPromise",
    "MemoryStore",
    "NotPermitted",
    "Notification",
    "NotificationDeadLettered",
    "NotificationDelivered",
    "NotificationQueued",
    "ObserverFailed",
    "Party",
    "PartyKind",
    "PathStep",
    "PendingDeadline",
    "PluginLoadError",
    "PostgresStore",
    "ProblemsError",
    "Property",
    "PropertyResult",
    "Protocol",
    "ProtocolError",
    "ProtocolKind",
    "Refusal",
    "Report",
    "Requirements",
    "ResponsibilityTransferred",
    "SQLiteStore",
    "ScenarioError",
    "Step",
    "StepEntered",
    "StepKind",
    "Store",
    "StoreError",
    "SystemClock",
    "Text",
    "Transition",
    "TransitionNotAllowed",
    "UnknownEncounter",
    "UnknownProtocol",
    "Violation",
    "VirtualClock",
    "__version__",
    "dump_protocol",
    "from_json",
    "from_scxml",
    "hookimpl",
    "load_catalogue",
    "load_packaged_protocol",
    "load_protocol",
    "protocol_card",
    "to_dot",
    "to_json",
    "to_mermaid",
    "to_scxml",
    "validate",
    "verify",
]  # fmt: skip


def test_the_public_names_are_pinned() -> None:
    assert lastresort.__all__ == PINNED_ALL
    for name in PINNED_ALL:
        assert hasattr(lastresort, name), name


def _packages() -> Iterator[ModuleType]:
    yield lastresort
    for info in pkgutil.walk_packages(lastresort.__path__, "lastresort."):
        if info.ispkg:
            yield importlib.import_module(info.name)


def test_no_module_is_shadowed_by_a_function_or_class() -> None:
    checked = 0
    for package in _packages():
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            attribute = getattr(package, info.name, module)
            assert attribute is module, (
                f"{package.__name__}.{info.name} is {attribute!r}, not the module {module.__name__}"
            )
            checked += 1
    assert checked > 40
    assert callable(lastresort.verify)
    assert callable(lastresort.validate)
    # the verifier's rules are reachable under a module name that stays a module
    from lastresort.verifier import verification

    assert verification.RULES


def test_the_shadowing_check_can_fail() -> None:
    package = importlib.import_module("lastresort.verifier")
    module = importlib.import_module("lastresort.verifier.verification")
    saved = package.verification  # type: ignore[attr-defined]
    package.verification = lastresort.verify  # type: ignore[attr-defined]
    try:
        with pytest.raises(AssertionError, match=r"lastresort\.verifier\.verification is"):
            test_no_module_is_shadowed_by_a_function_or_class()
    finally:
        package.verification = saved  # type: ignore[attr-defined]
    assert package.verification is module  # type: ignore[attr-defined]


# -- the CLI imports a subcommand only when it runs -----------------------------------


def _modules_after(code: str) -> set[str]:
    probe = (
        "import sys\n"
        f"{code}\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('lastresort')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


HEAVY = {
    "lastresort.cli.check",
    "lastresort.cli.docs",
    "lastresort.cli.simulate",
    "lastresort.cli.scenario",
    "lastresort.cli.store",
    "lastresort.cli.new_plugin",
    "lastresort.cli.demo",
    "lastresort.simulate",
    "lastresort.scenario",
    "lastresort.render.page",
}


def test_the_library_never_imports_the_service_or_its_web_framework() -> None:
    # `import lastresort` and running an engine must work without the service extra
    loaded = _modules_after(
        "import lastresort as lr\nfrom lastresort.scenario.demo import run_demo\nrun_demo()"
    )
    assert {m for m in loaded if m.split(".")[0] in {"starlette", "uvicorn", "httpx"}} == set()
    assert {m for m in loaded if m.startswith("lastresort.service")} == set()


def test_help_imports_no_subcommand() -> None:
    loaded = _modules_after(
        "from lastresort.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])"
    )
    assert "lastresort.cli.app" in loaded
    assert loaded & HEAVY == set()


def test_a_subcommand_imports_its_own_module_only() -> None:
    loaded = _modules_after(
        "from lastresort.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['show', 'taskforce'])"
    )
    assert "lastresort.cli.show" in loaded
    assert loaded & HEAVY == set()


def test_every_command_registers_the_help_the_table_shows() -> None:
    from lastresort.cli.app import COMMANDS, build_parser

    full = build_parser(list(COMMANDS))
    [sub] = [a for a in full._actions if a.dest == "command"]
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    assert helps == {name: text for name, (_, text) in COMMANDS.items()}
    assert list(sub.choices) == list(COMMANDS)  # same order as the table


# -- converters -----------------------------------------------------------------------


def test_each_package_has_its_own_converter_and_none_changes_the_protocol_one() -> None:
    from lastresort.protocol import conversion
    from lastresort.scenario import files as scenario_files
    from lastresort.simulate import config as simulate_config
    from lastresort.store import row_codecs
    from lastresort.verifier import report as verifier_report
    from lastresort.verifier.bounds import Bound

    converters = [
        conversion.converter,
        row_codecs.converter,
        verifier_report.converter,
        simulate_config.converter,
        scenario_files.converter,
    ]
    assert len({id(c) for c in converters}) == len(converters)
    bound = Bound(
        goal="child_with_expert",
        what="time to an expert",
        requirement_name="expert_within",
        requirement=None,
        worst=timedelta(minutes=45),
        reachable=True,
    )
    event = lastresort.EncounterClosed(
        encounter_id="e1",
        at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        actor=lastresort.Actor("counter"),
        step="closed",
    )
    config = simulate_config.SimulationConfig()
    fresh = conversion.make_converter()  # what the protocol converter is with nobody's hooks
    for value in (bound, event, config):
        assert conversion.converter.unstructure(value) == fresh.unstructure(value), value
    # while each package's own converter has its hooks
    assert verifier_report.converter.unstructure(bound)["ends_total"] == 0  # every field
    assert "ends_total" not in conversion.converter.unstructure(bound)  # defaults left out
    assert row_codecs.dump_event(event)["kind"] == "EncounterClosed"
    assert "kind" not in conversion.converter.unstructure(event)
