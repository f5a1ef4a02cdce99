"""What the ``lastresort`` commands share: finding a protocol by installed id or by file.

Every command that takes ``ID|FILE`` reads it the same way: a target ending in
``.toml``/``.json``, or naming an existing file, is loaded from that file; anything
else is an installed protocol id (the installed plugins are loaded once, only when an
id is asked for).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ..engine.plugins import Hooks, make_plugin_manager
from ..errors import ProtocolError
from ..protocol.files import load_protocol
from ..protocol.model import Protocol

__all__ = ["installed_protocols", "is_file_target", "resolve_protocol", "unknown_protocol"]


def installed_protocols() -> dict[str, Protocol]:
    """Every protocol the installed plugins (and the core) provide, by id."""
    return Hooks(make_plugin_manager()).protocols()


def is_file_target(target: str) -> bool:
    """Whether ``target`` names a protocol file rather than an installed id."""
    path = Path(target)
    return path.suffix.lower() in {".toml", ".json"} or path.is_file()


def unknown_protocol(target: str, known: Mapping[str, Protocol]) -> str:
    """The problem for an id that no installed plugin provides."""
    return f"$: unknown protocol {target!r}; installed: {', '.join(sorted(known)) or 'none'}"


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
