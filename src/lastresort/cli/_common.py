"""What the ``lastresort`` commands share: finding a protocol by installed id or by file.

Every command that takes ``ID|FILE`` reads it the same way: a target ending in
``.toml``/``.json``, or naming an existing file, is loaded from that file; anything
else is an installed protocol id (the installed plugins are loaded once, only when an
id is asked for).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ..engine.installed import Installed, load_installed
from ..errors import ProtocolError
from ..protocol.files import load_protocol
from ..protocol.model import Protocol

__all__ = [
    "Known",
    "installed",
    "installed_protocols",
    "is_file_target",
    "resolve_protocol",
    "unknown_protocol",
]


class Known(dict[str, Protocol]):
    """The usable installed protocols by id, knowing the plugins left out as broken
    (:attr:`loaded`), so that asking for one of theirs says why it is missing."""

    def __init__(self, loaded: Installed) -> None:
        super().__init__(loaded.protocols)
        self.loaded = loaded


def installed() -> Installed:
    """The usable installed protocols and the broken plugins."""
    return load_installed()


def installed_protocols() -> Known:
    """Every usable protocol the installed plugins (and the core) provide, by id; an
    installed plugin that cannot be used is left out (see docs/hooks.md)."""
    return Known(installed())


def is_file_target(target: str) -> bool:
    """Whether ``target`` names a protocol file rather than an installed id."""
    path = Path(target)
    return path.suffix.lower() in {".toml", ".json"} or path.is_file()


def unknown_protocol(target: str, known: Mapping[str, Protocol]) -> str:
    """The problem for an id that no usable installed plugin provides (naming the
    broken plugin that provided it, if one did)."""
    listed = f"installed: {', '.join(sorted(known)) or 'none'}"
    why = known.loaded.why_not(target) if isinstance(known, Known) else None
    if why is not None:
        return f"$: protocol {target!r} is not usable: {why}; {listed}"
    return f"$: unknown protocol {target!r}; {listed}"


def resolve_protocol(
    target: str,
    installed: Callable[[], Mapping[str, Protocol]] = installed_protocols,
    *,
    check: bool = True,
) -> Protocol:
    """A protocol by file path (``.toml``/``.json`` or an existing file) or by installed id.

    :param installed: gives the installed protocols by id; called only for an id.
    :param check: validate a protocol read from a file (as :func:`~lastresort.load_protocol`).
    :raises ProtocolError: for a bad file or an unknown id.
    """
    if is_file_target(target):
        return load_protocol(Path(target), check=check)
    known = installed()
    if target not in known:
        raise ProtocolError(problems=[unknown_protocol(target, known)])
    return known[target]
