"""What a protocol promises about the mayor (``[requirements] mayor = "informed" | "met"``),
the deprecated ``mayor_contact``, and figures marked as example values (issue 15)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.protocol.model import MayorPromise
from lastresort.render.card import protocol_card

MINI = Path(__file__).parent / "protocols" / "verify" / "mini.toml"


def mini(**requirements: Any) -> dict[str, Any]:
    """The verifier's mini protocol, with the mayor promise given (``mayor_contact`` dropped)."""
    data = tomllib.loads(MINI.read_text(encoding="utf-8"))
    data["requirements"].pop("mayor_contact")
    data["requirements"].update(requirements)
    return data


def skip_the_meeting(data: dict[str, Any]) -> None:
    """The expert may report without the mayor meeting the child (no notification)."""
    data["transitions"].append(
        {"event": "report_made", "from": ["with_expert"], "to": "reported", "by": ["expert"]}
    )
    # ``reported`` is tagged mayor_involved in mini; a report without meeting is not
    data["steps"]["reported"]["tags"] = ["child_with_expert", "reported"]


def transition(data: dict[str, Any], event: str, source: str) -> dict[str, Any]:
    return next(t for t in data["transitions"] if t["event"] == event and source in t["from"])


def path_of(result: lr.PropertyResult) -> list[tuple[str | None, str]]:
    return [(p.event, p.step) for p in result.counterexample]


# -- informed ------------------------------------------------------------------------------


def test_informed_fails_on_a_path_that_never_tells_the_mayor() -> None:
    data = mini(mayor="informed")
    skip_the_meeting(data)
    result = lr.verify(lr.load_protocol(data)).result("mayor")
    assert result.applicable
    assert not result.ok
    assert path_of(result) == [
        (None, "arrived"),
        ("call_expert", "waiting"),
        ("expert_takes_over", "with_expert"),
        ("report_made", "reported"),
        ("close", "closed"),
    ]
    assert "without informing the mayor" in result.message
    assert "(mayor)" in result.message


def test_informed_holds_when_the_handover_notifies_the_mayor() -> None:
    data = mini(mayor="informed")
    skip_the_meeting(data)
    transition(data, "expert_takes_over", "waiting")["notify"] = ["mayor"]
    report = lr.verify(lr.load_protocol(data))
    assert report.result("mayor").ok, report.result("mayor").message


def test_informed_counts_the_transition_into_the_closing_step() -> None:
    data = mini(mayor="informed")
    skip_the_meeting(data)
    transition(data, "close", "reported")["notify"] = ["mayor"]
    assert lr.verify(lr.load_protocol(data)).result("mayor").ok


def test_informed_counts_a_meeting_as_informing() -> None:
    """mini as it is: every closing path passes mayor_met (tagged mayor_involved)."""
    assert lr.verify(lr.load_protocol(mini(mayor="informed"))).result("mayor").ok


def test_informed_is_not_satisfied_by_notifying_a_party_of_another_kind() -> None:
    data = mini(mayor="informed")
    skip_the_meeting(data)
    transition(data, "expert_takes_over", "waiting")["notify"] = ["police", "clerk"]
    assert not lr.verify(lr.load_protocol(data)).result("mayor").ok


def test_informed_ignores_a_notification_on_acute_danger_only() -> None:
    data = mini(mayor="informed")
    skip_the_meeting(data)
    transition(data, "acute_danger", "*")["notify"] = ["mayor"]
    assert not lr.verify(lr.load_protocol(data)).result("mayor").ok


def test_informed_fails_on_one_uninformed_branch_among_informed_ones() -> None:
    data = mini(mayor="informed")
    skip_the_meeting(data)
    transition(data, "expert_takes_over", "waiting")["notify"] = ["mayor"]
    # a second way to the expert that tells nobody
    data["transitions"].append(
        {"event": "expert_comes_early", "from": ["arrived"], "to": "with_expert", "by": ["expert"]}
    )
    result = lr.verify(lr.load_protocol(data)).result("mayor")
    assert not result.ok
    assert path_of(result)[1] == ("expert_comes_early", "with_expert")


# -- met -----------------------------------------------------------------------------------


def test_met_fails_where_informed_holds() -> None:
    data = mini(mayor="met")
    skip_the_meeting(data)
    transition(data, "expert_takes_over", "waiting")["notify"] = ["mayor"]
    result = lr.verify(lr.load_protocol(data)).result("mayor")
    assert not result.ok
    assert path_of(result)[-2:] == [("report_made", "reported"), ("close", "closed")]
    data["requirements"]["mayor"] = "informed"
    assert lr.verify(lr.load_protocol(data)).result("mayor").ok


def test_met_holds_when_every_closing_path_meets_the_mayor() -> None:
    assert lr.verify(lr.load_protocol(mini(mayor="met"))).ok


# -- no promise, the deprecated key, bad values --------------------------------------------


def test_no_promise_is_not_applicable() -> None:
    data = mini()
    skip_the_meeting(data)
    result = lr.verify(lr.load_protocol(data)).result("mayor")
    assert result.ok
    assert not result.applicable
    assert "no requirements.mayor" in result.message


def test_mayor_contact_true_still_loads_and_means_met() -> None:
    data = mini(mayor_contact=True)
    protocol = lr.load_protocol(data)
    assert protocol.requirements.mayor is None
    assert protocol.requirements.mayor_promise is MayorPromise.MET
    skip_the_meeting(data)
    transition(data, "expert_takes_over", "waiting")["notify"] = ["mayor"]
    assert not lr.verify(lr.load_protocol(data)).result("mayor").ok  # met, not informed
    assert lr.dump_protocol(protocol)["requirements"]["mayor_contact"] is True


def test_mayor_contact_with_mayor_informed_is_a_located_problem() -> None:
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(mini(mayor_contact=True, mayor="informed"))
    assert caught.value.problems == [
        "$.requirements.mayor_contact: true (deprecated, read as mayor = 'met') contradicts"
        " mayor = 'informed'; remove mayor_contact"
    ]


def test_mayor_contact_with_mayor_met_agrees() -> None:
    protocol = lr.load_protocol(mini(mayor_contact=True, mayor="met"))
    assert protocol.requirements.mayor_promise is MayorPromise.MET


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "informd",
            "$.requirements.mayor: unknown mayor promise 'informd' (did you mean 'informed'?);"
            " one of informed, met",
        ),
        (True, "$.requirements.mayor: expected a mayor promise (informed, met), got bool True"),
    ],
)
def test_a_bad_promise_is_a_located_problem(value: object, problem: str) -> None:
    data = mini(mayor=value)
    before = repr(data)
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert caught.value.problems == [problem]
    assert repr(data) == before  # the mapping given is not changed


def test_the_promise_round_trips() -> None:
    for value in ("informed", "met"):
        protocol = lr.load_protocol(mini(mayor=value))
        dumped = lr.dump_protocol(protocol)
        assert dumped["requirements"]["mayor"] == value
        assert lr.load_protocol(dumped) == protocol


# -- example values ------------------------------------------------------------------------


def test_example_deadlines_and_responses_load_dump_and_show_on_the_card() -> None:
    data = mini(mayor="met")
    data["steps"]["waiting"]["deadline"]["example"] = True
    data["parties"]["expert"]["response"]["example"] = True
    protocol = lr.load_protocol(data)
    assert protocol.steps["waiting"].deadline is not None
    assert protocol.steps["waiting"].deadline.example is True
    assert protocol.steps["arrived"].deadline is not None
    assert protocol.steps["arrived"].deadline.example is False
    assert protocol.parties["expert"].response is not None
    assert protocol.parties["expert"].response.example is True
    dumped = lr.dump_protocol(protocol)
    assert dumped["steps"]["waiting"]["deadline"]["example"] is True
    assert "example" not in dumped["steps"]["arrived"]["deadline"]
    assert lr.load_protocol(dumped) == protocol
    nl, en = protocol_card(protocol, "nl"), protocol_card(protocol, "en")
    assert (
        "Termijn: 30 min → expert_overdue * (voorbeeldwaarde: de gemeente stelt deze termijn"
        " zelf vast)"
        in nl.splitlines()[nl.splitlines().index("2. waiting  (kenmerken: kind aanwezig)") + 3]
    )
    assert "Termijn: 10 min → expert_not_called\n" in nl  # not an example: no mark
    assert "Termijnen met * zijn voorbeeldwaarden: de gemeente stelt ze zelf vast." in nl
    assert "Deadline: 30 min → expert_overdue * (example value: the municipality sets" in en
    assert "Deadlines marked * are example values: the municipality sets them itself." in en


def test_a_card_without_example_values_has_no_footnote() -> None:
    card = protocol_card(lr.load_protocol(mini(mayor="informed")), "en")
    assert "example value" not in card
    assert "the mayor is always informed; the expert decides whether and when" in card


def test_a_bad_example_flag_is_a_located_problem() -> None:
    data = mini()
    data["steps"]["waiting"]["deadline"]["example"] = "yes"
    data["parties"]["expert"]["response"]["example"] = 1
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert caught.value.problems == [
        "$.parties.expert.response.example: expected true or false, got int 1",
        "$.steps.waiting.deadline.example: expected true or false, got str 'yes'",
    ]


def test_the_dutch_card_says_door_de_klok() -> None:
    card = protocol_card(lr.load_protocol(mini(mayor="informed")), "nl")
    assert "(door de klok)" in card
    assert "(door klok)" not in card


# -- the shipped counter protocols ---------------------------------------------------------

COUNTER_PROTOCOLS = ("taskforce", "amsterdam", "rotterdam", "veilig-thuis")


@pytest.fixture(scope="module")
def installed() -> lr.Engine:
    return lr.Engine()  # the built-in protocol and the installed plugins


@pytest.mark.parametrize("pid", COUNTER_PROTOCOLS)
def test_every_counter_protocol_promises_informed_and_keeps_it(
    installed: lr.Engine, pid: str
) -> None:
    protocol = installed.protocol(pid)
    assert protocol.requirements.mayor_promise is MayorPromise.INFORMED
    assert protocol.requirements.mayor_contact is False
    assert lr.verify(protocol).result("mayor").ok
    # attack: take the mayor out of every notification and the promise is broken
    mayors = {k for k, p in protocol.parties.items() if p.kind is lr.PartyKind.MAYOR}
    data = lr.dump_protocol(protocol)
    for t in data["transitions"]:
        t["notify"] = [n for n in t.get("notify", []) if n not in mayors]
    result = lr.verify(lr.load_protocol(data, check=False)).result("mayor")
    assert not result.ok
    assert result.counterexample[-1].step in protocol.closing_steps()


@pytest.mark.parametrize("pid", COUNTER_PROTOCOLS)
def test_no_counter_protocol_hands_the_child_to_the_police_but_for_acute_danger(
    installed: lr.Engine, pid: str
) -> None:
    protocol = installed.protocol(pid)
    police = {k for k, p in protocol.parties.items() if k == "police"}
    for t in protocol.transitions:
        if protocol.steps[t.target].responsible in police:
            assert t.event == "acute_danger", t.event


@pytest.mark.parametrize("pid", COUNTER_PROTOCOLS)
def test_every_invented_figure_is_marked_as_an_example(installed: lr.Engine, pid: str) -> None:
    protocol = installed.protocol(pid)
    for key, step in protocol.steps.items():
        if step.deadline is None:
            continue
        # the one national norm: Veilig Thuis's 5 working days, counted as 7 days
        norm = pid == "veilig-thuis" and key == "reported"
        assert step.deadline.example is not norm, key
    for key, party in protocol.parties.items():
        assert party.response is None or party.response.example, key
    assert protocol.version == "2026-12-04"
    for source in ("27 January 2014", "Wet verplichte meldcode", "Jeugdwet", "Wmo 2015"):
        assert source in protocol.source, (pid, source)


@pytest.mark.parametrize("pid", COUNTER_PROTOCOLS)
def test_the_dutch_texts_have_none_of_the_quoted_errors(installed: lr.Engine, pid: str) -> None:
    protocol = installed.protocol(pid)
    texts = [s.instructions.nl for s in protocol.steps.values()]
    texts += [p.name.nl for p in protocol.parties.values()]
    for text in texts:
        for wrong in (
            "ben je nu in gevaar",
            "Beide en",
            "weet waar het veilig is",
            "voor afsluiting",
            "niet weggaan",
            "omdat het gevaar",
            "politie het kind over",
        ):
            assert wrong not in text, (pid, wrong)
    card = protocol_card(protocol, "nl")
    assert "ben je nu veilig?" in card


def test_taskforce_never_asks_veilig_thuis_to_report_to_itself(installed: lr.Engine) -> None:
    protocol = installed.protocol("taskforce")
    assert "Veilig Thuis" in protocol.parties["expert"].name.nl  # the expert may be Veilig Thuis
    for key, step in protocol.steps.items():
        if step.responsible == "expert":
            assert "melding bij Veilig Thuis" not in step.instructions.nl, key
            assert "Report to Veilig Thuis" not in step.instructions.en, key
