"""Validation: one test per rule, each with a protocol that breaks exactly that rule
and the exact problem it gives (issue 2, item 4, and the further rules of validate.py)."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.protocol.validation import FORBIDDEN_FACTS
from lastresort.testing import make_engine

MINIMAL = Path(__file__).parent / "protocols" / "foundations" / "minimal.toml"
TASKFORCE = Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml"

Data = dict[str, Any]


def minimal() -> Data:
    return tomllib.loads(MINIMAL.read_text(encoding="utf-8"))


def problems(change: Callable[[Data], object]) -> list[str]:
    """The problems of the minimal protocol after ``change``; the data given to
    load_protocol is left as it was."""
    data = minimal()
    change(data)
    before = copy.deepcopy(data)
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert data == before
    # a semantic problem is also what validate() finds in the protocol loaded without
    # checks; a structural one stops even that load, with the same problems
    try:
        found = lr.validate(lr.load_protocol(data, check=False))
    except lr.ProtocolError as structural:
        found = structural.problems
    assert found == caught.value.problems
    return caught.value.problems


def transition(data: Data, event: str) -> Data:
    found: Data = next(t for t in data["transitions"] if t["event"] == event)
    return found


def test_the_starting_points_are_sound() -> None:
    assert lr.validate(lr.load_protocol(minimal())) == []
    assert lr.validate(lr.load_protocol(TASKFORCE)) == []


# -- issue 2, item 4 --------------------------------------------------------------


def test_unknown_step_as_target() -> None:
    def change(d: Data) -> None:
        transition(d, "close")["to"] = "closd"

    assert problems(change) == [
        "$.transitions[3].to: unknown step 'closd' (did you mean 'closed'?)",
    ]  # not also "closed is unreachable": the misspelt transition is the one that reaches it


def test_unknown_step_as_source() -> None:
    def change(d: Data) -> None:
        transition(d, "expert_takes_over")["from"] = ["arrived", "wachten"]

    assert problems(change) == ["$.transitions[1].from[1]: unknown step 'wachten'"]


def test_unknown_party_as_responsible() -> None:
    def change(d: Data) -> None:
        d["steps"]["with_expert"]["responsible"] = "expret"

    assert problems(change) == [
        "$.steps.with_expert.responsible: unknown party 'expret' (did you mean 'expert'?)"
    ]


def test_unknown_party_to_notify() -> None:
    def change(d: Data) -> None:
        transition(d, "call_expert")["notify"] = ["expert", "mayor"]

    assert problems(change) == ["$.transitions[0].notify[1]: unknown party 'mayor'"]


def test_initial_step_missing() -> None:
    def change(d: Data) -> None:
        d["protocol"]["initial"] = "arived"

    assert problems(change) == [
        "$.protocol.initial: unknown step 'arived' (did you mean 'arrived'?)"
    ]


def test_step_no_transition_reaches() -> None:
    def change(d: Data) -> None:
        d["steps"]["aside"] = {
            "responsible": "counter",
            "kind": "active",
            "instructions": {"nl": "Apart.", "en": "Aside."},
        }
        transition(d, "acute_danger")["from"] = "*"  # acute danger covers it

    assert problems(change) == ["$.steps.aside: no transition reaches this step from 'arrived'"]


def test_same_event_from_the_same_step_without_guards() -> None:
    def change(d: Data) -> None:
        d["transitions"].append(
            {"event": "call_expert", "from": "arrived", "to": "with_expert", "by": "counter"}
        )

    assert problems(change) == [
        "$.transitions[5]: event 'call_expert' from step 'arrived' is also defined by"
        " $.transitions[0] without distinct guards"
    ]


def test_same_event_from_the_same_step_with_one_guard_only() -> None:
    def change(d: Data) -> None:
        d["transitions"].append(
            {
                "event": "call_expert",
                "from": "arrived",
                "to": "with_expert",
                "by": "counter",
                "guard": "expert_present",
            }
        )

    assert problems(change) == [
        "$.transitions[5]: event 'call_expert' from step 'arrived' is also defined by"
        " $.transitions[0] without distinct guards"
    ]


def test_same_event_from_the_same_step_with_the_same_guard() -> None:
    def change(d: Data) -> None:
        transition(d, "call_expert")["guard"] = "expert_present"
        d["transitions"].append(
            {
                "event": "call_expert",
                "from": "arrived",
                "to": "with_expert",
                "by": "counter",
                "guard": "expert_present",
            }
        )

    assert problems(change) == [
        "$.transitions[5]: event 'call_expert' from step 'arrived' is also defined by"
        " $.transitions[0] without distinct guards"
    ]


def test_same_event_from_the_same_step_with_distinct_guards_is_sound() -> None:
    data = minimal()
    transition(data, "call_expert")["guard"] = "expert_far"
    data["transitions"].append(
        {
            "event": "call_expert",
            "from": "arrived",
            "to": "with_expert",
            "by": "counter",
            "guard": "expert_present",
        }
    )
    protocol = lr.load_protocol(data)
    assert [t.guard for t in protocol.transitions if t.event == "call_expert"] == [
        "expert_far",
        "expert_present",
    ]


def test_same_event_from_different_steps_is_sound() -> None:
    data = minimal()
    data["transitions"].append(
        {"event": "call_expert", "from": "waiting", "to": "waiting", "by": "counter"}
    )
    assert lr.load_protocol(data).transitions[-1].sources == ("waiting",)


def test_deadline_whose_event_has_no_transition_from_that_step() -> None:
    def change(d: Data) -> None:
        d["steps"]["waiting"]["deadline"]["event"] = "expert_late"

    assert problems(change) == [
        "$.steps.waiting.deadline.event: no transition for 'expert_late' leaves step 'waiting'"
    ]


def test_deadline_event_defined_only_from_another_step() -> None:
    def change(d: Data) -> None:
        transition(d, "expert_overdue")["from"] = ["arrived"]

    assert problems(change) == [
        "$.steps.waiting.deadline.event: no transition for 'expert_overdue' leaves step 'waiting'"
    ]


def test_waiting_step_without_deadline() -> None:
    def change(d: Data) -> None:
        del d["steps"]["waiting"]["deadline"]

    assert problems(change) == [
        "$.steps.waiting: waiting step has no deadline (nothing may wait forever)"
    ]


def test_terminal_step_with_outgoing_transition() -> None:
    def change(d: Data) -> None:
        d["transitions"].append(
            {"event": "reopen", "from": ["closed"], "to": "with_expert", "by": "expert"}
        )

    assert problems(change) == [
        "$.transitions[5].from[0]: terminal step 'closed' cannot have outgoing transitions"
    ]


def test_non_terminal_step_without_responsible_party() -> None:
    def change(d: Data) -> None:
        del d["steps"]["with_expert"]["responsible"]

    assert problems(change) == ["$.steps.with_expert: non-terminal step has no responsible party"]


def test_terminal_step_may_have_no_responsible_party() -> None:
    assert "responsible" not in minimal()["steps"]["closed"]
    assert lr.load_protocol(minimal()).steps["closed"].responsible is None


def test_by_naming_an_unknown_party() -> None:
    def change(d: Data) -> None:
        transition(d, "close")["by"] = ["expert", "mayor"]

    assert problems(change) == ["$.transitions[3].by[1]: unknown party 'mayor'"]


def test_by_may_name_clock_but_notify_may_not() -> None:
    assert lr.load_protocol(minimal()).transitions[2].by == ("clock",)

    def change(d: Data) -> None:
        transition(d, "expert_overdue")["notify"] = ["clock"]

    assert problems(change) == ["$.transitions[2].notify[0]: unknown party 'clock'"]


def test_fact_declaration_that_is_neither_bool_nor_values() -> None:
    def change(d: Data) -> None:
        d["facts"]["disclosure"] = "boolean"

    assert problems(change) == [
        '$.facts.disclosure: expected "bool" or a non-empty list of allowed values,'
        " got str 'boolean'"
    ]


def test_fact_values_outside_the_declared_ones_are_refused_and_nothing_is_stored() -> None:
    protocol = lr.load_protocol(minimal())
    assert protocol.facts["age_band"].allows("0-11")
    assert not protocol.facts["age_band"].allows("18+")
    assert not protocol.facts["disclosure"].allows("yes")
    assert protocol.facts["disclosure"].allows(False)
    engine, _ = make_engine([protocol])
    with pytest.raises(lr.FactsRefused) as caught:
        engine.open(
            "minimal", lr.Actor("counter", "counter-1"), facts={"age_band": "18+", "name": "Anna"}
        )
    assert caught.value.problems == [
        "fact 'age_band': value not allowed (allowed: 0-11, 12-17)",
        "unknown fact 'name' (declared: age_band, disclosure)",
    ]
    # a refused value is never echoed: it could be something about the child
    assert "18+" not in str(caught.value)
    assert "Anna" not in str(caught.value)
    assert list(engine.store.encounter_ids()) == []
    opened = engine.open(
        "minimal", lr.Actor("counter", "counter-1"), facts={"age_band": "0-11", "disclosure": True}
    )
    assert dict(opened.facts) == {"age_band": "0-11", "disclosure": True}
    assert list(engine.store.encounter_ids()) == [opened.id]


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_missing_text(lang: str) -> None:
    def change(d: Data) -> None:
        del d["steps"]["arrived"]["instructions"][lang]

    assert problems(change) == [f"$.steps.arrived.instructions.{lang}: required key missing"]


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda d: d["protocol"]["title"], "$.protocol.title"),
        (lambda d: d["parties"]["expert"]["name"], "$.parties.expert.name"),
        (lambda d: d["steps"]["closed"]["instructions"], "$.steps.closed.instructions"),
    ],
)
@pytest.mark.parametrize("lang", ["nl", "en"])
def test_empty_text(where: Callable[[Data], Data], path: str, lang: str) -> None:
    def change(d: Data) -> None:
        where(d)[lang] = "  "

    assert problems(change) == [
        f"{path}.{lang}: empty text (texts shown to people need both nl and en)"
    ]


def test_acute_danger_that_does_not_cover_every_non_terminal_step() -> None:
    def change(d: Data) -> None:
        transition(d, "acute_danger")["from"] = ["arrived", "waiting"]

    assert problems(change) == [
        "$.transitions: acute_danger does not cover step(s) 'with_expert'"
        ' (add a transition with from = "*")'
    ]


def test_acute_danger_missing_altogether() -> None:
    def change(d: Data) -> None:
        d["transitions"] = [t for t in d["transitions"] if t["event"] != "acute_danger"]

    assert problems(change) == [
        "$.transitions: acute_danger does not cover step(s) 'arrived', 'waiting', 'with_expert'"
        ' (add a transition with from = "*")'
    ]


def test_acute_danger_to_a_step_not_tagged_emergency() -> None:
    def change(d: Data) -> None:
        d["steps"]["with_police"]["tags"] = []

    assert problems(change) == [
        "$.transitions[4].to: acute_danger must lead to a step tagged 'emergency',"
        " not 'with_police'"
    ]


def test_acute_danger_to_a_step_whose_party_is_not_an_emergency_party() -> None:
    def change(d: Data) -> None:
        d["parties"]["police"]["kind"] = "municipal_staff"

    assert problems(change) == [
        "$.transitions[4].to: acute_danger must lead to a step whose responsible party is"
        " of kind 'emergency' (step 'with_police' has 'police')"
    ]


def test_acute_danger_to_a_step_without_responsible_party() -> None:
    def change(d: Data) -> None:
        del d["steps"]["with_police"]["responsible"]

    assert problems(change) == [
        "$.transitions[4].to: acute_danger must lead to a step whose responsible party is"
        " of kind 'emergency' (step 'with_police' has None)"
    ]


def test_an_order_needs_no_acute_danger() -> None:
    data = minimal()
    data["protocol"]["kind"] = "order"
    data["transitions"] = [t for t in data["transitions"] if t["event"] != "acute_danger"]
    transition(data, "expert_overdue")["to"] = "closed"
    del data["steps"]["with_police"]
    assert lr.load_protocol(data).kind is lr.ProtocolKind.ORDER


# -- further rules of validate.py ---------------------------------------------------


IDENTIFYING = [
    "name",
    "naam",
    "first_name",
    "last_name",
    "voornaam",
    "achternaam",
    "bsn",
    "citizen_service_number",
    "burgerservicenummer",
    "address",
    "adres",
    "birth_date",
    "birthdate",
    "geboortedatum",
    "date_of_birth",
    "phone",
    "telefoon",
    "email",
    "notes",
    "note",
    "remarks",
    "opmerking",
    "opmerkingen",
    "description",
    "omschrijving",
    "text",
    "free_text",
]


@pytest.mark.parametrize("name", IDENTIFYING)
def test_identifying_fact_names_are_forbidden(name: str) -> None:
    def change(d: Data) -> None:
        d["facts"][name] = "bool"

    (problem,) = problems(change)
    assert problem.startswith(f"$.facts.{name}: may not be declared: it reads as '")
    assert problem.endswith(
        "an encounter never holds a child's name, BSN, address, contact details or free text"
    )


@pytest.mark.parametrize("term", sorted(FORBIDDEN_FACTS))
def test_every_forbidden_term_is_refused_as_a_fact_name(term: str) -> None:
    def change(d: Data) -> None:
        d["facts"][f"x_{term}"] = "bool"

    assert problems(change) == [
        f"$.facts.x_{term}: may not be declared: it reads as {term!r}, and an encounter never"
        " holds a child's name, BSN, address, contact details or free text"
    ]


def test_identifying_fact_names_are_forbidden_in_any_case() -> None:
    def change(d: Data) -> None:
        d["facts"]["BSN"] = ["known", "unknown"]

    assert problems(change) == [
        "$.facts.BSN: fact name 'BSN' is not a plain name (a lowercase letter, then up to"
        " 63 lowercase letters, digits, '_' or '-')",
        "$.facts.BSN: may not be declared: it reads as 'bsn', and an encounter never"
        " holds a child's name, BSN, address, contact details or free text",
    ]


def test_clock_cannot_be_a_party() -> None:
    def change(d: Data) -> None:
        d["parties"]["clock"] = {"name": {"nl": "Klok", "en": "Clock"}, "kind": "escalation"}

    assert problems(change) == [
        "$.parties.clock: 'clock' is reserved for deadline events and cannot be a party"
    ]


def test_initial_step_that_is_terminal() -> None:
    def change(d: Data) -> None:
        d["protocol"]["initial"] = "closed"

    found = problems(change)
    assert found[0] == "$.protocol.initial: initial step 'closed' is terminal"
    # nothing leaves a terminal step, so every other step is unreachable from it
    assert found[1:] == [
        f"$.steps.{key}: no transition reaches this step from 'closed'"
        for key in ("arrived", "waiting", "with_expert", "with_police")
    ]


@pytest.mark.parametrize("field", ["id", "version", "municipality", "source"])
def test_empty_header_field(field: str) -> None:
    def change(d: Data) -> None:
        d["protocol"][field] = " "

    assert problems(change) == [f"$.protocol.{field}: must not be empty"]


@pytest.mark.parametrize(
    ("hours", "problem"),
    [
        (
            "weekdays",
            "cannot read hours 'weekdays'; use 'always' or e.g. 'mon-fri 08:00-18:00,"
            " sat 10:00-14:00'",
        ),
        (
            "mon-fry 08:00-18:00",
            "unknown day 'fry' in 'mon-fry 08:00-18:00'; use mon, tue, ..., sun",
        ),
        ("mon 08:00-25:00", "invalid time '25:00' in 'mon 08:00-25:00'"),
        ("mon 09:00-09:00", "empty window in 'mon 09:00-09:00'"),
    ],
)
def test_bad_hours(hours: str, problem: str) -> None:
    def change(d: Data) -> None:
        d["parties"]["counter"]["hours"] = hours

    assert problems(change) == [f"$.parties.counter.hours: {problem}"]


def test_p90_below_median() -> None:
    def change(d: Data) -> None:
        d["parties"]["expert"]["response"] = {"median": "30m", "p90": "20m"}

    assert problems(change) == ["$.parties.expert.response: p90 (20m) is below the median (30m)"]


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_no_show_out_of_range(value: float) -> None:
    def change(d: Data) -> None:
        d["parties"]["expert"]["no_show"] = value

    assert problems(change) == [f"$.parties.expert.no_show: must be between 0 and 1, got {value}"]


def test_no_show_bounds_are_allowed() -> None:
    data = minimal()
    data["parties"]["expert"]["no_show"] = 1
    data["parties"]["counter"]["no_show"] = 0.0
    assert lr.load_protocol(data).parties["expert"].no_show == 1.0


def test_capacity_below_one() -> None:
    def change(d: Data) -> None:
        d["parties"]["expert"]["capacity"] = 0

    assert problems(change) == ["$.parties.expert.capacity: must be at least 1, got 0"]


def test_deadline_event_without_clock_in_by() -> None:
    def change(d: Data) -> None:
        transition(d, "expert_overdue")["by"] = ["counter"]

    assert problems(change) == [
        "$.steps.waiting.deadline.event: the transition for 'expert_overdue' must name"
        " 'clock' in its 'by'"
    ]


def test_deadline_on_a_terminal_step() -> None:
    def change(d: Data) -> None:
        d["steps"]["closed"]["deadline"] = {"after": "1d", "event": "archive"}

    found = problems(change)
    assert found == [
        "$.steps.closed.deadline: a terminal step cannot have a deadline",
        "$.steps.closed.deadline.event: no transition for 'archive' leaves step 'closed'",
    ]


def test_deadline_of_zero() -> None:
    def change(d: Data) -> None:
        d["steps"]["waiting"]["deadline"]["after"] = "0m"

    assert problems(change) == ["$.steps.waiting.deadline.after: must be longer than zero"]


@pytest.mark.parametrize("after", ["59s", "PT0.000001S", "PT59.999999S"])
def test_a_deadline_is_at_least_a_minute(after: str) -> None:
    def change(d: dict[str, Any]) -> None:
        d["steps"]["waiting"]["deadline"]["after"] = after

    [problem] = problems(change)
    assert problem.startswith("$.steps.waiting.deadline.after: must be at least 1m, not ")
    assert problem.endswith(
        ": nobody can act on a shorter deadline, and a clock transition that loops on it"
        " would fire again and again"
    )


def test_a_deadline_of_one_minute_is_allowed() -> None:
    data = minimal()
    data["steps"]["waiting"]["deadline"]["after"] = "60s"
    assert lr.load_protocol(data).steps["waiting"].deadline is not None


def test_star_combined_with_step_names() -> None:
    def change(d: Data) -> None:
        transition(d, "acute_danger")["from"] = ["*", "arrived"]

    assert problems(change) == ["$.transitions[4].from: '*' cannot be combined with step names"]


def test_star_expands_to_every_non_terminal_step() -> None:
    protocol = lr.load_protocol(minimal())
    acute = protocol.transitions[4]
    assert acute.sources == ("*",)
    assert protocol.sources_of(acute) == ("arrived", "waiting", "with_expert")


def test_empty_event() -> None:
    def change(d: Data) -> None:
        transition(d, "close")["event"] = " "

    assert problems(change) == ["$.transitions[3].event: must not be empty"]


def test_from_naming_no_step() -> None:
    def change(d: Data) -> None:
        transition(d, "call_expert")["from"] = []

    assert problems(change) == [
        "$.transitions[0].from: names no step",
        "$.steps.waiting: no transition reaches this step from 'arrived'",
    ]


def test_by_naming_nobody() -> None:
    def change(d: Data) -> None:
        transition(d, "close")["by"] = []

    assert problems(change) == ["$.transitions[3].by: names nobody who may fire it"]


def test_empty_guard() -> None:
    def change(d: Data) -> None:
        transition(d, "close")["guard"] = ""

    assert problems(change) == ["$.transitions[3].guard: must not be empty"]


def _rename_step(d: Data, old: str, new: str) -> None:
    d["steps"][new] = d["steps"].pop(old)
    for t in d["transitions"]:
        t["to"] = new if t["to"] == old else t["to"]
        if isinstance(t["from"], list):
            t["from"] = [new if s == old else s for s in t["from"]]


def _rename_party(d: Data, old: str, new: str) -> None:
    d["parties"][new] = d["parties"].pop(old)
    for step in d["steps"].values():
        if step.get("responsible") == old:
            step["responsible"] = new
    for t in d["transitions"]:
        for key in ("by", "notify"):
            t[key] = [new if role == old else role for role in t.get(key, [])]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            # "=" would be read by the transitions library as "the same state"
            lambda d: _rename_step(d, "closed", "="),
            "$.steps['=']: step key '=' is not a plain name (use letters, digits, '_' and '-')",
        ),
        (
            lambda d: _rename_step(d, "closed", "*"),
            "$.steps['*']: step key '*' is not a plain name (use letters, digits, '_' and '-')",
        ),
        (
            lambda d: _rename_party(d, "police", "the police"),
            "$.parties['the police']: party key 'the police' is not a plain name"
            " (use letters, digits, '_' and '-')",
        ),
        (
            lambda d: transition(d, "close").__setitem__("event", "close!"),
            "$.transitions[3].event: event 'close!' is not a plain name"
            " (use letters, digits, '_' and '-')",
        ),
    ],
)
def test_names_must_be_plain(change: Callable[[Data], object], problem: str) -> None:
    assert problems(change) == [problem]


def test_plain_names_may_use_digits_and_dashes() -> None:
    data = minimal()
    _rename_step(data, "with_expert", "with-expert-2")
    _rename_party(data, "police", "112")
    assert set(lr.load_protocol(data).parties) == {"counter", "expert", "112"}


def test_several_broken_rules_are_all_reported_at_once() -> None:
    def change(d: Data) -> None:
        del d["steps"]["waiting"]["deadline"]
        d["parties"]["expert"]["capacity"] = 0
        transition(d, "close")["by"] = []

    assert problems(change) == [
        "$.parties.expert.capacity: must be at least 1, got 0",
        "$.steps.waiting: waiting step has no deadline (nothing may wait forever)",
        "$.transitions[3].by: names nobody who may fire it",
    ]


# -- the seam for plugins ----------------------------------------------------------


def test_extra_checks_add_their_problems() -> None:
    protocol = lr.load_protocol(minimal())
    seen: list[lr.Protocol] = []

    def no_night_shift(p: lr.Protocol) -> list[str]:
        seen.append(p)
        return [f"$.parties.{key}.hours: no night shift" for key in p.parties if key == "counter"]

    assert lr.validate(protocol, extra=[no_night_shift]) == [
        "$.parties.counter.hours: no night shift"
    ]
    assert seen == [protocol]
    assert lr.validate(protocol, extra=[lambda p: []]) == []


def test_validate_changes_nothing() -> None:
    protocol = lr.load_protocol(minimal())
    before = lr.dump_protocol(protocol)
    lr.validate(protocol)
    assert lr.dump_protocol(protocol) == before


@pytest.mark.parametrize(
    ("key", "names", "problem"),
    [
        ("from", ["arrived", "arrived"], "$.transitions[0].from[1]: 'arrived' is named twice"),
        ("by", ["counter", "counter"], "$.transitions[0].by[1]: 'counter' is named twice"),
        ("notify", ["expert", "expert"], "$.transitions[0].notify[1]: 'expert' is named twice"),
    ],
)
def test_a_name_given_twice_in_one_transition(key: str, names: list[str], problem: str) -> None:
    def change(d: Data) -> None:
        transition(d, "call_expert")[key] = names

    assert problems(change) == [problem]


@pytest.mark.parametrize(
    "field", ["max_wait_for_expert", "max_wait_for_mayor", "max_order_duration"]
)
def test_requirement_durations_must_be_longer_than_zero(field: str) -> None:
    def change(d: Data) -> None:
        d["requirements"] = {field: "0s"}

    assert problems(change) == [f"$.requirements.{field}: must be longer than zero"]


# -- no follow-on problems (issue 14) -------------------------------------------------------


def test_a_typo_in_to_of_the_reference_protocol_gives_only_the_real_problem() -> None:
    text = TASKFORCE.read_text(encoding="utf-8").replace(
        'to = "with_expert"', 'to = "with_expet"', 1
    )
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(tomllib.loads(text))
    # on main: this line and nine "no transition reaches this step" follow-on lines
    assert caught.value.problems == [
        "$.transitions[2].to: unknown step 'with_expet' (did you mean 'with_expert'?)"
    ]


def test_a_typo_in_from_suppresses_coverage_and_deadline_follow_ons_only() -> None:
    def change(d: Data) -> None:
        for t in d["transitions"]:
            if t["event"] == "expert_overdue":
                t["from"] = ["waitng"]

    found = problems(change)
    # not also "acute_danger does not cover" or "no transition for 'expert_overdue'
    # leaves step 'waiting'": the misspelt source is that transition
    assert found == ["$.transitions[2].from[0]: unknown step 'waitng' (did you mean 'waiting'?)"]


def test_an_unreachable_step_is_still_reported_when_every_reference_is_known() -> None:
    def change(d: Data) -> None:
        d["steps"]["aside"] = {
            "kind": "terminal",
            "instructions": {"nl": "Opzij.", "en": "Aside."},
        }

    assert problems(change) == ["$.steps.aside: no transition reaches this step from 'arrived'"]
