"""Adversarial review of the demo walk's preference for the mayor (commit "demo:
where the mayor may act ... the walk shows it and then closes").

The preference is for the mayor stepping in where another party is responsible (the
mayor meeting the child). In a protocol where the mayor is the responsible party
from the start (huisverbod: the mayor decides whether to impose a house ban), preferring
the mayor's choice of a closing step ended the demo at once with "no order", hiding
the whole protocol; it walked through the order before."""

from __future__ import annotations

import lastresort as lr
from lastresort.scenario.demo import run_demo


def test_the_huisverbod_demo_imposes_the_order_and_walks_it_to_its_end() -> None:
    run = run_demo(protocol_id="huisverbod")
    steps = [e.step for e in run.timeline if isinstance(e, lr.StepEntered)]
    assert "in_force" in steps
    assert len(steps) >= 5
    state = run.engine.get(run.encounter_id).state
    assert state != "not_imposed"
    assert run.engine.protocol("huisverbod").steps[state].terminal


def test_every_installed_protocol_walks_past_its_first_decision() -> None:
    engine = lr.Engine()
    for protocol_id in sorted(engine.protocols):
        run = run_demo(protocol_id=protocol_id)
        protocol = run.engine.protocol(protocol_id)
        steps = [e.step for e in run.timeline if isinstance(e, lr.StepEntered)]
        assert len(steps) >= 3, (protocol_id, steps)
        assert protocol.steps[run.engine.get(run.encounter_id).state].terminal, protocol_id


def test_the_mayor_still_meets_the_child_where_the_mayor_steps_in() -> None:
    for protocol_id in ("taskforce", "amsterdam", "veilig-thuis"):
        run = run_demo(protocol_id=protocol_id)
        events = [e.event for e in run.timeline if isinstance(e, lr.StepEntered)]
        assert "mayor_spoke_with_child" in events, (protocol_id, events)
