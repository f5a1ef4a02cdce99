"""Simulation on the real engine in virtual time.

Scenario files (``*.scenario.toml``): a scripted encounter and what must happen in
it, loaded with :func:`load_scenario` and run with :func:`run_scenario`; see
``docs/scenarios.md``.
"""

from .scenario import (
    AllowedExpectation,
    DeadlineExpectation,
    NotificationExpectation,
    Scenario,
    ScenarioStep,
)
from .scenario_file import load_scenario
from .scenario_run import Mismatch, ScenarioFailure, ScenarioResult, run_scenario

__all__ = [
    "AllowedExpectation",
    "DeadlineExpectation",
    "Mismatch",
    "NotificationExpectation",
    "Scenario",
    "ScenarioFailure",
    "ScenarioResult",
    "ScenarioStep",
    "load_scenario",
    "run_scenario",
]
