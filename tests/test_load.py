"""Loading protocol files: round trips, every problem at once, and nothing but
ProtocolError escaping for any input (issue 2, items 3 and 6)."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lastresort as lr
from lastresort.privacy import forbidden_fact_term
from lastresort.protocol.conversion import format_duration, parse_duration
from lastresort.protocol.model import FactKind  # not re-exported by lastresort (reported)
from lastresort.protocol.validation import FORBIDDEN_FACTS

HERE = Path(__file__).parent
FOUNDATIONS = HERE / "protocols" / "foundations"
TASKFORCE = Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml"
DOCS = HERE.parent / "docs" / "protocol-format.md"

FIVE_MISTAKES = [
    "$.parties.expert.no_show: expected a number, got str '5%'",
    "$.steps.waiting.deadline.after: invalid duration '45 minutes'; use e.g. '45m', '2h',"
    " '10d', '1h30m' or ISO 8601 'PT45M'",
    "$.transitions[1].notfy: unknown key 'notfy' (did you mean 'notify'?)",
    "$.transitions[0].by[0]: unknown party 'clerk'",
    "$.transitions[3].to: unknown step 'closd' (did you mean 'closed'?)",
]


def minimal() -> dict[str, Any]:
    """A fresh copy of the minimal sound protocol, as data."""
    return tomllib.loads((FOUNDATIONS / "minimal.toml").read_text(encoding="utf-8"))


def problems_of(data: Any) -> list[str]:
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    return caught.value.problems


def assert_toml_compatible(value: Any, path: str = "$") -> None:
    """Only what TOML can hold: str, int, float, bool, lists and tables with str keys."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{path}: key {key!r} is not a string"
            assert_toml_compatible(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_toml_compatible(item, f"{path}[{i}]")
    else:
        assert type(value) in {str, int, float, bool}, f"{path}: {type(value).__name__} {value!r}"


# -- round trips ------------------------------------------------------------------


def test_reference_protocol_round_trips_unchanged() -> None:
    protocol = lr.load_protocol(TASKFORCE)
    dumped = lr.dump_protocol(protocol)
    assert_toml_compatible(dumped)
    again = lr.load_protocol(dumped)
    assert again == protocol
    assert lr.dump_protocol(again) == dumped
    # written out as TOML and read back
    assert lr.load_protocol(tomllib.loads(tomli_w.dumps(dumped))) == protocol


def _leaves(value: Any, prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(value, dict):
        found: dict[tuple[Any, ...], Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, (*prefix, key)))
        return found
    return {prefix: value}


def test_reference_protocol_dump_is_the_file_minus_default_values() -> None:
    raw = tomllib.loads(TASKFORCE.read_text(encoding="utf-8"))
    protocol = lr.load_protocol(raw)
    # a dump writes a party group ("@mayors_office") as the parties it stands for
    groups = raw.pop("groups", {})
    for transition in raw["transitions"]:
        for key in ("by", "notify"):
            if key in transition:
                transition[key] = [
                    member
                    for role in transition[key]
                    for member in (groups[role[1:]] if role.startswith("@") else [role])
                ]
    assert lr.load_protocol(raw) == protocol
    dumped, written = _leaves(lr.dump_protocol(protocol)), _leaves(raw)
    # everything dumped is written in the file, with the same value
    assert {path: written.get(path) for path in dumped} == dumped
    # what the dump leaves out is a default: removing it from the file changes nothing
    left_out = [path for path in written if path not in dumped]
    assert left_out, "the reference protocol writes some defaults out (hours = 'always')"
    for path in left_out:
        data = copy.deepcopy(raw)
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        assert lr.load_protocol(data) == protocol, path


def test_round_trip_through_a_json_file(tmp_path: Path) -> None:
    protocol = lr.load_protocol(TASKFORCE)
    path = tmp_path / "taskforce.json"
    path.write_text(json.dumps(lr.dump_protocol(protocol)), encoding="utf-8")
    assert lr.load_protocol(path) == protocol


def test_loading_does_not_change_the_mapping_given() -> None:
    data = minimal()
    before = copy.deepcopy(data)
    lr.load_protocol(data)
    assert data == before
    broken = minimal()
    broken["steps"]["arrived"]["kind"] = "busy"
    before = copy.deepcopy(broken)
    problems_of(broken)
    assert broken == before


def test_loaded_protocol_is_frozen() -> None:
    protocol = lr.load_protocol(minimal())
    with pytest.raises(AttributeError):
        protocol.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        protocol.steps["new"] = protocol.steps["arrived"]  # type: ignore[index]
    assert protocol.steps["arrived"].key == "arrived"
    assert protocol.parties["counter"].key == "counter"


# -- a strategy for valid protocols -------------------------------------------------

_name = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
_text = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
_bilingual = st.fixed_dictionaries({"nl": _text, "en": _text})
_positive = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=60))
#: a deadline is at least a minute (validation: MIN_DEADLINE)
_deadline_after = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=60))
_HOURS = [
    "always",
    "24/7",
    "mon-fri 08:00-18:00",
    "daily 22:00-06:00",
    "sat 10:00-14:00, sun 12:00-24:00",
    "fri-mon 00:00-24:00",
]


def _duration_text(draw: st.DrawFn, delta: timedelta) -> str:
    """Write a duration in one of the accepted spellings."""
    compact = format_duration(delta)
    if delta.microseconds:
        return compact
    seconds = int(delta.total_seconds())
    return draw(st.sampled_from([compact, f"PT{seconds}S", f"{seconds}s"]))


@st.composite
def valid_protocols(draw: st.DrawFn) -> dict[str, Any]:
    """A random protocol that satisfies every validation rule, as file data."""
    party_names = draw(st.lists(_name, min_size=1, max_size=4, unique=True))
    party_keys = [f"p_{n}" for n in party_names]
    emergency = "p_emergency_line"
    parties: dict[str, Any] = {}
    kinds = ["municipal_staff", "expert", "mayor", "emergency", "escalation"]
    for key in [*party_keys, emergency]:
        party: dict[str, Any] = {
            "name": draw(_bilingual),
            "kind": "emergency" if key == emergency else draw(st.sampled_from(kinds)),
        }
        if draw(st.booleans()):
            party["hours"] = draw(st.sampled_from(_HOURS))
        if draw(st.booleans()):
            median = draw(_positive)
            p90 = median + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=5)))
            party["response"] = {
                "median": _duration_text(draw, median),
                "p90": _duration_text(draw, p90),
            }
        if draw(st.booleans()):
            party["no_show"] = draw(st.floats(min_value=0.0, max_value=1.0))
        if draw(st.booleans()):
            party["capacity"] = draw(st.integers(min_value=1, max_value=50))
        parties[key] = party
    roles = [*party_keys, emergency]

    n = draw(st.integers(min_value=1, max_value=6))
    active = [f"s_{i}" for i in range(n)]
    closing = [f"end_{i}" for i in range(draw(st.integers(min_value=1, max_value=2)))]
    emergency_step = "with_emergency"
    steps: dict[str, Any] = {}
    transitions: list[dict[str, Any]] = []
    event_no = iter(range(10_000))

    def some(items: list[str], min_size: int = 1) -> list[str]:
        return draw(st.lists(st.sampled_from(items), min_size=min_size, max_size=3, unique=True))

    for i, key in enumerate(active):
        kind = draw(st.sampled_from(["active", "waiting"]))
        step: dict[str, Any] = {
            "responsible": draw(st.sampled_from(party_keys)),
            "kind": kind,
            "instructions": draw(_bilingual),
        }
        if draw(st.booleans()):
            step["tags"] = draw(st.lists(_name, max_size=3))
        if kind == "waiting" or draw(st.booleans()):
            event = f"e_deadline_{i}"
            after = _duration_text(draw, draw(_deadline_after))
            step["deadline"] = {"after": after, "event": event}
            transitions.append(
                {
                    "event": event,
                    "from": [key],
                    "to": draw(st.sampled_from([*active, *closing, emergency_step])),
                    "by": ["clock", *some(roles, 0)],
                }
            )
        steps[key] = step
        # reach every step from an earlier one, so all are reachable from s_0
        if i > 0:
            transitions.append(
                {
                    "event": f"e_{next(event_no)}",
                    "from": [draw(st.sampled_from(active[:i]))],
                    "to": key,
                    "by": some(roles),
                }
            )
    for key in closing:
        step = {"kind": "terminal", "instructions": draw(_bilingual)}
        if draw(st.booleans()):
            step["responsible"] = draw(st.sampled_from(party_keys))
        steps[key] = step
        transitions.append(
            {"event": f"e_{next(event_no)}", "from": some(active), "to": key, "by": some(roles)}
        )
    steps[emergency_step] = {
        "responsible": emergency,
        "kind": "terminal",
        "tags": ["emergency"],
        "instructions": draw(_bilingual),
    }
    # extra transitions, sometimes one event twice from a step with distinct guards
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        event = f"e_{next(event_no)}"
        source = draw(st.sampled_from(active))
        guarded = draw(st.booleans())
        for guard in ["g_one", "g_two"] if guarded else [None]:
            transition: dict[str, Any] = {
                "event": event,
                "from": source if draw(st.booleans()) else [source],
                "to": draw(st.sampled_from(list(steps))),
                "by": some(roles),
            }
            if guard is not None:
                transition["guard"] = guard
            if draw(st.booleans()):
                transition["notify"] = some(roles)
            transitions.append(transition)
    transitions.append(
        {"event": "acute_danger", "from": "*", "to": emergency_step, "by": some(roles)}
    )
    transitions = draw(st.permutations(transitions))

    facts: dict[str, Any] = {}
    for fact in draw(st.lists(_name, max_size=3, unique=True)):
        key = f"f_{fact}"
        if forbidden_fact_term(key) is not None:  # e.g. f_name: refused, and rightly
            continue
        facts[key] = draw(st.just("bool") | st.lists(_text, min_size=1, max_size=4, unique=True))
    header = {
        "id": draw(_name),
        "version": draw(_text),
        "municipality": draw(_text),
        "title": draw(_bilingual),
        "initial": active[0],
        "source": draw(_text),
    }
    if draw(st.booleans()):
        header["kind"] = "encounter"
    data: dict[str, Any] = {
        "protocol": header,
        "parties": parties,
        "steps": steps,
        "transitions": transitions,
    }
    if facts:
        data["facts"] = facts
    requirements: dict[str, Any] = {}
    if draw(st.booleans()):
        requirements["mayor_contact"] = draw(st.booleans())
    if draw(st.booleans()):
        requirements["max_wait_for_expert"] = _duration_text(draw, draw(_positive))
    if draw(st.booleans()):
        requirements["report_before_close"] = draw(st.booleans())
    if requirements:
        data["requirements"] = requirements
    return data


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_protocols())
@pytest.mark.slow
def test_generated_valid_protocols_round_trip(data: dict[str, Any]) -> None:
    protocol = lr.load_protocol(data)
    assert lr.validate(protocol) == []
    dumped = lr.dump_protocol(protocol)
    assert_toml_compatible(dumped)
    assert lr.load_protocol(dumped) == protocol
    assert lr.dump_protocol(lr.load_protocol(dumped)) == dumped
    assert lr.load_protocol(json.loads(json.dumps(dumped))) == protocol
    assert lr.load_protocol(tomllib.loads(tomli_w.dumps(dumped))) == protocol


# -- five mistakes at once ---------------------------------------------------------


def test_five_mistakes_are_reported_at_once_with_their_paths() -> None:
    path = FOUNDATIONS / "five_mistakes.toml"
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(path)
    error = caught.value
    assert error.problems == FIVE_MISTAKES
    assert error.source == str(path)
    # each problem names its line and column too (issue 14): the key, or the list item
    places = ["19:1", "33:14", "64:1", "56:7", "76:1"]
    assert error.located == [
        f"{path}:{at}: {p}" for at, p in zip(places, FIVE_MISTAKES, strict=True)
    ]
    assert str(error) == f"5 problems in {path}:\n" + "\n".join(f"  - {p}" for p in error.located)


def test_each_of_the_five_mistakes_alone() -> None:
    text = (FOUNDATIONS / "five_mistakes.toml").read_text(encoding="utf-8")
    # lines carrying "# mistake N" are the only differences from minimal.toml
    mistakes = [line for line in text.splitlines() if "# mistake" in line]
    assert len(mistakes) == 5
    repaired = tomllib.loads(text)
    for line in mistakes:
        repaired = _undo(repaired, line)
    assert repaired == minimal()
    found: list[list[str]] = []
    for line in mistakes:
        data = tomllib.loads(text)
        for other in mistakes:
            if other is not line:
                data = _undo(data, other)
        found.append(problems_of(data))
    assert found == [
        [FIVE_MISTAKES[0]],
        [FIVE_MISTAKES[1]],
        [FIVE_MISTAKES[3]],
        [FIVE_MISTAKES[2]],
        # alone, the misspelt target is the one problem: 'closed' being unreachable is its
        # follow-on (the misspelt transition is the one that reaches it), not reported
        [FIVE_MISTAKES[4]],
    ]


def _undo(data: dict[str, Any], line: str) -> dict[str, Any]:
    """Repair the mistake made on ``line`` of five_mistakes.toml."""
    if "no_show" in line:
        del data["parties"]["expert"]["no_show"]
    elif "45 minutes" in line:
        data["steps"]["waiting"]["deadline"]["after"] = "45m"
    elif "notfy" in line:
        del data["transitions"][1]["notfy"]
    elif "closd" in line:
        data["transitions"][3]["to"] = "closed"
    elif "clerk" in line:
        data["transitions"][0]["by"] = ["counter"]
    else:  # pragma: no cover - a new mistake line needs a repair here
        raise AssertionError(line)
    return data


# -- structural strictness -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d.__setitem__("step", {}),
            "$.step: unknown key 'step' (did you mean 'steps'?)",
        ),
        (
            lambda d: d["protocol"].__setitem__("kind", "meeting"),
            "$.protocol.kind: unknown protocol kind 'meeting'; one of encounter, order",
        ),
        (
            lambda d: d["parties"]["counter"].__setitem__("kind", "clerk"),
            "$.parties.counter.kind: unknown party kind 'clerk'; one of municipal_staff,"
            " expert, mayor, emergency, escalation",
        ),
        (
            lambda d: d["steps"]["arrived"].__setitem__("kind", "activ"),
            "$.steps.arrived.kind: unknown step kind 'activ' (did you mean 'active'?);"
            " one of active, waiting, terminal",
        ),
        (
            lambda d: d["parties"]["counter"].__setitem__("capacity", 2.5),
            "$.parties.counter.capacity: expected a whole number, got float 2.5",
        ),
        (
            lambda d: d["parties"]["counter"].__setitem__("capacity", True),
            "$.parties.counter.capacity: expected a whole number, got bool True",
        ),
        (
            lambda d: d["parties"]["counter"].__setitem__("no_show", False),
            "$.parties.counter.no_show: expected a number, got bool False",
        ),
        (
            lambda d: d.__setitem__("requirements", {"mayor_contact": "yes"}),
            "$.requirements.mayor_contact: expected true or false, got str 'yes'",
        ),
        (
            lambda d: d.__setitem__("requirements", {"max_wait_for_expert": 45}),
            "$.requirements.max_wait_for_expert: expected a duration string such as '45m',"
            " got int 45",
        ),
        (
            lambda d: d.__setitem__("transitions", {}),
            "$.transitions: expected a list, got dict {}",
        ),
        (
            lambda d: d["transitions"].__setitem__(0, "call_expert"),
            "$.transitions[0]: expected a table (mapping)",
        ),
        (
            lambda d: d["transitions"][0].__setitem__("by", [["counter"]]),
            "$.transitions[0].by: expected a name or a list of names, got list [['counter']]",
        ),
        (
            lambda d: d["steps"]["arrived"].__setitem__("tags", {"a": 1}),
            "$.steps.arrived.tags: expected a name or a list of names, got dict {'a': 1}",
        ),
        (
            lambda d: d["facts"].__setitem__("age_band", []),
            '$.facts.age_band: expected "bool" or a non-empty list of allowed values, got list []',
        ),
        (
            lambda d: d["facts"].__setitem__("age_band", ["0-11", "0-11"]),
            "$.facts.age_band: duplicate values in ['0-11', '0-11']",
        ),
        (
            lambda d: d["protocol"].__setitem__("title", "Minimal"),
            "$.protocol.title: expected a table (mapping)",
        ),
        (
            lambda d: d["parties"]["counter"].__setitem__("response", {"median": "2m"}),
            "$.parties.counter.response.p90: required key missing",
        ),
        (
            lambda d: d["steps"]["arrived"]["instructions"].pop("en"),
            "$.steps.arrived.instructions.en: required key missing",
        ),
        (
            lambda d: d.__setitem__("facts", ["age_band"]),
            "$.facts: expected a table (mapping)",
        ),
    ],
)
def test_structural_problem_is_reported_with_its_path(change: Any, problem: str) -> None:
    data = minimal()
    change(data)
    assert problems_of(data) == [problem]


def test_a_single_name_is_accepted_where_a_list_of_names_is_expected() -> None:
    data = minimal()
    data["transitions"][0]["by"] = "counter"
    data["steps"]["with_expert"]["tags"] = "child_with_expert"
    protocol = lr.load_protocol(data)
    assert protocol.transitions[0].by == ("counter",)
    assert protocol.steps["with_expert"].tags == ("child_with_expert",)


def test_keys_that_are_not_plain_names_get_a_quoted_path() -> None:
    data = minimal()
    data["steps"]["arrived"]["extra key"] = 1
    assert problems_of(data) == ["$.steps.arrived['extra key']: unknown key 'extra key'"]


def test_an_unreadable_section_causes_no_knock_on_problems() -> None:
    for section, junk in (("steps", []), ("parties", "counter")):
        data = minimal()
        data[section] = junk
        assert problems_of(data) == [f"$.{section}: expected a table (mapping)"]


def test_a_broken_header_still_lets_the_rest_be_checked() -> None:
    data = minimal()
    data["protocol"]["colour"] = "blue"
    data["transitions"][0]["notify"] = ["expret"]
    assert problems_of(data) == [
        "$.protocol.colour: unknown key 'colour'",
        "$.transitions[0].notify[0]: unknown party 'expret' (did you mean 'expert'?)",
    ]


def test_check_false_skips_semantic_validation_but_not_structure() -> None:
    data = minimal()
    data["transitions"][0]["to"] = "nowhere"
    protocol = lr.load_protocol(data, check=False)
    assert protocol.transitions[0].target == "nowhere"
    assert lr.validate(protocol) == [
        "$.transitions[0].to: unknown step 'nowhere'",
    ]  # 'waiting' unreachable is a follow-on of the unknown target: not reported
    data["transitions"][0]["to"] = 3
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data, check=False)
    assert caught.value.problems == ["$.transitions[0].to: expected a string, got int 3"]


# -- reading files -------------------------------------------------------------------


def test_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(missing)
    assert caught.value.problems == [
        f"$: cannot read file: [Errno 2] No such file or directory: '{missing}'"
    ]
    assert caught.value.source == str(missing)

    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[protocol\nid = 1\n", encoding="utf-8")
    assert problems_of(bad_toml) == [
        "$: invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 10)"
    ]

    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{", encoding="utf-8")
    assert problems_of(bad_json) == [
        "$: invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]

    not_a_table = tmp_path / "list.json"
    not_a_table.write_text("[1, 2]", encoding="utf-8")
    assert problems_of(not_a_table) == ["$: expected a table (mapping), got list"]

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    [problem] = problems_of(binary)
    assert problem.startswith("$: cannot read file: 'utf-8' codec can't decode byte 0xff")

    assert problems_of(str(tmp_path)) == [
        f"$: cannot read file: [Errno 21] Is a directory: '{tmp_path}'"
    ]
    assert problems_of("nul\x00byte.toml") == ["$: cannot read file: embedded null byte"]
    assert problems_of(42) == ["$: expected a file path or a mapping, got int"]


# -- junk never escapes as anything but ProtocolError ------------------------------

_REFERENCE = lr.dump_protocol(lr.load_protocol(TASKFORCE))
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(
        ["45m", "PT45M", "*", "clock", "arrived", "always", "bool", "emergency", "acute_danger"]
    )
)
_keys = st.text(max_size=6) | st.sampled_from(
    ["protocol", "parties", "steps", "transitions", "facts", "requirements", "from", "to", "by"]
)
junk = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


_ALL_PATHS = [p for p in _paths(_REFERENCE) if p]


@st.composite
def mutated_reference(draw: st.DrawFn) -> dict[str, Any]:
    """The reference protocol with keys deleted, values replaced by junk, types swapped."""
    data = copy.deepcopy(_REFERENCE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_ALL_PATHS))
        parent: Any = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            last = path[-1]
            value = parent[last]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
        if not isinstance(parent, dict | list):
            continue  # an earlier mutation turned the parent into a string
        how = draw(st.sampled_from(["delete", "junk", "wrap", "unwrap", "stringify"]))
        if how == "delete":
            del parent[last]
        elif how == "junk":
            parent[last] = draw(junk)
        elif how == "wrap":
            parent[last] = [value]
        elif how == "unwrap":
            parent[last] = (
                next(iter(value.values()), None)
                if isinstance(value, dict)
                else value[0]
                if isinstance(value, list) and value
                else {}
            )
        else:
            parent[last] = str(value)
    return data


def _assert_only_protocol_errors(data: Any) -> None:
    """Load ``data``; any exception other than ProtocolError fails the test as it is."""
    problems: list[str] | None = None
    try:
        lr.load_protocol(data)
    except lr.ProtocolError as error:
        problems = error.problems
    if problems is None:
        return
    assert problems, "a ProtocolError without problems"
    for problem in problems:
        assert isinstance(problem, str)
        assert problem.startswith("$"), problem
        assert "unexpected error" not in problem, problem
        if " got " in problem:  # a junk value shown by the converter is shortened
            assert len(problem.split(" got ", 1)[1]) <= 120, problem


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(junk)
def test_arbitrary_junk_only_ever_raises_protocol_error(data: Any) -> None:
    _assert_only_protocol_errors(data)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated_reference())
@pytest.mark.slow
def test_mutated_reference_only_ever_raises_protocol_error(data: dict[str, Any]) -> None:
    _assert_only_protocol_errors(data)


def test_deep_nesting_is_a_protocol_error_not_a_recursion_error() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    data = minimal()
    data["steps"]["arrived"]["tags"] = deep
    data["parties"]["counter"]["name"] = {"nl": deep, "en": "Counter clerk"}
    problems = problems_of(data)
    assert problems[0].startswith("$.parties.counter.name.nl: expected a string, got list [[[")
    assert problems[1].startswith(
        "$.steps.arrived.tags: expected a name or a list of names, got list [[["
    )


# -- the documentation's examples load ---------------------------------------------

_BLOCK = re.compile(
    r"<!-- (complete|broken) -->\s*```toml\n(.*?)```(?:\s*```text\n(.*?)```)?", re.S
)


def _doc_blocks(kind: str) -> list[tuple[str, str | None]]:
    text = DOCS.read_text(encoding="utf-8")
    return [(m[2], m[3]) for m in _BLOCK.finditer(text) if m[1] == kind]


def test_docs_have_complete_and_broken_examples() -> None:
    assert len(_doc_blocks("complete")) >= 2
    assert len(_doc_blocks("broken")) >= 1


@pytest.mark.parametrize("index", range(len(_doc_blocks("complete"))))
def test_every_complete_protocol_in_the_docs_loads_and_round_trips(index: int) -> None:
    body, _ = _doc_blocks("complete")[index]
    protocol = lr.load_protocol(tomllib.loads(body))
    assert lr.load_protocol(lr.dump_protocol(protocol)) == protocol


@pytest.mark.parametrize("index", range(len(_doc_blocks("broken"))))
def test_every_broken_protocol_in_the_docs_gives_the_problems_shown(index: int) -> None:
    body, shown = _doc_blocks("broken")[index]
    assert shown is not None, "a broken example needs a ```text block with its problems"
    problems = problems_of(tomllib.loads(body))
    assert problems == [line.removeprefix("  - ") for line in shown.splitlines()[1:]]
    assert shown.splitlines()[0] == f"{len(problems)} problem{'s' if len(problems) > 1 else ''}:"


def test_every_key_of_the_file_format_is_documented() -> None:
    import attrs

    from lastresort.protocol.files import _Header, _ProtocolFile
    from lastresort.protocol.model import (
        Deadline,
        Party,
        Requirements,
        ResponseModel,
        Step,
        Transition,
    )

    text = DOCS.read_text(encoding="utf-8")
    renames = {"sources": "from", "target": "to", "since": "from"}
    for cls in (
        _ProtocolFile,
        _Header,
        Party,
        ResponseModel,
        Step,
        Deadline,
        Transition,
        Requirements,
    ):
        for field in attrs.fields(cls):
            if field.name == "key":  # filled from the table key, not written
                continue
            key = renames.get(field.name, field.name)
            if (
                cls is _ProtocolFile
            ):  # a section: `[protocol]`, `[parties.<key>]`, `[[transitions]]`
                key = f"[{key}" if key != "transitions" else "[[transitions]]"
                assert f"`{key}" in text, f"section {key} is not in {DOCS.name}"
                continue
            assert f"`{key}`" in text, f"{cls.__name__}.{field.name}: `{key}` is not in {DOCS.name}"
    for enum in (lr.PartyKind, lr.StepKind, lr.ProtocolKind, lr.DeadlineDate):
        for member in enum:
            assert f"`{member.value}`" in text, f"{enum.__name__}.{member.name} undocumented"


def test_the_documented_forbidden_fact_names_are_the_forbidden_ones() -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- forbidden-facts -->")[1].split("<!-- /forbidden-facts -->")[0]
    assert set(re.findall(r"`([a-z_]+)`", block)) == set(FORBIDDEN_FACTS)


# -- durations -------------------------------------------------------------------------

_ADVICE = "use e.g. '45m', '2h', '10d', '1h30m' or ISO 8601 'PT45M'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45m", timedelta(minutes=45)),
        ("2h", timedelta(hours=2)),
        ("10d", timedelta(days=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("30s", timedelta(seconds=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 45m ", timedelta(minutes=45)),
        ("0s", timedelta(0)),
        ("PT45M", timedelta(minutes=45)),
        ("P10D", timedelta(days=10)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("pt45m", timedelta(minutes=45)),
        ("P2W", timedelta(weeks=2)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT0.000001S", timedelta(microseconds=1)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"invalid duration ''; {_ADVICE}"),
        ("45", f"invalid duration '45'; {_ADVICE}"),
        ("45 minutes", f"invalid duration '45 minutes'; {_ADVICE}"),
        ("-5m", f"invalid duration '-5m'; {_ADVICE}"),
        ("1.5h", f"invalid duration '1.5h'; {_ADVICE}"),
        ("30m1h", f"invalid duration '30m1h'; {_ADVICE}"),
        ("1H", f"invalid duration '1H'; {_ADVICE}"),
        ("P", f"invalid duration 'P'; {_ADVICE}"),
        ("PT", f"invalid duration 'PT'; {_ADVICE}"),
        ("P1M", f"invalid duration 'P1M'; {_ADVICE}"),
        ("P1Y", f"invalid duration 'P1Y'; {_ADVICE}"),
        ("PT1.5M", f"invalid duration 'PT1.5M'; {_ADVICE}"),
        ("PT0.0000001S", "duration 'PT0.0000001S' is finer than a microsecond"),
        ("999999999999d", "duration '999999999999d' is too long"),
        (45, "expected a duration string such as '45m', got int 45"),
        (None, "expected a duration string such as '45m', got NoneType None"),
    ],
)
def test_junk_durations_are_refused_with_the_message(text: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(text)


def test_a_bad_duration_in_a_file_names_its_path() -> None:
    data = minimal()
    data["steps"]["waiting"]["deadline"]["after"] = "soon"
    assert problems_of(data) == [
        f"$.steps.waiting.deadline.after: invalid duration 'soon'; {_ADVICE}"
    ]


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=45), "45m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=10), "10d"),
        (timedelta(weeks=2), "14d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=90.5), "PT1M30.5S"),
        (timedelta(days=1, microseconds=1), "P1DT0.000001S"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    assert parse_duration(text) == delta


def test_format_duration_refuses_negative_durations() -> None:
    with pytest.raises(ValueError, match=r"^negative duration -1 day, 23:59:00$"):
        format_duration(timedelta(minutes=-1))


@given(st.timedeltas(min_value=timedelta(0)))
def test_format_duration_is_the_inverse_of_parse_duration(delta: timedelta) -> None:
    text = format_duration(delta)
    assert parse_duration(text) == delta
    assert format_duration(parse_duration(text)) == text


@given(st.text(max_size=12))
def test_parse_duration_raises_only_value_error(text: str) -> None:
    try:
        delta = parse_duration(text)
    except ValueError:
        return
    assert delta >= timedelta(0)
    assert parse_duration(format_duration(delta)) == delta


# -- protocols as values -----------------------------------------------------------------


def test_protocols_are_hashable_and_picklable() -> None:
    import pickle

    protocol = lr.load_protocol(TASKFORCE)
    again = lr.load_protocol(lr.dump_protocol(protocol))
    assert hash(again) == hash(protocol)
    assert len({protocol, again}) == 1
    assert pickle.loads(pickle.dumps(protocol)) == protocol


def test_a_protocol_built_in_python_equals_the_same_protocol_loaded() -> None:
    def text(nl: str, en: str) -> lr.Text:
        return lr.Text(nl=nl, en=en)

    built = lr.Protocol(
        id="minimal",
        version="1",
        municipality="Testdorp",
        title=text("Minimale afspraak", "Minimal arrangement"),
        initial="arrived",
        source="test protocol for lastresort's own tests",
        parties={
            "counter": lr.Party(
                text("Baliemedewerker", "Counter clerk"), lr.PartyKind.MUNICIPAL_STAFF
            ),
            "expert": lr.Party(text("Deskundige", "Expert"), lr.PartyKind.EXPERT),
            "police": lr.Party(text("Politie", "Police"), lr.PartyKind.EMERGENCY),
        },
        steps={
            "arrived": lr.Step(
                lr.StepKind.ACTIVE,
                text(
                    "Blijf bij het kind en bel de deskundige.",
                    "Stay with the child and call the expert.",
                ),
                responsible="counter",
            ),
            "waiting": lr.Step(
                lr.StepKind.WAITING,
                text(
                    "Blijf bij het kind tot de deskundige er is.",
                    "Stay with the child until the expert arrives.",
                ),
                responsible="counter",
                deadline=lr.Deadline(timedelta(minutes=45), "expert_overdue"),
            ),
            "with_expert": lr.Step(
                lr.StepKind.ACTIVE,
                text(
                    "U bent verantwoordelijk voor het kind.", "You are responsible for the child."
                ),
                responsible="expert",
                tags=["child_with_expert"],
            ),
            "closed": lr.Step(lr.StepKind.TERMINAL, text("Afgesloten.", "Closed.")),
            "with_police": lr.Step(
                lr.StepKind.TERMINAL,
                text(
                    "De politie heeft het kind overgenomen.",
                    "The police have taken over the child.",
                ),
                responsible="police",
                tags=["emergency"],
            ),
        },
        transitions=[
            lr.Transition("call_expert", ["arrived"], "waiting", ["counter"], ["expert"]),
            lr.Transition("expert_takes_over", ["arrived", "waiting"], "with_expert", ["expert"]),
            lr.Transition("expert_overdue", ["waiting"], "with_police", ["clock"], ["police"]),
            lr.Transition("close", ["with_expert"], "closed", ["expert"]),
            lr.Transition("acute_danger", "*", "with_police", ["counter", "expert"], ["police"]),
        ],
        facts={
            "age_band": lr.Fact(FactKind.ENUM, ["0-11", "12-17"]),
            "disclosure": lr.Fact(FactKind.BOOL),
        },
    )
    assert lr.validate(built) == []
    assert built == lr.load_protocol(minimal())
    assert lr.dump_protocol(built) == minimal()


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_file_starting_with_a_byte_order_mark_loads(tmp_path: Path, suffix: str) -> None:
    protocol = lr.load_protocol(FOUNDATIONS / "minimal.toml")
    text = (
        (FOUNDATIONS / "minimal.toml").read_text(encoding="utf-8")
        if suffix == ".toml"
        else json.dumps(lr.dump_protocol(protocol))
    )
    path = tmp_path / f"bom{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert lr.load_protocol(path) == protocol
