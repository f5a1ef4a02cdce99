"""The plugin contract: every hook lastresort calls, with its exact signature.

A plugin is any object or module with functions marked ``@hookimpl`` and named
like the hooks below. Implementations may accept a subset of a hook's arguments.
Hook arguments only ever grow; none is renamed or removed.

Call order: pluggy calls implementations last-registered first. lastresort
registers its default plugins first (marked ``trylast``), then the plugins found
under the ``lastresort`` entry point group, then the plugins given to
:class:`lastresort.Engine`, so an explicit plugin is asked before an installed
one, and both before the defaults.

pluggy's contract holds: every hook is called through ``pm.hook``, so
``wrapper=True`` (and old-style ``hookwrapper=True``) implementations, ``tryfirst``
and ``trylast`` are honoured for every hook (``lastresort_on_event`` keeps each
implementation isolated: see there).

Threads: no hook is called while lastresort holds a lock, and a hook called by a
running engine may call the engine again (see docs/embedding.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ..events import Event
    from ..outbox import Notification
    from ..protocol.model import Actor, Encounter, Party, Protocol
    from ..verifier.verification import Property

__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "lastresort_deliver",
    "lastresort_delivers_for",
    "lastresort_guard",
    "lastresort_guard_names",
    "lastresort_on_event",
    "lastresort_party_directory",
    "lastresort_protocol_properties",
    "lastresort_protocols",
    "lastresort_validate_protocol",
]

#: The pluggy project name, and the entry point group plugins register under.
PROJECT = "lastresort"

#: Marks a function in this module as a hook specification (the contract side).
hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a plugin's function as an implementation of the hook of the same name.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def lastresort_protocols() -> Sequence[Protocol]:
    """Return the protocols this plugin provides.

    Called once when an :class:`~lastresort.Engine` is built (and by the CLI to list
    installed protocols). Every implementation is called; the results are merged.
    Two plugins providing the same protocol id is an error (:class:`ProtocolError`)
    naming both; two *installed* plugins are both left out instead, as is an installed
    plugin whose implementation raises or returns something else than protocols (see
    :attr:`lastresort.Engine.broken_plugins`), unless ``strict_plugins=True``.
    Each protocol is validated (including :func:`lastresort_validate_protocol`)
    before the engine accepts it.

    :returns: a list of :class:`~lastresort.Protocol` values, usually made with
        :func:`lastresort.load_protocol` from a data file in the plugin's package.
    """
    raise NotImplementedError


@hookspec
def lastresort_validate_protocol(protocol: Protocol) -> Sequence[str]:
    """Return extra problems with ``protocol`` (empty when there are none).

    Called for every protocol the engine accepts, after the core's structural
    checks, and by ``lastresort check``. Every implementation is called; all
    problems are reported together in one :class:`ProtocolError`.

    :param protocol: the protocol being checked.
    :returns: problem strings, each ``"<path>: <what is wrong>"``.
    """
    raise NotImplementedError


@hookspec
def lastresort_guard_names() -> Sequence[str]:
    """Return the guard names this plugin answers in :func:`lastresort_guard`.

    Called when the engine accepts protocols: a protocol whose transition names a
    guard that no plugin declares is refused, so a misspelt guard can never be
    silently allowed. Every implementation is called; the results are merged.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def lastresort_guard(name: str, encounter: Encounter, event: str, actor: Actor) -> str | None:
    """Decide a named guard of a transition.

    Called by :meth:`Engine.fire` for each candidate transition with a ``guard``,
    after the actor's permission was checked and before anything is written, outside
    any lock: a guard may take its time (it delays only its own ``fire``) and may
    call the engine. A guard that fires its own encounter makes the outer ``fire``
    raise :class:`ConcurrentUpdate` (the nested step is committed, the outer one
    writes nothing). Stops at the first implementation that returns something other
    than ``None``.

    :param name: the transition's ``guard`` value.
    :param encounter: the encounter as it is now (frozen).
    :param event: the event being fired.
    :param actor: who fires it.
    :returns: ``None`` to allow, or a reason (a string) to refuse: the engine then
        raises :class:`GuardRefused` with that reason and changes nothing. An
        exception raised here also changes nothing; it reaches the caller as it is.
    """
    raise NotImplementedError


@hookspec
def lastresort_on_event(event: Event, encounter: Encounter) -> None:
    """Observe an event after it has been committed.

    Called for every event returned by :meth:`Engine.open`, :meth:`Engine.fire`,
    :meth:`Engine.tick` and :meth:`Engine.deliver`, in order, after the commit.
    Every implementation is called, each isolated: one that raises (an observer, or
    a ``wrapper=True``/``hookwrapper=True`` implementation around them) is logged and
    reported as an :class:`ObserverFailed` event naming its plugin in the returned
    list, and the others still run; a wrapper sees the list of results, never an
    observer's exception. The committed step is never undone. An observer may call
    the engine (it runs after the commit, outside any lock).

    :param event: the committed event.
    :param encounter: the encounter after the commit.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def lastresort_deliver(notification: Notification) -> str | None:
    """Deliver one outbox notification (pager, SMS, e-mail, a ZGW notification).

    Called by :meth:`Engine.deliver` for each notification that is due, at least
    once per notification (delivery may repeat after a crash: use
    ``notification.key`` as the idempotency key). Stops at the first implementation
    that returns something other than ``None``. The default plugin, called last,
    logs the notification (it carries no data about the child) and returns ``"log"``.

    :param notification: what to deliver, to which party; ids and event names only.
    :returns: a short receipt (e.g. a provider's message id) when delivered.
        Raise to report a failure: the notification is retried with exponential
        backoff, and the encounter is never changed by it. Raise
        :class:`~lastresort.DeliveryRefused` when retrying cannot help (it is
        dead-lettered and escalated at once), :class:`~lastresort.DeliveryDeferred`
        with ``retry_after`` to pass on the receiver's ``Retry-After``.
        It is called only for the protocols its plugin names in
        :func:`lastresort_delivers_for`; return ``None`` for parties it does not serve.
    """
    raise NotImplementedError


@hookspec
def lastresort_delivers_for() -> Sequence[str]:
    """Say which protocols this plugin's :func:`lastresort_deliver` delivers for.

    Called when an :class:`~lastresort.Engine` is built and again after plugins are
    registered or removed. Every implementation is called; a plugin's answers are
    merged. Its ``lastresort_deliver`` (and a ``wrapper=True`` implementation of it)
    is then called only for notifications whose ``protocol`` it names: for the
    others it is not called at all, so it can neither page nor give a receipt.
    An installed plugin that implements ``lastresort_deliver`` must implement this
    hook (it is left out as broken otherwise); a plugin passed to
    ``Engine(plugins=[...])`` without it delivers for every protocol of that engine.

    :returns: protocol ids, or ``["*"]`` for every protocol (a channel such as a
        generic webhook). An id no protocol has matches nothing.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def lastresort_party_directory(protocol: Protocol, party: Party, at: datetime) -> str | None:
    """Say who is on duty for a role at a moment.

    Called by :meth:`Engine.deliver` to address a notification (the answer is set
    as ``notification.contact``) and by :meth:`Engine.on_duty`. Stops at the first
    implementation that returns something other than ``None``.

    :param protocol: the protocol the party belongs to.
    :param party: the role.
    :param at: the moment (timezone-aware).
    :returns: an address or identifier of the person or desk on duty (never data
        about the child), or ``None`` when this plugin does not know.
    """
    raise NotImplementedError


@hookspec
def lastresort_protocol_properties(protocol: Protocol) -> Sequence[Property]:
    """Return extra safety properties the verifier checks for ``protocol``.

    Called by :meth:`lastresort.Engine` when ``strict=True`` (for every protocol
    it accepts), by ``lastresort check`` and by
    :func:`lastresort.testing.assert_protocol_safe` (with ``plugins=``). Every
    implementation is called; the results are merged and checked after the core
    properties. A name that is already taken (by the core or another plugin) is a
    :class:`PluginLoadError`.

    :param protocol: the protocol being verified; return an empty list for the
        protocols your plugin has nothing to say about.
    :returns: :class:`lastresort.Property` values, each with a stable ``name``, a
        one-line ``rule`` and a ``check(protocol)`` returning every
        :class:`lastresort.Violation` (none when it holds).
    """
    raise NotImplementedError


@hookspec
def lastresort_closing_days(protocol: Protocol, year: int) -> Sequence[date]:
    """Return the local closing days of ``year`` on which ``protocol``'s working days
    (``"2wd"`` deadlines) do not count, besides weekends and Dutch public holidays.

    Called by the engine the first time it counts working days in ``year`` for
    ``protocol`` (the answer is kept for the engine's life), and by the verifier
    when it is given the plugins (``lastresort check`` with installed plugins).
    Every implementation is called; the days are merged. A hook that raises or returns
    anything but dates is a :class:`~lastresort.PluginLoadError` naming the plugin,
    and the call that needed the calendar changes nothing.

    :param protocol: the protocol whose calendar is built; return an empty list for the
        protocols your plugin has nothing to say about.
    :param year: the calendar year asked for; days of other years are ignored.
    :returns: :class:`datetime.date` values (not datetimes), e.g. a town hall's
        closing day between Christmas and New Year.
    """
    raise NotImplementedError
