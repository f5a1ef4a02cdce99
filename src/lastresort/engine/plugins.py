"""One PluginManager per Engine, and the typed facade the core calls hooks through.

Load order: the default plugins (``trylast``), then the ``lastresort`` entry
points (unless switched off), then the plugins given explicitly; then
``check_pending()``, so that a misspelt hook name is an error at once.

Every hook is called through ``pm.hook.<name>(...)``, so pluggy's contract holds:
``wrapper=True`` and old-style ``hookwrapper=True`` implementations run around the
others, ``firstresult``, ``tryfirst`` and ``trylast`` are honoured. Where the core
needs to know which plugin did what (an observer that raised, the plugin that
provided a protocol or a property), :class:`Hooks` *taps* the implementations of
that hook: ``HookImpl.function`` is replaced, once, by a thin wrapper
(``functools.wraps``) that records the plugin's name with its result or exception
while :class:`Hooks` makes the call, and otherwise behaves exactly like the
function. For ``lastresort_on_event`` the tap also isolates: an exception is
recorded and not raised, so one failing observer (or wrapper) neither stops the
others nor reaches the wrappers (they see the list of results). Called outside
:class:`Hooks` (``pm.hook...`` by an embedding), a tapped implementation behaves as
untapped: exceptions propagate as pluggy documents.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Generator, Iterable, Sequence
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any

import pluggy

from ..errors import LastResortError, PluginLoadError, ProtocolError
from ..events import Event
from ..outbox import Notification
from ..protocol.files import load_packaged_protocol
from ..protocol.model import Actor, Encounter, Party, Protocol
from ..verifier.verification import RULES, Property
from . import hookspecs
from .hookspecs import PROJECT, hookimpl

__all__ = ["DefaultPlugin", "Hooks", "PluginLoadError", "make_plugin_manager"]

log = logging.getLogger("lastresort.plugins")


class DefaultPlugin:
    """The core's own behaviour, registered first and asked last: the reference
    protocol ``taskforce`` and a delivery that only logs (no child data)."""

    @hookimpl(trylast=True)
    def lastresort_protocols(self) -> Sequence[Protocol]:
        return [load_packaged_protocol("lastresort.protocol.builtin", "taskforce.toml")]

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
    #: whether hook calls were ever monitored (``add_hookcall_monitoring``,
    #: ``enable_tracing``): then every call goes through ``pm.hook``, where they are seen
    monitored = False

    def add_hookcall_monitoring(self, before: Any, after: Any) -> Callable[[], None]:
        self.monitored = True
        self.changes += 1
        return super().add_hookcall_monitoring(before, after)

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
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginLoadError(plugin=name, problems=[str(exc)]) from exc
    except LastResortError:
        raise
    except Exception as exc:  # an entry point that fails to import
        raise PluginLoadError(problems=[f"could not load the lastresort plugins: {exc!r}"]) from exc
    return pm


#: One record of a tapped implementation's call: (plugin name, exception or None, result).
_Record = tuple[str, BaseException | None, object]
#: The records of the hook call :class:`Hooks` is making now (``None``: no such call).
_CALL: ContextVar[list[_Record] | None] = ContextVar("lastresort_hook_call", default=None)
#: An observer called by :meth:`Hooks.on_event` itself: plugin name, function, the
#: names of its positional and keyword arguments (pluggy's ``argnames``/``kwargnames``).
_Observer = tuple[str, Callable[..., object], tuple[str, ...], tuple[str, ...]]
#: The hooks whose implementations are tapped, and whether the tap isolates failures.
_TAPPED = {
    "lastresort_on_event": True,
    "lastresort_protocols": False,
    "lastresort_protocol_properties": False,
    "lastresort_closing_days": False,
}


def _tap(impl: pluggy.HookImpl, isolate: bool) -> None:
    """Replace ``impl.function`` by its tap (see the module's docstring); idempotent."""
    function = impl.function
    if getattr(function, "_lastresort_tap", False):
        return
    plugin = impl.plugin_name
    wrapper = impl.wrapper or impl.hookwrapper
    tapped = (_tap_wrapper if wrapper else _tap_plain)(function, plugin, isolate)
    tapped._lastresort_tap = True  # type: ignore[attr-defined]
    # HookImpl.function is pluggy's documented attribute, marked Final for type checkers;
    # pluggy reads it at each call (argnames stay those of the original function)
    setattr(impl, "function", tapped)  # noqa: B010


def _tap_plain(
    function: Callable[..., object], plugin: str, isolate: bool
) -> Callable[..., object]:
    @functools.wraps(function)
    def tapped(*args: object, **kwargs: object) -> object:
        calls = _CALL.get()
        if calls is None:
            return function(*args, **kwargs)
        try:
            result = function(*args, **kwargs)
        except Exception as exc:
            calls.append((plugin, exc, None))
            if isolate:
                return None
            raise
        if not isolate:
            calls.append((plugin, None, result))
        return result

    return tapped


def _tap_wrapper(
    function: Callable[..., Any], plugin: str, isolate: bool
) -> Callable[..., Generator[None, object, object]]:
    @functools.wraps(function)
    def tapped(*args: object, **kwargs: object) -> Generator[None, object, object]:
        calls = _CALL.get()
        gen = function(*args, **kwargs)
        if calls is None or not isolate:
            try:
                return (yield from gen)
            except Exception as exc:
                if calls is not None and not any(exc is e for _, e, _ in calls):
                    calls.append((plugin, exc, None))
                raise
        try:
            next(gen)
        except StopIteration:
            calls.append((plugin, RuntimeError("the hook wrapper did not yield"), None))
            return (yield)
        except Exception as exc:  # noqa: BLE001 - isolated: recorded, reported by the engine
            calls.append((plugin, exc, None))
            return (yield)
        try:
            sent = yield
        except BaseException:  # only what isolation does not catch (KeyboardInterrupt)
            gen.close()
            raise
        try:
            gen.send(sent)
        except StopIteration as stop:
            return stop.value
        except Exception as exc:  # noqa: BLE001 - isolated: recorded, reported by the engine
            calls.append((plugin, exc, None))
            return sent
        gen.close()
        calls.append((plugin, RuntimeError("the hook wrapper yielded twice"), None))
        return sent

    return tapped


class Hooks:
    """Typed calls of every hook; the core never touches ``pm.hook`` elsewhere.

    Every hook is called through ``pm.hook`` (wrappers, ``firstresult``, ``tryfirst``
    and ``trylast`` honoured); see the module's docstring for the taps that keep
    per-plugin failures apart. Holds no lock: hooks may be called from any thread
    and a plugin may call the engine (and so these hooks) again."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._hook: Any = pm.hook
        self._observers = False
        # the observers in call order when on_event may call them itself (see on_event)
        self._direct: tuple[_Observer, ...] | None = None
        self._at = -1  # PluginManager.changes when the above and the taps were worked out

    def _tap(self) -> None:
        """Tap the implementations of the hooks in ``_TAPPED``, and work out what
        :meth:`has_observers` and :meth:`on_event` need (once per change of the
        registrations when ``pm`` is a :class:`PluginManager`; every time otherwise)."""
        changes = getattr(self.pm, "changes", -1)
        if changes >= 0 and changes == self._at:
            return
        for name, isolate in _TAPPED.items():
            for impl in getattr(self._hook, name).get_hookimpls():
                _tap(impl, isolate)
        observers = self._hook.lastresort_on_event.get_hookimpls()
        self._observers = bool(observers)
        plain = not any(impl.wrapper or impl.hookwrapper for impl in observers)
        direct = changes >= 0 and plain and not getattr(self.pm, "monitored", True)
        self._direct = (
            tuple(
                # the untapped function: this loop isolates each observer itself
                (
                    i.plugin_name,
                    getattr(i.function, "__wrapped__", i.function),
                    i.argnames,
                    i.kwargnames,
                )
                for i in reversed(observers)
            )
            if direct
            else None
        )
        self._at = changes

    def _wrappers(self, hook: str) -> str:
        names = [
            impl.plugin_name
            for impl in getattr(self._hook, hook).get_hookimpls()
            if impl.wrapper or impl.hookwrapper
        ]
        return f"a wrapper of {hook} ({', '.join(map(repr, names)) or 'none'})"

    def protocols(self) -> dict[str, Protocol]:
        """Every protocol the plugins provide, by id.

        :raises ProtocolError: when two plugins provide the same id.
        """
        self._tap()
        calls: list[_Record] = []
        token = _CALL.set(calls)
        try:
            results = self._hook.lastresort_protocols()
        finally:
            _CALL.reset(token)
        # which plugin returned which list (a list a wrapper made is the wrapper's)
        owners = {id(result): plugin for plugin, exc, result in calls if exc is None}
        found: dict[str, Protocol] = {}
        owner: dict[str, str] = {}
        problems: list[str] = []
        for result in results:
            name = owners.get(id(result)) or self._wrappers("lastresort_protocols")
            for protocol in result or ():
                if protocol.id in found:
                    problems.append(
                        f"$.protocol.id: protocol id {protocol.id!r} is provided by both"
                        f" {owner[protocol.id]!r} and {name!r}"
                    )
                    continue
                found[protocol.id] = protocol
                owner[protocol.id] = name
        if problems:
            raise ProtocolError(problems=problems)
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
        hook = "lastresort_protocol_properties"
        self._tap()
        calls: list[_Record] = []
        token = _CALL.set(calls)
        try:
            results = self._hook.lastresort_protocol_properties(protocol=protocol)
            # which plugin returned which result (a result a wrapper made is the wrapper's)
            owners = {id(result): plugin for plugin, exc, result in calls if exc is None}
            given = [(owners.get(id(result)), list(result or ())) for result in results]
        except Exception as exc:
            plugin = next((p for p, e, _ in calls if e is exc), None) or self._wrappers(hook)
            raise PluginLoadError(
                plugin=plugin,
                problems=[
                    f"{hook} failed for protocol {protocol.id!r}: {type(exc).__name__}: {exc}"
                ],
            ) from exc
        finally:
            _CALL.reset(token)
        found: list[Property] = []
        owner: dict[str, str] = dict.fromkeys(RULES, "lastresort (core)")
        for name, props in given:
            plugin = name or self._wrappers(hook)
            for prop in props:
                if not isinstance(prop, Property):
                    raise PluginLoadError(
                        plugin=plugin,
                        problems=[
                            f"{hook} returned {type(prop).__name__}, expected lastresort.Property"
                        ],
                    )
                if prop.name in owner:
                    raise PluginLoadError(
                        plugin=plugin,
                        problems=[
                            f"property name {prop.name!r} is already taken by {owner[prop.name]!r}"
                        ],
                    )
                owner[prop.name] = plugin
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
        self._tap()
        return self._observers

    def on_event(self, event: Event, encounter: Encounter) -> list[tuple[str, BaseException]]:
        """Call every observer through ``pm.hook`` (wrappers around them); return
        ``(plugin name, exception)`` for each implementation (observer or wrapper)
        that raised: each is isolated, so the others still run.

        Without wrappers and hook-call monitoring (the common case, worked out once per
        change of the registrations), ``pm.hook`` would only call the observers in its
        order: they are called here in that order (pluggy's ``_multicall``, with the
        same positional and keyword arguments), which costs a third of going through
        ``pm.hook``. With a wrapper or monitoring, the call goes through ``pm.hook``.
        """
        self._tap()
        direct = self._direct
        if direct is not None:
            given = {"event": event, "encounter": encounter}
            failures: list[tuple[str, BaseException]] = []
            for plugin, function, argnames, kwargnames in direct:
                try:
                    if kwargnames:
                        function(
                            *[given[name] for name in argnames],
                            **{name: given[name] for name in kwargnames if name in given},
                        )
                    else:
                        function(*[given[name] for name in argnames])
                except Exception as exc:  # noqa: BLE001 - an observer never undoes a commit
                    failures.append((plugin, exc))
            return failures
        calls: list[_Record] = []
        token = _CALL.set(calls)
        try:
            self._hook.lastresort_on_event(event=event, encounter=encounter)
        except Exception as exc:  # noqa: BLE001 - an observer never undoes a commit
            # every implementation is tapped, so only pluggy itself can get here
            calls.append((self._wrappers("lastresort_on_event"), exc, None))
        finally:
            _CALL.reset(token)
        return [(plugin, exc) for plugin, exc, _ in calls if exc is not None]

    def deliver(self, notification: Notification) -> str | None:
        """The first receipt from a delivery plugin (exceptions propagate)."""
        result = self._hook.lastresort_deliver(notification=notification)
        return None if result is None else str(result)

    def party_directory(self, protocol: Protocol, party: Party, at: datetime) -> str | None:
        """Who is on duty for ``party`` at ``at``, if a plugin knows."""
        result = self._hook.lastresort_party_directory(protocol=protocol, party=party, at=at)
        return None if result is None else str(result)

    def closing_days(self, protocol: Protocol, year: int) -> list[date]:
        """Every plugin's local closing days of ``year`` for ``protocol``, merged.

        :raises PluginLoadError: naming the plugin, when one raises or returns
            anything but a list of dates.
        """
        self._tap()
        calls: list[_Record] = []
        token = _CALL.set(calls)
        try:
            results = self._hook.lastresort_closing_days(protocol=protocol, year=year)
        except Exception as exc:
            failed = [plugin for plugin, error, _ in calls if error is exc]
            raise PluginLoadError(
                plugin=failed[0] if failed else self._wrappers("lastresort_closing_days"),
                problems=[
                    f"lastresort_closing_days({protocol.id!r}, {year}) raised {type(exc).__name__}"
                ],
            ) from exc
        finally:
            _CALL.reset(token)
        owners = {id(result): plugin for plugin, exc, result in calls if exc is None}
        days: list[date] = []
        for result in results:
            name = owners.get(id(result)) or self._wrappers("lastresort_closing_days")
            items = list(result) if isinstance(result, list | tuple | set | frozenset) else None
            wrong = (
                type(result).__name__
                if items is None
                else next((type(d).__name__ for d in items if type(d) is not date), None)
            )
            if wrong is not None:
                raise PluginLoadError(
                    plugin=name,
                    problems=[
                        f"lastresort_closing_days({protocol.id!r}, {year}) returned {wrong};"
                        " expected a list of datetime.date"
                    ],
                )
            days.extend(items or ())
        return days
