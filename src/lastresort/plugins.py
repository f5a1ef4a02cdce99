"""One PluginManager per Engine, and the typed facade the core calls hooks through.

Load order: the default plugins (``trylast``), then the ``lastresort`` entry
points (unless switched off), then the plugins given explicitly; then
``check_pending()``, so that a misspelt hook name is an error at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pluggy

from . import hookspecs
from .errors import LastResortError, ProtocolError
from .events import Event
from .hookspecs import PROJECT, hookimpl
from .model import Actor, Encounter, Party, Protocol
from .outbox import Notification
from .protocol_file import load_packaged_protocol
from .verify import RULES, Property

__all__ = ["DefaultPlugin", "Hooks", "PluginLoadError", "make_plugin_manager"]

log = logging.getLogger("lastresort.plugins")


class PluginLoadError(LastResortError):
    """A plugin could not be registered (bad hook name or signature, or a failing entry point)."""


class DefaultPlugin:
    """The core's own behaviour, registered first and asked last: the reference
    protocol ``taskforce`` and a delivery that only logs (no child data)."""

    @hookimpl(trylast=True)
    def lastresort_protocols(self) -> Sequence[Protocol]:
        return [load_packaged_protocol("lastresort.protocols", "taskforce.toml")]

    @hookimpl(trylast=True)
    def lastresort_deliver(self, notification: Notification) -> str | None:
        log.info(
            "notify %s of %s (encounter %s, step %s, key %s)",
            notification.party,
            notification.event,
            notification.encounter_id,
            notification.step,
            notification.key,
        )
        return "log"


class PluginManager(pluggy.PluginManager):
    """``pluggy.PluginManager`` that counts changes to its registrations
    (:attr:`changes`), so that :class:`Hooks` can keep answers that depend only on
    which plugins are registered (whether anyone observes events) between changes.

    Every public way to add or remove a plugin goes through :meth:`register` or
    :meth:`unregister` (``set_blocked`` and ``load_setuptools_entrypoints`` too);
    implementations slipped into pluggy's private lists are not seen."""

    changes = 0

    def register(self, plugin: object, name: str | None = None) -> str | None:
        try:
            return super().register(plugin, name)
        finally:
            self.changes += 1

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        try:
            return super().unregister(plugin, name)
        finally:
            self.changes += 1


def make_plugin_manager(
    plugins: Iterable[object] = (), entry_points: bool = True
) -> pluggy.PluginManager:
    """Build a fresh PluginManager in the documented order.

    :raises PluginLoadError: naming the plugin and what is wrong with it.
    """
    pm = PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(DefaultPlugin(), name="lastresort.default")
        if entry_points:
            pm.load_setuptools_entrypoints(PROJECT)
        for plugin in plugins:
            pm.register(plugin)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(f"plugin {exc.plugin!r}: {exc}") from exc
    except LastResortError:
        raise
    except Exception as exc:  # an entry point that fails to import
        raise PluginLoadError(f"could not load the lastresort plugins: {exc!r}") from exc
    return pm


class Hooks:
    """Typed calls of every hook; the core never touches ``pm.hook`` elsewhere."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._hook: Any = pm.hook
        self._observers = False
        self._observers_at = -1  # PluginManager.changes when _observers was worked out

    def protocols(self) -> dict[str, Protocol]:
        """Every protocol the plugins provide, by id.

        :raises ProtocolError: when two plugins provide the same id.
        """
        found: dict[str, Protocol] = {}
        owner: dict[str, str] = {}
        problems: list[str] = []
        for impl in reversed(self._hook.lastresort_protocols.get_hookimpls()):
            name = impl.plugin_name
            for protocol in impl.function(*_args(impl, {})) or ():
                if protocol.id in found:
                    problems.append(
                        f"$.protocol.id: protocol id {protocol.id!r} is provided by both"
                        f" {owner[protocol.id]!r} and {name!r}"
                    )
                    continue
                found[protocol.id] = protocol
                owner[protocol.id] = name
        if problems:
            raise ProtocolError(problems)
        return found

    def validate_protocol(self, protocol: Protocol) -> list[str]:
        """Extra problems from every plugin."""
        results = self._hook.lastresort_validate_protocol(protocol=protocol)
        return [problem for result in results for problem in result or ()]

    def protocol_properties(self, protocol: Protocol) -> list[Property]:
        """Extra safety properties from every plugin, for ``protocol``.

        :raises PluginLoadError: when a plugin returns something that is not a
            :class:`~lastresort.Property`, or a name already taken.
        """
        found: list[Property] = []
        owner: dict[str, str] = dict.fromkeys(RULES, "lastresort (core)")
        for impl in reversed(self._hook.lastresort_protocol_properties.get_hookimpls()):
            try:
                given = list(impl.function(*_args(impl, {"protocol": protocol})) or ())
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {impl.plugin_name!r}: lastresort_protocol_properties failed for"
                    f" protocol {protocol.id!r}: {type(exc).__name__}: {exc}"
                ) from exc
            for prop in given:
                if not isinstance(prop, Property):
                    raise PluginLoadError(
                        f"plugin {impl.plugin_name!r}: lastresort_protocol_properties returned"
                        f" {type(prop).__name__}, expected lastresort.Property"
                    )
                if prop.name in owner:
                    raise PluginLoadError(
                        f"plugin {impl.plugin_name!r}: property name {prop.name!r} is already"
                        f" taken by {owner[prop.name]!r}"
                    )
                owner[prop.name] = impl.plugin_name
                found.append(prop)
        return found

    def guard_names(self) -> set[str]:
        """Guard names some plugin answers."""
        return {name for result in self._hook.lastresort_guard_names() for name in result or ()}

    def guard(self, name: str, encounter: Encounter, event: str, actor: Actor) -> str | None:
        """``None`` allows; a string refuses with that reason."""
        result = self._hook.lastresort_guard(
            name=name, encounter=encounter, event=event, actor=actor
        )
        return None if result is None else str(result)

    def has_observers(self) -> bool:
        """Whether any plugin implements ``lastresort_on_event`` (asked once per change
        of the registrations when ``pm`` is a :class:`PluginManager`; every time otherwise)."""
        changes = getattr(self.pm, "changes", -1)
        if changes < 0 or changes != self._observers_at:
            self._observers = bool(self._hook.lastresort_on_event.get_hookimpls())
            self._observers_at = changes
        return self._observers

    def on_event(self, event: Event, encounter: Encounter) -> list[tuple[str, BaseException]]:
        """Call every observer; return ``(plugin name, exception)`` for each that raised."""
        failures: list[tuple[str, BaseException]] = []
        for impl in reversed(self._hook.lastresort_on_event.get_hookimpls()):
            try:
                impl.function(*_args(impl, {"event": event, "encounter": encounter}))
            except Exception as exc:  # noqa: BLE001 - an observer never undoes a commit
                failures.append((impl.plugin_name, exc))
        return failures

    def deliver(self, notification: Notification) -> str | None:
        """The first receipt from a delivery plugin (exceptions propagate)."""
        result = self._hook.lastresort_deliver(notification=notification)
        return None if result is None else str(result)

    def party_directory(self, protocol: Protocol, party: Party, at: datetime) -> str | None:
        """Who is on duty for ``party`` at ``at``, if a plugin knows."""
        result = self._hook.lastresort_party_directory(protocol=protocol, party=party, at=at)
        return None if result is None else str(result)


def _args(impl: Any, kwargs: dict[str, Any]) -> list[Any]:
    return [kwargs[name] for name in impl.argnames]
