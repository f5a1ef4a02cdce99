"""A party without a response model never silently gets a made-up one in simulation:
an error naming it, or an explicit ``default_response`` named in the report."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest

import lastresort as lr
from lastresort.errors import SimulationConfigError
from lastresort.simulate import check_config, monte_carlo
from lastresort.simulate.config import SimulationConfig, dump_config, load_config
from lastresort.simulate.report import defaulted_note, to_json
from tests.conftest import TASKFORCE


def _without_expert_response() -> lr.Protocol:
    data: dict[str, Any] = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    del data["parties"]["expert"]["response"]
    return lr.load_protocol(data)


def test_a_missing_response_is_an_error_naming_the_party() -> None:
    protocol = _without_expert_response()
    config = SimulationConfig()
    before = copy.deepcopy(dump_config(config))
    problems = check_config(config, [protocol])
    assert [p for p in problems if "response" in p] == [
        "$.parties.expert.response: party 'expert' of protocol 'taskforce' fires events but"
        " has no response model; give it a `response` in the protocol or here ([parties.expert]"
        " response), or set default_response (it is then named in the report)"
    ]
    with pytest.raises(SimulationConfigError, match="party 'expert'"):
        monte_carlo([protocol], 5, config=config, entry_points=False)
    assert dump_config(config) == before


def test_a_response_in_the_configuration_is_enough() -> None:
    config = load_config({"parties": {"expert": {"response": {"median": "20m", "p90": "40m"}}}})
    assert check_config(config, [_without_expert_response()]) == []


def test_an_explicit_default_response_is_named_in_the_report() -> None:
    config = load_config({"default_response": {"median": "10m", "p90": "30m"}})
    assert config.default_response is not None
    assert config.default_response.p90 == timedelta(minutes=30)
    result = monte_carlo([_without_expert_response()], 5, config=config, entry_points=False)
    assert result.defaulted == {"taskforce": ("expert",)}
    assert defaulted_note(result) == (
        "response times: default_response (median 10m, p90 30m) used for taskforce: expert"
    )
    assert json.loads(to_json(result))["default_response_used_for"] == {"taskforce": ["expert"]}


def test_no_default_is_named_when_every_party_has_its_own() -> None:
    result = monte_carlo([lr.load_protocol(TASKFORCE)], 5, entry_points=False)
    assert result.defaulted == {}
    assert defaulted_note(result) == "response times: every acting party has its own model"
    assert "default_response" not in dump_config(result.config)
    assert load_config(dump_config(result.config)) == result.config
