"""``lastresort new-plugin NAME``: write a working plugin skeleton for a municipality.

The skeleton comes from the template files shipped in the package
(``lastresort/template/*.tmpl``): a ``pyproject.toml`` with the ``lastresort`` entry point, the
reference arrangement as the protocol file, a hook module that provides it, a README and a
test that loads it through the engine and walks its happy path. Everything is written into a
new directory at once, or nothing is written.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import string
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from attrs import frozen

from ..errors import NewPluginError

__all__ = [
    "NewPluginError",
    "PluginNames",
    "plugin_names",
    "register",
    "render_plugin",
    "write_plugin",
]

_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_MAX_NAME = 40
_MAX_MUNICIPALITY = 80
#: Protocol ids lastresort itself provides.
RESERVED = frozenset({"taskforce"})

#: template file -> the path it is written to (``{package}``, ``{module}`` filled in)
_FILES: Mapping[str, str] = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "gitignore.tmpl": ".gitignore",
    "plugin.py.tmpl": "src/{package}/__init__.py",
    "protocol.toml.tmpl": "src/{package}/{module}.toml",
    "test_plugin.py.tmpl": "tests/test_{module}.py",
}


@frozen
class PluginNames:
    """The names a plugin goes by, all derived from its protocol id.

    :param name: the protocol id and directory name, e.g. ``den-haag``.
    :param dist: the distribution, e.g. ``lastresort-den-haag``.
    :param package: the Python package, e.g. ``lastresort_den_haag``.
    :param module: the protocol file's and the test's stem, e.g. ``den_haag``.
    :param entry: the entry point name in the ``lastresort`` group, e.g. ``den_haag``.
    """

    name: str
    dist: str
    package: str
    module: str
    entry: str


def plugin_names(name: str) -> PluginNames:
    """Check ``name`` and derive the plugin's names from it.

    :raises NewPluginError: when ``name`` is not a usable plugin name.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise NewPluginError(
            problem=f"invalid plugin name {name!r}: use lowercase letters and digits,"
            " separated by single hyphens and starting with a letter, e.g. 'utrecht' or"
            " 'den-haag'"
        )
    if len(name) > _MAX_NAME:
        raise NewPluginError(problem=f"plugin name {name!r} is longer than {_MAX_NAME} characters")
    if name == "lastresort" or name.startswith("lastresort-"):
        raise NewPluginError(
            problem=f"plugin name {name!r}: give the municipality's name only (e.g. 'utrecht');"
            " the distribution is called 'lastresort-<name>' by itself"
        )
    if name in RESERVED:
        raise NewPluginError(
            problem=f"plugin name {name!r} is the id of lastresort's own reference protocol; choose"
            " the municipality's name"
        )
    module = name.replace("-", "_")
    return PluginNames(name, f"lastresort-{name}", f"lastresort_{module}", module, module)


def _check_not_installed(names: PluginNames) -> None:
    try:
        importlib.metadata.distribution(names.dist)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        raise NewPluginError(
            problem=f"a distribution {names.dist!r} is already installed, so a second plugin"
            " of that name would collide with it; choose another name or"
            f" `pip uninstall {names.dist}`"
        )
    taken = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="lastresort")}
    if names.entry in taken:
        raise NewPluginError(
            problem=f"the entry point {names.entry!r} in the group 'lastresort' is already taken by"
            f" {taken[names.entry]!r}; choose another name"
        )


def _check_municipality(municipality: str) -> str:
    text = municipality.strip()
    if not text:
        raise NewPluginError(problem="--municipality must not be empty")
    if len(text) > _MAX_MUNICIPALITY:
        raise NewPluginError(
            problem=f"--municipality is longer than {_MAX_MUNICIPALITY} characters"
        )
    bad = sorted({c for c in text if not c.isprintable() or c in '"\\'})
    if bad:
        raise NewPluginError(
            problem=f"--municipality {text!r} contains {', '.join(repr(c) for c in bad)}:"
            ' use one line of plain text, e.g. "\'s-Hertogenbosch"'
        )
    return text


def _quote(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def render_plugin(name: str, municipality: str | None = None) -> dict[str, str]:
    """The skeleton's files as ``{relative path: text}``, without writing anything.

    :param name: the protocol id, e.g. ``den-haag``.
    :param municipality: the municipality's name (default: from ``name``, ``Den Haag``).
    :raises NewPluginError: for a bad name or municipality.
    """
    from .. import __version__

    names = plugin_names(name)
    town = _check_municipality(
        municipality
        if municipality is not None
        else " ".join(part.capitalize() for part in name.split("-"))
    )
    values = {
        "name": names.name,
        "dist": names.dist,
        "package": names.package,
        "module": names.module,
        "entry": names.entry,
        "municipality": town,
        "municipality_doc": town,
        "municipality_toml": _quote(town),
        "title_nl_toml": _quote(f"Burgemeester als last resort: {town}"),
        "title_en_toml": _quote(f"Mayor as last resort: {town}"),
        "source_toml": _quote(
            "Taskforce kindermishandeling en seksueel misbruik, letter 'Invulling burgemeester"
            " last resort', 27 January 2014 (the reference arrangement, written by lastresort"
            f" new-plugin for {town}); Veilig Thuis 0800-2000 (24/7); Meldcode huiselijk geweld"
            " en kindermishandeling (2019: acute or structural unsafety is reported)"
        ),
        "description_toml": _quote(
            f"The 'mayor as last resort' arrangement of {town} as a lastresort plugin"
        ),
        "lastresort_version": __version__,
    }
    folder = resources.files(__package__ or "lastresort").joinpath("template")
    files: dict[str, str] = {}
    for template, target in _FILES.items():
        text = folder.joinpath(template).read_text(encoding="utf-8")
        path = target.format(package=names.package, module=names.module)
        files[path] = string.Template(text).substitute(values)
    files[f"src/{names.package}/py.typed"] = ""
    return files


def write_plugin(
    name: str, directory: str | os.PathLike[str] = ".", municipality: str | None = None
) -> Path:
    """Write the skeleton of plugin ``name`` into the new directory ``directory/name``.

    All files are written into a temporary directory beside the target and moved into
    place at once, so a failure leaves nothing behind.

    :param name: the protocol id, e.g. ``den-haag``.
    :param directory: where the plugin's directory is created (made if missing).
    :param municipality: the municipality's name (default: from ``name``).
    :returns: the plugin's directory.
    :raises NewPluginError: for a bad name or municipality, a name that is already
        installed, or a target that exists; nothing is written.
    """
    files = render_plugin(name, municipality)
    names = plugin_names(name)
    _check_not_installed(names)
    parent = Path(directory)
    target = parent / names.name
    if os.path.lexists(target):
        raise NewPluginError(
            problem=f"{target} already exists; choose another --dir or remove it first (nothing was"
            " written)"
        )
    if parent.exists() and not parent.is_dir():
        raise NewPluginError(problem=f"--dir {parent} is not a directory (nothing was written)")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{names.name}-", dir=parent))
    except OSError as exc:
        raise NewPluginError(
            problem=f"cannot write into {parent}: {exc} (nothing was written)"
        ) from exc
    try:
        for path, text in files.items():
            out = staging / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        staging.chmod(0o755)
        os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NewPluginError(problem=f"cannot write {target}: {exc} (nothing was written)") from exc
    return target


def _run(args: argparse.Namespace) -> int:
    target = write_plugin(args.name, args.dir, args.municipality)
    names = plugin_names(args.name)
    print(f"created {names.dist} in {target} (protocol id {names.name!r}):")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(target).as_posix()}")
    print("next:")
    print(f"  cd {target}")
    print("  pip install -e .")
    print(f"  lastresort show {names.name} --lang nl")
    print("  pytest")
    print(f"  lastresort check {names.name}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``new-plugin`` subcommand."""
    p = sub.add_parser(
        "new-plugin",
        help="write a working plugin skeleton for a municipality",
        description=(
            "Write a new plugin into DIR/NAME: pyproject.toml with the 'lastresort' entry"
            " point, the reference arrangement as its protocol file, a hook module, a README"
            " and a test that walks the happy path. Exit 0: written; 2: refused (bad name or"
            " municipality, name already installed, DIR/NAME exists), nothing written."
        ),
    )
    p.add_argument(
        "name", help="the protocol id: lowercase letters, digits and hyphens, e.g. den-haag"
    )
    p.add_argument(
        "--dir", default=".", help="where the plugin's directory is created (default: .)"
    )
    p.add_argument(
        "--municipality",
        help='the municipality\'s name as people write it, e.g. "Den Haag" (default: from NAME)',
    )
    p.set_defaults(run=_run)
