"""One error style (issue 13): every error class of lastresort is defined in
lastresort.errors, takes keyword-only fields (``None`` where one does not apply, never a
``"-"`` placeholder), knows its HTTP-like category, pickles with its fields, and never
repeats a child's data."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import lastresort as lr
from lastresort import errors
from lastresort.errors import Category, LastResortError

#: a citizen service number (passes the 11-check) and a name: never in an error
BSN = "111222333"
NAME = "Jan de Vries"


def _import_every_module() -> None:
    """Import every module of lastresort, so that a class defined anywhere is seen."""
    for info in pkgutil.walk_packages(lr.__path__, "lastresort."):
        if info.name.endswith(".__main__"):  # runs the command when imported
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra that is not installed
            if exc.name is None or exc.name.startswith("lastresort"):
                raise


def _subclasses(cls: type[LastResortError]) -> Iterator[type[LastResortError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


_import_every_module()
#: every error class of the library (tests may define their own: not counted)
LIBRARY = sorted(
    {c for c in _subclasses(LastResortError) if c.__module__.startswith("lastresort")}
    | {LastResortError},
    key=lambda c: c.__name__,
)
RAISED = [c for c in LIBRARY if c is not LastResortError]

#: every field given, for each class (optional fields given a value too)
FULL: dict[type[LastResortError], dict[str, Any]] = {
    errors.ProblemsError: {"problems": ["$.a: wrong", "$.b: missing"], "source": "a.toml"},
    errors.ProtocolError: {"problems": ["$.steps: empty"], "source": "p.toml"},
    errors.ScenarioError: {"problems": ["$.scenario.start: missing"], "source": "s.toml"},
    errors.SimulationConfigError: {"problems": ["$.arrivals: bad"], "source": "c.toml"},
    errors.SimulationAborted: {
        "problems": ["$.protocols.p: deadline d could not fire"],
        "source": "chunk 0 of seed 1",
    },
    errors.PluginLoadError: {"problems": ["bad hook"], "plugin": "amsterdam", "source": "ep"},
    errors.CatalogueError: {"problems": ["$.card.deadline: missing"], "source": "fy.toml"},
    errors.FactsRefused: {"protocol_id": "taskforce", "problems": ["unknown fact 'x'"]},
    errors.UnknownProtocol: {"protocol_id": "utrecht", "known": ["taskforce"]},
    errors.UnknownEncounter: {"encounter_id": "e1"},
    errors.TransitionNotAllowed: {
        "encounter_id": "e1",
        "step": "arrived",
        "event": "close",
        "allowed": ["call_expert"],
        "closed": False,
    },
    errors.NotPermitted: {
        "encounter_id": "e1",
        "step": "arrived",
        "event": "close",
        "actor": "counter",
        "allowed": ["mayor"],
        "reason": "handover to 'mayor'",
    },
    errors.GuardRefused: {
        "encounter_id": "e1",
        "step": "arrived",
        "event": "close",
        "guard": "child_consents",
        "reason": "no consent",
    },
    errors.ConcurrentUpdate: {"encounter_id": "e1", "expected": 2, "actual": 3},
    errors.DeadlineGone: {"encounter_id": "e1", "deadline_id": "d1", "expected": 4},
    errors.ActorRefused: {"problem": "a role key is lower-case letters"},
    errors.ChannelRefused: {
        "protocol_id": "taskforce",
        "allowed": ["counter", "phone"],
        "given": "str of 5 characters",
    },
    errors.InvalidArgument: {"call": "Engine.tick", "argument": "now", "problem": "aware"},
    errors.NewPluginError: {"problem": "plugin name 'X' is not lower-case"},
    errors.StoreError: {"problem": "db.sqlite: disk I/O error"},
    errors.ReportUnavailable: {"install": "pip install 'lastresort[report]'"},
}

#: the category of each class, as docs/embedding.md lists them
CATEGORY = {
    errors.ProblemsError: Category.INVALID,
    errors.ProtocolError: Category.INVALID,
    errors.ScenarioError: Category.INVALID,
    errors.SimulationConfigError: Category.INVALID,
    errors.SimulationAborted: Category.UNAVAILABLE,
    errors.PluginLoadError: Category.INVALID,
    errors.CatalogueError: Category.INVALID,
    errors.FactsRefused: Category.INVALID,
    errors.UnknownProtocol: Category.NOT_FOUND,
    errors.UnknownEncounter: Category.NOT_FOUND,
    errors.TransitionNotAllowed: Category.CONFLICT,
    errors.NotPermitted: Category.FORBIDDEN,
    errors.GuardRefused: Category.CONFLICT,
    errors.ConcurrentUpdate: Category.CONFLICT,
    errors.DeadlineGone: Category.CONFLICT,
    errors.ActorRefused: Category.FORBIDDEN,
    errors.ChannelRefused: Category.INVALID,
    errors.InvalidArgument: Category.INVALID,
    errors.NewPluginError: Category.INVALID,
    errors.StoreError: Category.UNAVAILABLE,
    errors.ReportUnavailable: Category.UNAVAILABLE,
}


def _required(cls: type[LastResortError]) -> dict[str, Any]:
    """Only the fields without a default: the optional ones stay ``None``/default."""
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in FULL[cls].items() if params[k].default is inspect.Parameter.empty}


def _placeholders(message: str) -> list[str]:
    """``-`` standing for a value: ``encounter -``, ``step '-'``, ``-,`` ... (a list's
    ``  - item`` bullets are not placeholders)."""
    text = "\n".join(line for line in message.splitlines() if not line.startswith("  - "))
    return re.findall(r"(?:^|[\s(])'?-'?(?=$|[\s,:;)])", text)


def test_the_placeholder_finder_finds_the_old_placeholders() -> None:
    assert _placeholders("encounter -, step '-': 'x' may not fire 'y'")
    assert _placeholders("encounter -: event 'x' is not allowed in step 'a'")
    assert not _placeholders("2 problems:\n  - $.a: bad\n  - $.b: bad")
    assert not _placeholders("facts refused: fact 'age_band' (allowed: 0-7, 8-11)")


def test_every_library_error_is_in_the_tables() -> None:
    assert set(RAISED) == set(FULL) == set(CATEGORY)
    # the walk sees the classes that used to live elsewhere
    assert {"PluginLoadError", "SimulationConfigError", "NewPluginError"} <= {
        c.__name__ for c in RAISED
    }


@pytest.mark.parametrize("cls", LIBRARY, ids=lambda c: c.__name__)
def test_every_error_is_defined_in_errors_and_listed_there(cls: type[LastResortError]) -> None:
    assert cls.__module__ == "lastresort.errors"
    assert cls.__name__ in errors.__all__
    assert cls.__name__ in (errors.__doc__ or "")


@pytest.mark.parametrize("cls", RAISED, ids=lambda c: c.__name__)
def test_every_error_takes_keyword_only_fields(cls: type[LastResortError]) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY] == []
    assert cls.fields() == tuple(p.name for p in params)
    with pytest.raises(TypeError):
        cls(*FULL[cls].values())
    err = cls(**FULL[cls])
    for name, value in FULL[cls].items():
        expected = list(value) if isinstance(value, list | tuple) else value
        assert getattr(err, name) == expected, name


@pytest.mark.parametrize("cls", RAISED, ids=lambda c: c.__name__)
def test_every_error_has_its_category(cls: type[LastResortError]) -> None:
    assert isinstance(cls.category, Category)
    # set by the class or a parent below the base, not the base's default
    below = cls.__mro__[: cls.__mro__.index(LastResortError)]
    assert any("category" in vars(k) for k in below)
    assert cls.category is CATEGORY[cls]
    assert cls(**FULL[cls]).category == CATEGORY[cls].value  # a str enum


@pytest.mark.parametrize("cls", RAISED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("which", ["full", "required"])
def test_every_error_pickles_with_its_fields(cls: type[LastResortError], which: str) -> None:
    err = cls(**(FULL[cls] if which == "full" else _required(cls)))
    err.__notes__ = ["a note"]
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err)
    assert back.args == err.args
    assert back.__dict__ == err.__dict__
    for name in cls.fields():
        assert getattr(back, name) == getattr(err, name), name
    assert back.category is cls.category


@pytest.mark.parametrize("cls", RAISED, ids=lambda c: c.__name__)
def test_no_placeholder_when_fields_are_none(cls: type[LastResortError]) -> None:
    err = cls(**_required(cls))
    params = inspect.signature(cls.__init__).parameters
    for name in cls.fields():
        if params[name].default is None:
            assert getattr(err, name) is None, name
    message = str(err)
    assert message.strip()
    assert _placeholders(message) == [], message
    assert "None" not in message


def test_category_is_public_and_a_str_enum() -> None:
    assert "Category" in lr.__all__
    assert lr.Category is Category
    assert "ProblemsError" in lr.__all__
    assert lr.ProblemsError is errors.ProblemsError
    assert [c.value for c in Category] == [
        "not_found",
        "forbidden",
        "conflict",
        "invalid",
        "unavailable",
    ]
    assert Category("conflict") is Category.CONFLICT
    assert f"{Category.CONFLICT}" == "conflict"


def test_old_import_paths_still_work() -> None:
    from lastresort.cli.new_plugin import NewPluginError
    from lastresort.engine.plugins import PluginLoadError
    from lastresort.simulate import SimulationConfigError
    from lastresort.simulate.report import ReportUnavailable

    assert lr.PluginLoadError is PluginLoadError is errors.PluginLoadError
    assert SimulationConfigError is errors.SimulationConfigError
    assert NewPluginError is errors.NewPluginError
    assert ReportUnavailable is errors.ReportUnavailable


def test_errors_with_problems_share_a_base_and_scenarios_are_not_protocols() -> None:
    carrying = {c for c in RAISED if "problems" in c.fields()}
    assert carrying == {c for c in RAISED if issubclass(c, errors.ProblemsError)}
    assert {lr.ProtocolError, lr.ScenarioError, lr.PluginLoadError, lr.FactsRefused} <= carrying
    assert not issubclass(lr.ScenarioError, lr.ProtocolError)
    assert not issubclass(errors.SimulationConfigError, lr.ProtocolError)
    assert not issubclass(lr.FactsRefused, lr.ProtocolError)


#: the fields that hold text a caller typed (an id asked for, an event, an actor): a
#: name or BSN typed into one is described, never repeated. Encounter ids elsewhere are
#: the store's own (the engine makes them); a protocol's id and its channels are its own.
CALLER_TEXT = {
    errors.UnknownProtocol: ("protocol_id",),
    errors.UnknownEncounter: ("encounter_id",),
    errors.TransitionNotAllowed: ("event",),
    errors.NotPermitted: ("event", "actor"),
}


@pytest.mark.parametrize("cls", list(CALLER_TEXT), ids=lambda c: c.__name__)
@pytest.mark.parametrize("secret", [BSN, NAME])
def test_a_childs_data_in_a_field_of_caller_text_is_never_repeated(
    cls: type[LastResortError], secret: str
) -> None:
    """Also after a pickle round trip (a worker's error shown by its parent)."""
    for name in CALLER_TEXT[cls]:
        err = cls(**{**FULL[cls], name: secret})
        assert getattr(err, name) == secret  # the field keeps it for the caller's code
        for shown in (str(err), str(pickle.loads(pickle.dumps(err)))):
            assert secret not in shown, shown


def test_the_engine_fills_fields_not_placeholders() -> None:
    clock = lr.VirtualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    engine = lr.Engine(store=lr.MemoryStore(), clock=clock, entry_points=False)
    with pytest.raises(lr.NotPermitted) as opening:
        engine.open(
            "taskforce", actor=lr.Actor("mayor_staff_of_nowhere", "mayor-staff-of-nowhere-1")
        )
    assert opening.value.encounter_id is None
    assert opening.value.step == engine.protocol("taskforce").initial
    assert opening.value.event == "open"
    assert _placeholders(str(opening.value)) == []
    with pytest.raises(lr.NotPermitted) as duty:
        engine.on_duty("taskforce", "nobody_here")
    assert (duty.value.encounter_id, duty.value.step, duty.value.event) == (None, None, "on_duty")
    assert duty.value.reason == "unknown party"
    assert _placeholders(str(duty.value)) == []
    assert str(duty.value).startswith("'nobody_here' may not fire 'on_duty' (unknown party)")

    enc = engine.open("taskforce", actor=lr.Actor("counter", "counter-1"))
    with pytest.raises(lr.NotPermitted) as refused:
        engine.fire(enc.id, "expert_takes_over", lr.Actor("counter", "counter-1"))
    assert refused.value.category is Category.FORBIDDEN
    assert refused.value.encounter_id == enc.id
    assert refused.value.allowed == ["expert"]
    with pytest.raises(lr.ConcurrentUpdate) as stale:
        engine.fire(
            enc.id,
            "call_expert",
            lr.Actor("counter", "counter-1"),
            expected_version=enc.version + 1,
        )
    assert (stale.value.expected, stale.value.actual) == (enc.version + 1, enc.version)
    assert stale.value.category is Category.CONFLICT
    with pytest.raises(lr.UnknownEncounter) as unknown:
        engine.get(BSN)
    assert unknown.value.category is Category.NOT_FOUND
    assert BSN not in str(unknown.value)


def test_a_compiled_machine_refuses_without_an_encounter() -> None:
    engine = lr.Engine(entry_points=False)
    taskforce = engine.protocol("taskforce")
    machine = engine._machine("taskforce")  # the compiled machine, wherever its module lives
    with pytest.raises(lr.TransitionNotAllowed) as refused:
        machine.step(taskforce.initial, "no_such_event")
    assert refused.value.encounter_id is None
    assert refused.value.step == taskforce.initial
    assert str(refused.value).startswith("event 'no_such_event' is not allowed in step ")
    assert _placeholders(str(refused.value)) == []


def test_a_plugin_that_cannot_be_registered_is_named_by_its_field() -> None:
    class Typo:
        @lr.hookimpl
        def lastresort_on_evnt(self, event: lr.Event) -> None:
            pass

    typo = Typo()
    with pytest.raises(lr.PluginLoadError) as info:
        lr.Engine(plugins=[typo], entry_points=False)
    # pluggy names an object plugin by its id unless given a name
    assert info.value.plugin == str(id(typo))
    assert str(info.value).startswith(f"plugin {str(id(typo))!r}: ")
    assert any("lastresort_on_evnt" in problem for problem in info.value.problems)
    assert info.value.category is Category.INVALID
    assert pickle.loads(pickle.dumps(info.value)).problems == info.value.problems


class _HostError(lr.StoreError):
    """An embedder's own subclass, in the old positional style."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(problem=f"{path}: the host's store is down")


class _HostKeywordError(lr.StoreError):
    """An embedder's own subclass in the keyword style, with a field of its own."""

    def __init__(self, *, problem: str, host: str) -> None:
        self.host = host
        super().__init__(problem=problem)


def test_an_embedders_subclass_pickles_in_either_style() -> None:
    old = pickle.loads(pickle.dumps(_HostError("db.sqlite")))
    assert (type(old), old.path, str(old)) == (
        _HostError,
        "db.sqlite",
        "db.sqlite: the host's store is down",
    )
    assert old.category is Category.UNAVAILABLE
    new = pickle.loads(pickle.dumps(_HostKeywordError(problem="down", host="h1")))
    assert (type(new), new.host, new.problem, str(new)) == (_HostKeywordError, "h1", "down", "down")
