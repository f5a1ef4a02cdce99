"""lastresort uses ``transitions`` only through its public API (issue 13): no name of
``transitions`` that starts with ``_`` is read, called, overridden or imported anywhere
in src/, so that an embedding application is free to pick any ``transitions>=0.9``."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import transitions

import lastresort as lr

SRC = Path(lr.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def transitions_private_names() -> set[str]:
    """Every private name transitions defines: module globals, class members of its own
    classes (inherited ones too), and the attributes its objects set on themselves."""
    found: set[str] = set()
    for info in pkgutil.walk_packages(transitions.__path__, "transitions."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an extension whose optional dependency is missing
            continue
        for name, value in vars(module).items():
            if _private(name):
                found.add(name)
            if inspect.isclass(value) and value.__module__.startswith("transitions"):
                for klass in value.__mro__:
                    if klass.__module__.startswith("transitions"):
                        found.update(n for n in vars(klass) if _private(n))

    class Model:
        state: str

    machine = transitions.Machine(model=Model(), states=["a", "b"], initial="a")
    machine.add_transition("go", "a", "b")
    event = machine.events["go"]
    [transition] = event.transitions["a"]
    data = transitions.EventData(machine.get_state("a"), event, machine, Model(), (), {})
    for thing in (machine, event, transition, data, machine.get_state("a")):
        found.update(n for n in vars(thing) if _private(n))
    return found


def uses_of(private: set[str], tree: ast.AST) -> list[str]:
    """Where ``tree`` reads, overrides or imports one of the ``private`` names."""
    found = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr in private:
            found.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.Assign):
                    names = (
                        [item.name]
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                        else [t.id for t in item.targets if isinstance(t, ast.Name)]
                    )
                    found.extend(f"{where}: overrides {n}" for n in names if n in private)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("transitions"):
            found.extend(f"{where}: imports {a.name}" for a in node.names if _private(a.name))
            if any(_private(part) for part in (node.module or "").split(".")):
                found.append(f"{where}: imports from {node.module}")
        elif isinstance(node, ast.Import):
            found.extend(
                f"{where}: imports {a.name}"
                for a in node.names
                if a.name.startswith("transitions") and any(map(_private, a.name.split(".")))
            )
        elif isinstance(node, ast.Constant) and node.value in private:  # getattr(x, "_y")
            found.append(f"{where}: the string {node.value!r}")
    return found


def test_the_private_names_are_found() -> None:
    # the check below is only as good as this list: every private member of the
    # installed release's core classes is in it (0.9.x: _trigger, _process, ...)
    private = transitions_private_names()
    for klass in (transitions.Machine, transitions.Event, transitions.Transition):
        own = {n for n in vars(klass) if _private(n)}
        assert own
        assert own <= private
    assert len(private) > 20


def test_the_check_catches_what_machine_py_once_did() -> None:
    # the names the first machine.py used (transitions 0.9), so that this test of the
    # detector does not depend on the installed release
    private = {"_trigger", "_is_valid_source", "_process", "_LOGGER"}
    old = """
from transitions import core as _core
from transitions.core import _LOGGER
class _LeanEvent(_core.Event):
    def trigger(self, model, *args, **kwargs):
        return self._trigger(_core.EventData(None, self, self.machine, model, args, kwargs))
    def _trigger(self, event_data):
        return self._is_valid_source(event_data.state) or getattr(self, "_process")
"""
    found = uses_of(private, ast.parse(old))
    assert any(f.endswith(": ._trigger") for f in found)
    assert any("overrides _trigger" in f for f in found)
    assert any("._is_valid_source" in f for f in found)
    assert any("imports _LOGGER" in f for f in found)
    assert any("'_process'" in f for f in found)


def test_src_uses_no_private_name_of_transitions() -> None:
    private = transitions_private_names()
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        problems.extend(f"{path.relative_to(SRC)} {use}" for use in uses_of(private, tree))
    assert problems == []
