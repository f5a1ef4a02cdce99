"""Party groups (issue 14, "Reuse"): a flow declared once for several parties.

``[groups] expert = [...]``; a step or transition writing ``{expert}`` is one copy per
member, ``"@expert"`` in ``by``/``notify`` is every member. Expansion happens at load
time, so the verifier, the SCXML export and the differential oracle see the expanded
protocol; problems in a copy are located at the template, naming the member.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.protocol.groups import expand_groups
from tests.oracle_kit import guided_paths, opening_for, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "two_experts.toml"
TASKFORCE = Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml"


def _data() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def two() -> lr.Protocol:
    return lr.load_protocol(EXAMPLE)


def test_templates_become_one_copy_per_member_in_place(two: lr.Protocol) -> None:
    assert list(two.steps) == [
        "arrived",
        "awaiting_expert",
        "escalated",
        "with_vangnet",
        "with_veilig_thuis",
        "vangnet_reported",
        "veilig_thuis_reported",
        "vangnet_referred_on",
        "veilig_thuis_referred_on",
        "closed",
        "closed_referred",
        "with_crisis_service",
        "with_police",
    ]
    step = two.steps["with_veilig_thuis"]
    assert step.responsible == "veilig_thuis"
    # in texts the member's name in that language, in keys and references its key
    assert step.label == lr.Text("Kind bij Veilig Thuis", "Child with Veilig Thuis")
    assert step.instructions.nl.startswith("U bent van Veilig Thuis en verantwoordelijk")
    assert [t.event for t in two.transitions] == [
        "call_experts",
        "experts_not_called",
        "vangnet_takes_over",
        "veilig_thuis_takes_over",
        "expert_overdue",
        "no_expert_available",
        "report_made",
        "report_made",
        "refer_on",
        "refer_on",
        "close",
        "close",
        "close",
        "close",
        "acute_danger",
    ]
    takeover = two.transitions[3]
    assert takeover.target == "with_veilig_thuis"
    assert takeover.by == ("veilig_thuis",)
    assert takeover.label == lr.Text("Veilig Thuis neemt over", "Veilig Thuis takes over")
    assert two.transitions[11].sources == ("veilig_thuis_reported",)
    # "@expert": every member, in the group's order, in one transition
    assert two.transitions[0].notify == ("vangnet", "veilig_thuis")
    assert two.transitions[-1].by == ("counter", "vangnet", "veilig_thuis", "mayor_staff", "mayor")


def test_the_expanded_protocol_is_an_ordinary_one(two: lr.Protocol) -> None:
    assert lr.verify(two).ok
    assert lr.load_protocol(lr.dump_protocol(two)) == two  # the copies, no template
    assert "groups" not in lr.dump_protocol(two)
    assert lr.from_scxml(lr.to_scxml(two)) == two


def test_the_differential_oracle_agrees_on_every_copy(two: lr.Protocol) -> None:
    paths = guided_paths(two)
    assert len(paths) >= len(two.transitions)
    for moves in paths:
        mismatch = run(two, moves, **(opening_for(two, None, moves) or {}))
        assert mismatch is None, str(mismatch)


def test_the_engine_runs_a_copy(two: lr.Protocol) -> None:
    engine = lr.Engine(protocols=[two], store=lr.MemoryStore(), entry_points=False)
    counter = lr.Actor("counter", "c-1")
    enc = engine.open("two-experts", actor=counter)
    engine.fire(enc.id, "call_experts", actor=counter)
    engine.fire(enc.id, "veilig_thuis_takes_over", actor=lr.Actor("veilig_thuis", "vt-7"))
    assert engine.get(enc.id).responsible == "veilig_thuis"
    with pytest.raises(lr.NotPermitted):  # the other member's copy is not its to fire
        engine.fire(enc.id, "report_made", actor=lr.Actor("vangnet", "v-1"))
    engine.fire(enc.id, "report_made", actor=lr.Actor("veilig_thuis", "vt-7"))
    assert engine.get(enc.id).state == "veilig_thuis_reported"


def test_the_shipped_taskforce_informs_the_mayors_office_through_a_group() -> None:
    raw = tomllib.loads(TASKFORCE.read_text(encoding="utf-8"))
    assert raw["groups"] == {"mayors_office": ["mayor", "mayor_staff"]}
    protocol = lr.load_protocol(TASKFORCE)
    takeover = next(t for t in protocol.transitions if t.event == "expert_takes_over")
    assert takeover.notify == ("mayor", "mayor_staff")
    assert not any("@" in n for t in protocol.transitions for n in (*t.by, *t.notify))


# -- problems, located at the template ------------------------------------------------------


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    return caught.value.problems


def test_a_problem_in_a_copy_is_reported_at_the_template_naming_the_member() -> None:
    data = _data()
    data["steps"]["with_{expert}"]["deadline"] = {"after": "0m", "event": "late"}
    problems = _problems(data)
    assert (
        "$.steps['with_{expert}'].deadline.after: must be longer than zero"
        " (in the copy for expert = 'vangnet')" in problems
    )
    assert (
        "$.steps['with_{expert}'].deadline.after: must be longer than zero"
        " (in the copy for expert = 'veilig_thuis')"
    ) in problems


def test_a_transition_problem_points_at_the_file_index(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'to = "{expert}_referred_on"', 'to = "{expert}_refered_on"'
    )
    path = tmp_path / "two.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(path)
    # file transition 6 (refer_on) is expanded transitions 8 and 9; both point back at it
    assert caught.value.problems[:2] == [
        "$.transitions[6].to: unknown step 'vangnet_refered_on' (did you mean"
        " 'vangnet_referred_on'?) (in the copy for expert = 'vangnet')",
        "$.transitions[6].to: unknown step 'veilig_thuis_refered_on' (did you mean"
        " 'veilig_thuis_referred_on'?) (in the copy for expert = 'veilig_thuis')",
    ]
    assert caught.value.located is not None
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "_refered_on" in t)
    assert caught.value.located[0].startswith(f"{path}:{line}:")


def test_a_plain_transition_after_templates_keeps_its_file_index() -> None:
    data = _data()
    data["transitions"][-1]["to"] = "nowhere"  # acute_danger: file index 9, expanded 14
    problems = _problems(data)
    assert any(p.startswith("$.transitions[9].to: unknown step 'nowhere'") for p in problems)
    assert not any("$.transitions[14]" in p for p in problems)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda d: d["groups"].update(expert=["vangnet", "veilig_thuiss"]),
            "$.groups.expert[1]: unknown party 'veilig_thuiss' (did you mean 'veilig_thuis'?)",
        ),
        (
            lambda d: d["groups"].update(expert=["vangnet", "vangnet"]),
            "$.groups.expert[1]: 'vangnet' is named twice",
        ),
        (lambda d: d["groups"].update(expert=[]), "$.groups.expert: names no party"),
        (
            lambda d: d["groups"].update(expert="vangnet"),
            "$.groups.expert: expected a list of party keys",
        ),
        (
            lambda d: d.update(groups=["vangnet"]),
            "$.groups: expected a table of group names and party keys",
        ),
        (
            lambda d: d["groups"].update(counter=["vangnet"]),
            "$.groups.counter: a party has the same key; name the group differently",
        ),
        (
            lambda d: d["transitions"][2].update(by=["{experts}"]),
            "$.transitions[2]: unknown group {experts} (did you mean 'expert'?)",
        ),
        (
            lambda d: (
                d["steps"].update(
                    {"with_{expert}_{other}": copy.deepcopy(d["steps"]["with_{expert}"])}
                )
                or d["groups"].update(other=["counter"])
            ),
            "$.steps['with_{expert}_{other}']: a template uses one group, not expert, other",
        ),
        (
            lambda d: d["steps"].update(
                {"anyone": {**d["steps"]["with_{expert}"], "responsible": "{expert}"}}
            ),
            "$.steps.anyone: a step template's key must contain {expert}, so that each copy"
            " has a key of its own",
        ),
        (
            lambda d: d["steps"].update({"with_vangnet": d["steps"]["arrived"]}),
            "$.steps['with_{expert}']: the copy for expert = 'vangnet' is step 'with_vangnet',"
            " which exists already",
        ),
    ],
)
def test_bad_groups_are_refused_with_a_located_problem(edit: Any, problem: str) -> None:
    data = _data()
    edit(data)
    before = copy.deepcopy(data)
    assert problem in _problems(data)
    assert data == before  # the caller's data is not changed


def test_a_file_without_groups_is_left_exactly_as_it_is() -> None:
    data = tomllib.loads(TASKFORCE.read_text(encoding="utf-8"))
    del data["groups"]
    expansion = expand_groups(data)
    assert expansion.data is data
    assert expansion.origins == {}
