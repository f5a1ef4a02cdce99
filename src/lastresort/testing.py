"""Opt-in helpers for tests of protocols and plugins (public API).

Use them from your plugin's tests::

    from lastresort.testing import make_engine, walk_happy_path

    def test_happy_path():
        engine, clock = make_engine(plugins=[my_plugin])
        encounter = walk_happy_path(engine, "my-city")
        assert engine.get(encounter.id).closed

It is also a pytest plugin (this part needs pytest): enabled with
``-p lastresort.testing`` or ``pytest_plugins = ["lastresort.testing"]`` in a
``conftest.py``, pytest collects every ``*.scenario.toml`` file as a test that runs
the scenario (see ``docs/scenarios.md``), recording deliveries unless
``--real-delivery`` is given, and offers the fixture ``recording_delivery``: a
:class:`RecordingDelivery` that replaces every delivery of the engines the test
builds. pytest is imported only when it does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

from .clock import Clock, VirtualClock
from .engine.engine import Engine
from .engine.hookspecs import hookimpl
from .engine.recording import Attempt, RecordingDelivery, replacing_delivery
from .errors import InvalidArgument, ProtocolError
from .protocol.model import Actor, Encounter, Protocol
from .scenario.demo import DEMO_START, actor_for, happy_path
from .store.base import Store
from .store.memory import MemoryStore
from .verifier.verification import Property, Report, render_path, verify

if TYPE_CHECKING:
    import pytest

__all__ = [
    "HANG",
    "Attempt",
    "GuardPlugin",
    "Received",
    "RecordingDelivery",
    "Reply",
    "WebhookReceiver",
    "assert_protocol_safe",
    "engine_for",
    "make_engine",
    "pseudonymous",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "replacing_delivery",
    "snapshot",
    "walk_happy_path",
    "webhook_receiver",
    "with_guard",
]


def snapshot(engine: Engine, encounter_id: str) -> tuple[Any, ...]:
    """Everything stored about one encounter — the record, its timeline, its pending
    deadlines and its outbox — to prove that a refused call changed nothing::

        before = snapshot(engine, encounter.id)
        with pytest.raises(lr.NotPermitted):
            engine.fire(encounter.id, "expert_takes_over", Actor("counter", "clerk-07"))
        assert snapshot(engine, encounter.id) == before

    :param engine: the engine holding the encounter.
    :param encounter_id: the encounter.
    """
    return (
        engine.get(encounter_id),
        engine.timeline(encounter_id),
        engine.deadlines(encounter_id),
        engine.outbox(encounter_id),
    )


def make_engine(
    protocols: Iterable[Protocol] | None = None,
    plugins: Iterable[object] = (),
    start: datetime = DEMO_START,
    entry_points: bool = False,
) -> tuple[Engine, VirtualClock]:
    """An engine on a :class:`MemoryStore` and a :class:`VirtualClock` at ``start``
    (a Monday morning in Amsterdam), without installed plugins unless asked.

    :param protocols: the protocols to run (default: every protocol the plugins provide).
    :param plugins: plugin objects or modules to register (your plugin module).
    :param start: the virtual clock's start, timezone-aware.
    :param entry_points: also load plugins installed under the ``lastresort`` group.

    :returns: the engine and its clock (advance the clock, then ``engine.tick()``).
    """
    clock = VirtualClock(start)
    engine = Engine(
        protocols=protocols,
        plugins=plugins,
        store=MemoryStore(),
        clock=clock,
        entry_points=entry_points,
    )
    return engine, clock


def engine_for(
    protocol: Protocol,
    plugins: Iterable[object] = (),
    *,
    clock: Clock | None = None,
    store: Store | None = None,
) -> Engine:
    """An engine running only ``protocol``, with only ``plugins`` (no installed
    plugins), on ``clock`` and ``store``::

        engine = engine_for(with_guard(protocol, "inform_mayor"), [GuardPlugin("not yet")])

    :param protocol: the one protocol the engine runs.
    :param plugins: plugin objects or modules to register.
    :param clock: the clock (default: a :class:`VirtualClock` at a Monday morning).
    :param store: the store (default: a new :class:`MemoryStore`).
    """
    return Engine(
        protocols=[protocol],
        plugins=plugins,
        store=store if store is not None else MemoryStore(),
        clock=clock if clock is not None else VirtualClock(DEMO_START),
        entry_points=False,
    )


def with_guard(protocol: Protocol, event: str, guard: str = "child_consents") -> Protocol:
    """``protocol`` with the named ``guard`` on every transition of ``event`` (the guard's
    answer then comes from a plugin, such as :class:`GuardPlugin`).

    :raises InvalidArgument: when ``protocol`` has no transition for ``event``.
    """
    if not any(t.event == event for t in protocol.transitions):
        raise InvalidArgument(
            call="with_guard",
            argument="event",
            problem=f"the event of a transition of {protocol.id!r}",
        )
    return attrs.evolve(
        protocol,
        transitions=[
            attrs.evolve(t, guard=guard) if t.event == event else t for t in protocol.transitions
        ],
    )


class GuardPlugin:
    """A plugin that declares the guard ``name`` and answers it with :attr:`answer`:
    ``None`` allows, a string refuses with that reason, an exception is raised (a
    crashing plugin). Change :attr:`answer` at any time; :attr:`calls` records each
    question as ``(guard, event, actor role)``.

    :param answer: the answer to give.
    :param name: the guard's name, as in the protocol's ``guard = "..."``.
    """

    def __init__(self, answer: str | BaseException | None = None, name: str = "child_consents"):
        self.answer = answer
        self.name = name
        self.calls: list[tuple[str, str, str]] = []

    @hookimpl
    def lastresort_guard_names(self) -> list[str]:
        """The one guard this plugin answers."""
        return [self.name]

    @hookimpl
    def lastresort_guard(self, name: str, event: str, actor: Actor) -> str | None:
        """:attr:`answer` for this plugin's guard; ``None`` (no opinion) for others."""
        if name != self.name:
            return None
        self.calls.append((name, event, actor.role))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def pseudonymous(actor: Actor | str, number: int = 1) -> Actor:
    """An actor that may open or fire, for tests: every actor but the clock must carry a
    pseudonymous id. A role key (or an :class:`Actor` without an id) gets the id
    ``test:<role>:<number>``; an :class:`Actor` with an id, and the clock, are returned
    as they are."""
    who = Actor.of(actor)
    if who.id is not None or who.role == "clock":
        return who
    return Actor(who.role, f"test:{who.role}:{number}")


def walk_happy_path(
    engine: Engine,
    protocol_id: str,
    facts: dict[str, str | bool] | None = None,
) -> Encounter:
    """Open an encounter and fire, with the right actor, every event of the
    protocol's happy path (see :func:`lastresort.scenario.demo.happy_path`) to a closing step.

    :param engine: the engine to drive (e.g. from :func:`make_engine`).
    :param protocol_id: the protocol to walk.
    :param facts: facts for the encounter (declared facts only).

    :returns: the encounter after the last event.
    :raises AssertionError: when the protocol has no path to a closing step.
    :raises LastResortError: when the engine refuses a step (e.g. a guard).
    """
    protocol = engine.protocol(protocol_id)
    path = happy_path(protocol)
    assert path, f"protocol {protocol_id!r} has no path to a closing step"
    opener = protocol.steps[protocol.initial].responsible or next(iter(protocol.parties))
    encounter = engine.open(protocol_id, pseudonymous(opener), facts=facts)
    for state, transition in path:
        role = actor_for(protocol, state, transition)
        engine.fire(encounter.id, transition.event, pseudonymous(role))
    return engine.get(encounter.id)


def assert_protocol_safe(
    protocol: Protocol,
    extra_properties: Iterable[Property] = (),
    plugins: Iterable[object] = (),
) -> Report:
    """Assert that ``protocol`` passes every safety property of the verifier.

    :param extra_properties: further properties to check.
    :param plugins: plugin objects or modules whose ``lastresort_protocol_properties``
        are checked as well (installed plugins are not loaded).
    :returns: the report, for further assertions (e.g. on ``report.bounds``).
    :raises AssertionError: listing each failing property with its message and
        counterexample path, or the problems that make the protocol unusable.
    """
    from .engine.plugins import Hooks, make_plugin_manager

    extra = [
        *extra_properties,
        *Hooks(make_plugin_manager(plugins, False)).protocol_properties(protocol),
    ]
    try:
        report = verify(protocol, extra)
    except ProtocolError as exc:
        listed = "\n".join(f"  - {p}" for p in exc.problems)
        raise AssertionError(f"protocol {protocol.id!r} is unusable:\n{listed}") from exc
    if not report.ok:
        lines = []
        for r in report.failed:
            lines.append(f"  ✗ {r.name}: {r.message}")
            if r.counterexample:
                lines.append(f"      counterexample: {render_path(r.counterexample)}")
        raise AssertionError(
            f"protocol {protocol.id!r} fails {len(report.failed)} safety"
            f" propert{'y' if len(report.failed) == 1 else 'ies'}:\n" + "\n".join(lines)
        )
    return report


def pytest_addoption(parser: pytest.Parser) -> None:
    """pytest hook: ``--real-delivery`` lets scenario items deliver through the
    installed delivery plugins (they page for real) instead of recording."""
    parser.addoption(
        "--real-delivery",
        action="store_true",
        default=False,
        help="lastresort scenarios: deliver through the installed delivery plugins",
    )


def pytest_configure(config: pytest.Config) -> None:
    """pytest hook: register the fixtures (``recording_delivery``)."""
    from .scenario import pytest_plugin

    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "lastresort.scenario.pytest_plugin")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """pytest hook: collect a ``*.scenario.toml`` file as a test of its scenario.

    A failing step is reported with the scenario's diff and timeline; an unusable
    file is a collection error listing every problem with its path.
    """
    if not file_path.name.endswith(".scenario.toml"):
        return None
    from .scenario.pytest_plugin import ScenarioFile

    file: pytest.Collector = ScenarioFile.from_parent(parent, path=file_path)
    return file


# -- a webhook receiver for delivery plugins' tests -------------------------------------
#
# A real HTTP server in a thread, for tests of plugins that deliver over HTTP (see
# plugins/cloudevents and plugins/zgw-notificaties): it answers each POST with the next
# scripted reply and records what it was sent.
@frozen
class Reply:
    """One scripted answer: a status and headers; ``hang`` blocks the answer until
    the receiver is closed (a receiver that never answers)."""

    status: int = 202
    headers: Mapping[str, str] = field(factory=dict)
    hang: bool = False


#: a reply that never comes: the receiver holds the request until it is shut down
HANG = Reply(hang=True)


@frozen
class Received:
    """One POST a :class:`WebhookReceiver` was sent (header names in lowercase)."""

    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, parsed as JSON."""
        return json.loads(self.body)


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 (a free port; its base URL is ``url``) for
    tests of delivery plugins: each POST gets the next of ``replies``, ``202`` when they
    run out, and is recorded in ``received``. Use :func:`webhook_receiver`."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.hanging = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = receiver.replies.pop(0) if receiver.replies else Reply()
                if reply.hang:
                    receiver.hanging.set()
                    receiver.closing.wait()
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self) -> list[Any]:
        """The JSON bodies received, in order."""
        with self.lock:
            return [r.json() for r in self.received]


@contextmanager
def webhook_receiver(*replies: Reply) -> Iterator[WebhookReceiver]:
    """A running :class:`WebhookReceiver`, shut down (and any hanging answer released) after."""
    made = WebhookReceiver(list(replies))
    thread = threading.Thread(
        target=made.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield made
    finally:
        made.closing.set()
        made.server.shutdown()
        made.server.server_close()
        thread.join(10)
        assert not thread.is_alive()
