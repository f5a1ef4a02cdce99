"""The installed protocols, as an :class:`~lastresort.Engine` would run them: every
usable one, and the plugins left out as broken (for the command line, scenario files
and the simulator, which list or look up protocols by id)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from attrs import frozen

from ..protocol.model import Protocol
from ..store.memory import MemoryStore
from .engine import Engine
from .loading import BrokenPlugin
from .plugins import Hooks

__all__ = ["Installed", "load_installed"]


@frozen
class Installed:
    """What the installed plugins provide.

    :param protocols: every usable protocol, by id (validated, as an engine runs it).
    :param broken: the installed plugins left out, and why.
    :param hooks: the hooks of the plugins that loaded (for validation and properties).
    """

    protocols: Mapping[str, Protocol]
    broken: tuple[BrokenPlugin, ...]
    hooks: Hooks

    def why_not(self, protocol_id: str) -> str | None:
        """Why ``protocol_id`` is not among :attr:`protocols` when a broken plugin
        provided it (``None`` otherwise)."""
        for plugin in self.broken:
            if protocol_id in plugin.protocols:
                return f"plugin {plugin.name!r} is left out ({plugin.stage}): {plugin.reason}"
        return None


def load_installed(plugins: Iterable[object] = (), entry_points: bool = True) -> Installed:
    """The protocols of the installed plugins (and the core, and ``plugins``), with
    every installed plugin that cannot be used left out (see docs/hooks.md, "Broken
    plugins").

    :param plugins: explicit plugins (strict: their problems are errors).
    :param entry_points: load the installed plugins.
    :raises ProtocolError: for a problem of the core's or an explicit plugin's protocol.
    :raises PluginLoadError: for an explicit plugin that cannot be registered.
    """
    engine = Engine(
        plugins=plugins, entry_points=entry_points, store=MemoryStore(), delivery_timeout=None
    )
    return Installed(dict(engine.protocols), engine.broken_plugins, engine.hooks)
