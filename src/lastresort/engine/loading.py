"""Loading installed plugins so that one broken plugin cannot hurt the others.

An *installed* plugin (an entry point of the ``lastresort`` group) that cannot be
used is left out, whole: unregistered, so none of its hooks (protocols, guards,
observers, delivery, directory) is ever called, and every protocol it provides is
left out with it; a :class:`BrokenPlugin` says which and why. The core's default
plugin and plugins given to ``Engine(plugins=[...])`` are never left out: their
problems are errors, as are an installed plugin's with ``strict_plugins=True``.
See docs/hooks.md ("Broken plugins").
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import pluggy
from attrs import field, frozen

from ..errors import LastResortError, PluginLoadError, ProblemsError, ProtocolError
from ..protocol.model import Protocol
from .hookspecs import PROJECT

if TYPE_CHECKING:
    from .plugins import Hooks

__all__ = ["STAGES", "BrokenPlugin", "check_pending", "leave_out_broken", "load_entry_points"]

#: Where loading a plugin went wrong, in the order loading happens.
STAGES = ("import", "register", "protocols", "collision", "validation", "delivery")


@frozen(kw_only=True)
class BrokenPlugin:
    """An installed plugin an :class:`~lastresort.Engine` left out, and why
    (:attr:`lastresort.Engine.broken_plugins`).

    :param name: the plugin's name: its entry point's name.
    :param stage: what failed, one of :data:`STAGES`: ``"import"`` (its module
        raised), ``"register"`` (a misspelt hook or a bad signature), ``"protocols"``
        (``lastresort_protocols`` raised, e.g. a protocol file with problems, or
        returned something else than protocols), ``"collision"`` (it provides a
        protocol id another plugin provides too: both are left out),
        ``"validation"`` (a protocol it provides is invalid, or one of its hooks
        raised while protocols were checked), ``"delivery"`` (its
        ``lastresort_delivers_for`` failed or is missing).
    :param problems: what is wrong, one line each, as the error lists them.
    :param protocols: the ids of the protocols left out with it (empty when its
        protocols could not be read).
    :param error: the error ``Engine(strict_plugins=True)`` raises for it
        (:class:`~lastresort.PluginLoadError` or :class:`~lastresort.ProtocolError`).
    """

    name: str
    stage: str
    problems: tuple[str, ...]
    protocols: tuple[str, ...] = ()
    error: LastResortError = field(eq=False, repr=False)

    @property
    def reason(self) -> str:
        """The problems on one line."""
        return "; ".join(self.problems)


def _describe(exc: BaseException) -> list[str]:
    """An exception as problem lines: a protocol file's located problems as they are."""
    if isinstance(exc, ProblemsError) and exc.problems:
        lines = exc.lines if isinstance(exc, ProtocolError) else list(exc.problems)
        return [str(line) for line in lines]
    return [f"{type(exc).__name__}: {exc}"]


def _error(name: str, exc: BaseException) -> LastResortError:
    """The error strict mode raises for plugin ``name``: ``exc`` itself when it is a
    plugin's or protocol's error, otherwise a :class:`PluginLoadError` naming the
    plugin, caused by ``exc``."""
    if isinstance(exc, ProtocolError | PluginLoadError):
        return exc
    error = PluginLoadError(plugin=name, problems=_describe(exc))
    error.__cause__ = exc
    return error


def load_entry_points(pm: pluggy.PluginManager, broken: list[BrokenPlugin] | None) -> None:
    """Register every plugin of the ``lastresort`` entry point group through pluggy's
    ``load_setuptools_entrypoints``: all at once, and when one fails, the others one
    at a time (in the order ``importlib.metadata`` lists them).

    :param broken: where a plugin that fails to import or register is recorded (it
        is left out); ``None``: raise at once.
    :raises PluginLoadError: with ``broken=None``, naming the plugin.
    """
    try:  # the common case, all at once: one scan of the installed distributions
        pm.load_setuptools_entrypoints(PROJECT)
        return
    except Exception:  # noqa: BLE001 - found again below, one plugin at a time
        pass
    # pluggy stopped at the failing plugin: load the rest one by one (a registered one is
    # skipped by pluggy), recording each that fails
    names = dict.fromkeys(ep.name for ep in importlib.metadata.entry_points(group=PROJECT))
    for name in names:
        cause: Exception
        try:
            pm.load_setuptools_entrypoints(PROJECT, name=name)
            continue
        except pluggy.PluginValidationError as exc:
            stage, problems, cause = "register", [str(exc)], exc
        except Exception as exc:  # noqa: BLE001 - any failure of a vendor's import
            stage, cause = "import", exc
            problems = [f"could not import it: {type(exc).__name__}: {exc}"]
        error = PluginLoadError(plugin=name, problems=problems)
        error.__cause__ = cause
        if broken is None:
            raise error
        broken.append(BrokenPlugin(name=name, stage=stage, problems=tuple(problems), error=error))


def check_pending(pm: pluggy.PluginManager, broken: list[BrokenPlugin] | None) -> None:
    """pluggy's ``check_pending()``, leaving out (with ``broken`` given) each
    installed plugin with a misspelt hook name.

    :raises pluggy.PluginValidationError: for the default or an explicit plugin, or
        any plugin when ``broken`` is ``None``.
    """
    installed = {name for p, _ in pm.list_plugin_distinfo() if (name := pm.get_name(p))}
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin)
            if broken is None or name is None or name not in installed:
                raise
            pm.unregister(exc.plugin)
            problems = (str(exc),)
            error = PluginLoadError(plugin=name, problems=problems)
            broken.append(BrokenPlugin(name=name, stage="register", problems=problems, error=error))


def _protocols(result: object) -> list[Protocol] | None:
    """A plugin's answer to ``lastresort_protocols`` as a list, or ``None`` if it is
    not a list of protocols."""
    if isinstance(result, str | bytes | Protocol) or not isinstance(result, Iterable):
        return None
    found = list(result)
    return found if all(isinstance(p, Protocol) for p in found) else None


#: Makes the check of one protocol (its problems) as the engine makes it, with the
#: plugins registered now (guard names are asked when it is made).
Checker = Callable[[], Callable[[Protocol], list[str]]]


def _find_broken(hooks: Hooks, candidates: set[str], checker: Checker | None) -> list[BrokenPlugin]:
    """The plugins among ``candidates`` that cannot be used as things stand (only
    their delivery scopes when ``checker`` is ``None``)."""
    from .plugins import PluginFailed

    out: dict[str, BrokenPlugin] = {}

    def leave_out(name: str, stage: str, exc: BaseException, pids: Iterable[str] = ()) -> None:
        if name in candidates and name not in out:
            problems = tuple(_describe(exc))
            error = _error(name, exc)
            out[name] = BrokenPlugin(
                name=name, stage=stage, problems=problems, protocols=tuple(pids), error=error
            )

    given, failed = ([], []) if checker is None else hooks.collect("lastresort_protocols")
    for name, exc in failed:
        leave_out(name, "protocols", exc)
    by_plugin: dict[str, list[Protocol]] = {}
    owners: dict[str, list[str]] = {}
    for name, result in given:
        protocols = _protocols(result)
        if protocols is None:
            problem = (
                f"lastresort_protocols returned {type(result).__name__},"
                " expected a list of lastresort.Protocol"
            )
            leave_out(name, "protocols", PluginLoadError(plugin=name, problems=[problem]))
            continue
        by_plugin.setdefault(name, []).extend(protocols)
        for protocol in protocols:
            owners.setdefault(protocol.id, []).append(name)
    for pid, names in owners.items():
        if len(names) > 1:
            both = " and ".join(repr(n) for n in names)
            problem = f"$.protocol.id: protocol id {pid!r} is provided by both {both}"
            for name in names:
                pids = [p.id for p in by_plugin[name]]
                leave_out(name, "collision", ProtocolError(problems=[problem]), pids)
    problems_of = None
    if checker is not None and not out:
        try:
            with hooks.blaming():
                problems_of = checker()
        except PluginFailed as failure:  # lastresort_guard_names raised
            leave_out(failure.plugin, "validation", failure.error)
            if failure.plugin not in candidates:
                raise failure.error from failure
    for name, protocols in by_plugin.items():
        if name not in candidates or name in out or problems_of is None:
            continue
        pids = [p.id for p in protocols]
        for protocol in protocols:
            try:
                with hooks.blaming():
                    problems = problems_of(protocol)
            except PluginFailed as failure:
                # a validator (or a property) of some plugin raised: that plugin is broken
                theirs = [p.id for p in by_plugin.get(failure.plugin, [])]
                leave_out(failure.plugin, "validation", failure.error, theirs)
                if failure.plugin in candidates:
                    break
                raise failure.error from failure
            except PluginLoadError as exc:  # lastresort_protocol_properties gave garbage
                culprit = exc.plugin or name
                leave_out(culprit, "validation", exc, [p.id for p in by_plugin.get(culprit, [])])
                if culprit in candidates:
                    break
                raise
            if problems:
                lines = [f"protocol {protocol.id!r}: {p}" for p in problems]
                error = ProtocolError(problems=lines, source=protocol.id)
                leave_out(name, "validation", error, pids)
                break
    try:
        hooks.delivery_scopes()
    except PluginLoadError as exc:
        name = exc.plugin or ""
        leave_out(name, "delivery", exc, [p.id for p in by_plugin.get(name, [])])
        if name not in candidates:
            raise
    return list(out.values())


def leave_out_broken(
    hooks: Hooks,
    checker: Checker | None,
    broken: list[BrokenPlugin],
) -> None:
    """Unregister, and record in ``broken``, every installed plugin whose protocols or
    hooks cannot be used, until the rest can: leaving one out can make another's
    protocol unusable (a guard only it answered), so this repeats until nothing
    changes (at most once per installed plugin).

    :param checker: makes the check of one protocol (validation, guards, and the
        verifier in strict mode) as the engine makes it; ``None`` when the engine
        runs protocols given to it (the installed protocols are not asked for, and
        only the delivery scopes are checked).
    """
    for _ in range(len(hooks.installed()) + 1):
        candidates = hooks.installed() - {b.name for b in broken}
        found = _find_broken(hooks, candidates, checker)
        if not found:
            return
        for plugin in found:
            hooks.pm.unregister(name=plugin.name)
            broken.append(plugin)
