"""The public surface: ``lastresort.__all__`` plus ``hookspecs``, ``testing`` and
``clock``. Every public name exists, comes from lastresort, and is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import lastresort
import lastresort.clock
import lastresort.engine.hookspecs
import lastresort.testing

PUBLIC_MODULES = [lastresort, lastresort.engine.hookspecs, lastresort.testing, lastresort.clock]
#: data names whose documentation is their module's (no ``#:`` comment needed)
STANDARD = {"__version__"}


def _public(module: ModuleType) -> list[tuple[str, str]]:
    return [(module.__name__, name) for name in module.__all__]


ALL_NAMES = [pair for module in PUBLIC_MODULES for pair in _public(module)]


def _resolve(module_name: str, name: str) -> Any:
    module = next(m for m in PUBLIC_MODULES if m.__name__ == module_name)
    return getattr(module, name)


def _is_documentable(obj: Any) -> bool:
    return inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj)


def _own_doc(obj: Any) -> str:
    """A class's own docstring (not one inherited from Exception or object)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    return (doc or "").strip()


def _doc_comment(obj: Any, module_name: str, name: str) -> str:
    """The ``#:`` comment above ``name = ...`` in the module that defines it."""
    for module in (inspect.getmodule(obj), *PUBLIC_MODULES):
        if module is None or not module.__name__.startswith("lastresort"):
            continue
        source = Path(inspect.getfile(module)).read_text(encoding="utf-8")
        match = re.search(rf"((?:^#:.*\n)+)(?:^.*\n)?^{re.escape(name)}\s*[:=]", source, re.M)
        if match:
            return match[1]
    return ""


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_public_modules_have_a_docstring_and_unique_all(module: ModuleType) -> None:
    assert _own_doc(module), f"{module.__name__} has no docstring"
    assert len(set(module.__all__)) == len(module.__all__), "duplicates in __all__"


@pytest.mark.parametrize(("module_name", "name"), ALL_NAMES)
def test_every_public_name_exists(module_name: str, name: str) -> None:
    assert hasattr(next(m for m in PUBLIC_MODULES if m.__name__ == module_name), name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from lastresort import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(lastresort.__all__)


DOCUMENTABLE = [
    pair for pair in ALL_NAMES if pair[1] not in STANDARD and _is_documentable(_resolve(*pair))
]
DATA = [
    pair for pair in ALL_NAMES if pair[1] not in STANDARD and not _is_documentable(_resolve(*pair))
]


@pytest.mark.parametrize(("module_name", "name"), DOCUMENTABLE)
def test_every_public_class_and_function_has_a_docstring(module_name: str, name: str) -> None:
    obj = _resolve(module_name, name)
    assert obj.__module__.startswith("lastresort"), f"{name} comes from {obj.__module__}"
    assert _own_doc(obj), f"{module_name}.{name} has no docstring of its own"


@pytest.mark.parametrize(("module_name", "name"), DATA)
def test_every_public_constant_has_a_doc_comment(module_name: str, name: str) -> None:
    obj = _resolve(module_name, name)
    assert _doc_comment(obj, module_name, name), f"{module_name}.{name} has no '#:' comment"


def _protocol_doc(cls: type, attr: str) -> str:
    """The docstring of ``attr`` in a public typing.Protocol that ``cls`` implements
    (structurally, like MemoryStore implements Store)."""
    for module_name, name in DOCUMENTABLE:
        protocol = _resolve(module_name, name)
        if not (inspect.isclass(protocol) and getattr(protocol, "_is_protocol", False)):
            continue
        members = [m for m in vars(protocol) if not m.startswith("_")]
        if attr in members and all(hasattr(cls, m) for m in members):
            return inspect.getdoc(getattr(protocol, attr)) or ""
    return ""


@pytest.mark.parametrize(
    ("module_name", "name"),
    [pair for pair in DOCUMENTABLE if inspect.isclass(_resolve(*pair))],
)
def test_every_public_method_and_property_has_a_docstring(module_name: str, name: str) -> None:
    cls = _resolve(module_name, name)
    undocumented = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, property):
            doc = value.__doc__
        elif isinstance(value, classmethod | staticmethod) or inspect.isfunction(value):
            # an implementation of a documented protocol method inherits its docstring
            doc = inspect.getdoc(getattr(cls, attr)) or _protocol_doc(cls, attr)
        else:
            continue
        if not (doc or "").strip():
            undocumented.append(attr)
    assert undocumented == [], f"{name}: undocumented {undocumented}"


def test_public_functions_document_their_errors_and_parameters() -> None:
    # the loading functions this issue introduced, in Sphinx style
    load = inspect.getdoc(lastresort.load_protocol) or ""
    assert ":param source:" in load
    assert ":param check:" in load
    assert ":raises ProtocolError:" in load
    assert "load_protocol(dump_protocol(p)) == p" in (
        inspect.getdoc(lastresort.dump_protocol) or ""
    )
    assert ":param extra:" in (inspect.getdoc(lastresort.validate) or "")


def test_the_package_is_typed() -> None:
    assert (Path(lastresort.__file__).parent / "py.typed").is_file()
