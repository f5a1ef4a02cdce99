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
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from .loading import BrokenPlugin, check_pending, load_entry_points

__all__ = [
    "DefaultPlugin",
    "Hooks",
    "PluginFailed",
    "PluginLoadError",
    "delivery_replacement",
    "make_plugin_manager",
    "replacing_delivery",
]

log = logging.getLogger("lastresort.plugins")


@functools.cache
def _taskforce() -> Protocol:
    """The reference protocol, read once per process (a frozen value)."""
    return load_packaged_protocol("lastresort.protocol.builtin", "taskforce.toml")


class DefaultPlugin:
    """The core's own behaviour, registered first and asked last: the reference
    protocol ``taskforce`` and a delivery that only logs (no child data)."""

    @hookimpl(trylast=True)
    def lastresort_protocols(self) -> Sequence[Protocol]:
        return [_taskforce()]

    @hookimpl(trylast=True)
    def lastresort_delivers_for(self) -> Sequence[str]:
        return ["*"]

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
    plugins: Iterable[object] = (),
    entry_points: bool = True,
    *,
    broken: list[BrokenPlugin] | None = None,
) -> pluggy.PluginManager:
    """Build a fresh PluginManager in the documented order.

    :param plugins: the explicit plugins, registered after the installed ones.
    :param entry_points: load the plugins installed under the ``lastresort`` group.
    :param broken: when given, an *installed* plugin that fails to import or to
        register (a bad hook name or signature) is left out and recorded here, and
        the others load; when ``None`` (strict), it is an error. The default plugin
        and explicit plugins are always strict.
    :raises PluginLoadError: naming the plugin and what is wrong with it.
    """
    pm = PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(DefaultPlugin(), name="lastresort.default")
        if entry_points:
            load_entry_points(pm, broken)
        for plugin in plugins:
            pm.register(plugin)
        check_pending(pm, broken)
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
    "lastresort_validate_protocol": False,
    "lastresort_guard_names": False,
    "lastresort_delivers_for": False,
}
#: While set, a tapped implementation that raises is recorded and answers ``None``
#: (the loading of installed plugins, which leaves a failing one out: see loading.py).
_LENIENT: ContextVar[bool] = ContextVar("lastresort_lenient", default=False)
#: While :meth:`Hooks.deliver` calls: the notification's protocol, each plugin's
#: delivery scope, and the one plugin that alone may deliver (a test's replacement).
_DELIVERING: ContextVar[tuple[str, Mapping[str, frozenset[str]], str | None] | None] = ContextVar(
    "lastresort_delivering", default=None
)
#: Every protocol (a plugin's ``lastresort_delivers_for`` answer).
EVERY = "*"
#: The name a test's replacement delivery is registered under (:func:`replacing_delivery`).
REPLACEMENT = "lastresort.testing.delivery"
_replacements: list[object] = []


@contextmanager
def replacing_delivery(plugin: object) -> Iterator[object]:
    """While inside, every :class:`~lastresort.Engine` built (in any thread) registers
    ``plugin`` and lets it alone deliver: no other ``lastresort_deliver`` (installed,
    explicit or the default log) is called. For tests and scenario runs
    (:class:`lastresort.testing.RecordingDelivery`); nestable, the innermost wins."""
    _replacements.append(plugin)
    try:
        yield plugin
    finally:
        _replacements.remove(plugin)


def delivery_replacement() -> object | None:
    """The plugin of the innermost :func:`replacing_delivery`, if any."""
    return _replacements[-1] if _replacements else None


class PluginFailed(Exception):
    """A plugin's hook raised while :meth:`Hooks.attributed` made a call.

    :ivar plugin: the plugin's name.
    :ivar error: what it raised.
    """

    def __init__(self, plugin: str, error: BaseException) -> None:
        super().__init__(f"{plugin}: {type(error).__name__}: {error}")
        self.plugin = plugin
        self.error = error


def _in_scope(plugin: str) -> bool:
    """Whether ``plugin`` may deliver the notification being delivered now (always
    outside :meth:`Hooks.deliver`)."""
    delivering = _DELIVERING.get()
    if delivering is None:
        return True
    protocol, scopes, only = delivering
    if only is not None:
        return plugin == only
    scope = scopes.get(plugin, frozenset())
    return EVERY in scope or protocol in scope


def _tap(impl: pluggy.HookImpl, isolate: bool, scoped: bool = False) -> None:
    """Replace ``impl.function`` by its tap (see the module's docstring); idempotent.
    A ``scoped`` tap (``lastresort_deliver``) skips the implementation when its plugin
    does not deliver for the notification's protocol."""
    function = impl.function
    if getattr(function, "_lastresort_tap", False):
        return
    plugin = impl.plugin_name
    wrapper = impl.wrapper or impl.hookwrapper
    if scoped:
        tapped = _tap_scoped(function, plugin, wrapper)
    else:
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
            if isolate or _LENIENT.get():
                return None
            raise
        if not isolate:
            calls.append((plugin, None, result))
        return result

    return tapped


def _tap_scoped(function: Callable[..., Any], plugin: str, wrapper: bool) -> Callable[..., object]:
    """A delivery implementation (or wrapper) that runs only for the protocols its
    plugin delivers for: out of scope it is not called at all (a wrapper passes the
    others' result through), so it can neither page nor produce a receipt."""
    if wrapper:

        @functools.wraps(function)
        def wrapped(*args: object, **kwargs: object) -> Generator[None, object, object]:
            if not _in_scope(plugin):
                return (yield)
            return (yield from function(*args, **kwargs))

        return wrapped

    @functools.wraps(function)
    def plain(*args: object, **kwargs: object) -> object:
        if not _in_scope(plugin):
            return None
        return function(*args, **kwargs)

    return plain


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

    def __init__(self, pm: pluggy.PluginManager, delivery_only: str | None = None) -> None:
        self.pm = pm
        #: the one plugin that alone delivers (a test's replacement), or ``None``
        self.delivery_only = delivery_only
        self._hook: Any = pm.hook
        self._scopes: Mapping[str, frozenset[str]] = {}
        self._scopes_at = -2
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
        for impl in self._hook.lastresort_deliver.get_hookimpls():
            _tap(impl, False, scoped=True)
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

    def collect(
        self, hook: str, **kwargs: object
    ) -> tuple[list[tuple[str, object]], list[tuple[str, BaseException]]]:
        """Call ``hook`` (not ``firstresult``) through ``pm.hook`` with every
        implementation isolated: each result with its plugin's name, and each plugin
        whose implementation raised with what it raised (the others still ran)."""
        self._tap()
        calls: list[_Record] = []
        token, lenient = _CALL.set(calls), _LENIENT.set(True)
        try:
            results = getattr(self._hook, hook)(**kwargs)
        except Exception as exc:  # noqa: BLE001 - a wrapper's: reported as its plugin's
            plugin = next((p for p, e, _ in calls if e is exc), None) or self._wrappers(hook)
            return [], [(plugin, exc)]
        finally:
            _LENIENT.reset(lenient)
            _CALL.reset(token)
        owners = {id(result): plugin for plugin, exc, result in calls if exc is None}
        given = [(owners.get(id(r)) or self._wrappers(hook), r) for r in results]
        return given, [(plugin, exc) for plugin, exc, _ in calls if exc is not None]

    @contextmanager
    def blaming(self) -> Iterator[None]:
        """Inside, an exception raised by a plugin's implementation of a tapped hook
        (validation, guard names, properties, protocols) comes out as
        :class:`PluginFailed` naming the plugin."""
        self._tap()
        calls: list[_Record] = []
        token = _CALL.set(calls)
        try:
            yield
        except PluginFailed:
            raise
        except Exception as exc:
            plugin = next((p for p, e, _ in calls if e is exc), None)
            if plugin is None:
                raise
            raise PluginFailed(plugin, exc) from exc
        finally:
            _CALL.reset(token)

    def installed(self) -> set[str]:
        """The names of the plugins loaded from entry points."""
        return {name for p, _ in self.pm.list_plugin_distinfo() if (name := self.pm.get_name(p))}

    def delivery_scopes(self) -> Mapping[str, frozenset[str]]:
        """The protocols each plugin delivers for (``lastresort_delivers_for``), by
        plugin name; ``"*"`` for every protocol. A plugin given explicitly to the
        engine that implements ``lastresort_deliver`` without saying delivers for
        every protocol; an installed one must say (worked out once per change of the
        registrations).

        :raises PluginLoadError: naming the plugin, for a failing or unusable
            ``lastresort_delivers_for``, or an installed plugin that delivers
            without it.
        """
        changes = getattr(self.pm, "changes", -1)
        if changes >= 0 and changes == self._scopes_at:
            return self._scopes
        hook = "lastresort_delivers_for"
        given, failed = self.collect(hook)
        for plugin, exc in failed:
            raise PluginLoadError(
                plugin=plugin, problems=[f"{hook} failed: {type(exc).__name__}: {exc}"]
            ) from exc
        scopes: dict[str, frozenset[str]] = {}
        for plugin, result in given:
            items = None
            if isinstance(result, Iterable) and not isinstance(result, str | bytes):
                items = list(result)
            if items is None or not all(isinstance(item, str) for item in items):
                raise PluginLoadError(
                    plugin=plugin,
                    problems=[
                        f"{hook} returned {type(result).__name__}, expected a list of"
                        f" protocol ids or [{EVERY!r}]"
                    ],
                )
            scopes[plugin] = scopes.get(plugin, frozenset()) | frozenset(items)
        installed = self.installed()
        for impl in self._hook.lastresort_deliver.get_hookimpls():
            name = impl.plugin_name
            if name in scopes:
                continue
            if name in installed:
                raise PluginLoadError(
                    plugin=name,
                    problems=[
                        f"it implements lastresort_deliver but not {hook}: say which"
                        f" protocols it delivers for (their ids, or [{EVERY!r}])"
                    ],
                )
            scopes[name] = frozenset({EVERY})
        self._scopes, self._scopes_at = scopes, changes
        return scopes

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
        """The first receipt from a delivery plugin that delivers for the
        notification's protocol (exceptions propagate): the others are not called
        (only :attr:`delivery_only` is, when set).

        :raises PluginLoadError: when the delivery scopes cannot be worked out
            (see :meth:`delivery_scopes`); the attempt then counts as failed.
        """
        scopes = self.delivery_scopes()
        self._tap()
        token = _DELIVERING.set((notification.protocol, scopes, self.delivery_only))
        try:
            result = self._hook.lastresort_deliver(notification=notification)
        finally:
            _DELIVERING.reset(token)
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
