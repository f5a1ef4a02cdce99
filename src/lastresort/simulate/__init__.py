"""Simulation on the real engine in virtual time.

Scenario files (``*.scenario.toml``): a scripted encounter and what must happen in
it, loaded with :func:`load_scenario` and run with :func:`run_scenario`; see
``docs/scenarios.md``.
"""

from ..errors import SimulationAborted
from ..scenario.files import load_scenario
from ..scenario.model import (
    AllowedExpectation,
    DeadlineExpectation,
    NotificationExpectation,
    Scenario,
    ScenarioStep,
)
from ..scenario.runner import Mismatch, ScenarioFailure, ScenarioResult, run_scenario
from .check import check_config
from .config import (
    Arrivals,
    Children,
    PartySettings,
    ProtocolSettings,
    SimulationConfig,
    SimulationConfigError,
    dump_config,
    load_config,
)
from .kpi import Breach, Comparison, DeadlineRate, PartyLoad, ProtocolKPIs, Samples, Wait
from .montecarlo import MonteCarloResult, monte_carlo

__all__ = [
    "AllowedExpectation",
    "Arrivals",
    "Breach",
    "Children",
    "Comparison",
    "DeadlineExpectation",
    "DeadlineRate",
    "Mismatch",
    "MonteCarloResult",
    "NotificationExpectation",
    "PartyLoad",
    "PartySettings",
    "ProtocolKPIs",
    "ProtocolSettings",
    "Samples",
    "Scenario",
    "ScenarioFailure",
    "ScenarioResult",
    "ScenarioStep",
    "SimulationAborted",
    "SimulationConfig",
    "SimulationConfigError",
    "Wait",
    "check_config",
    "dump_config",
    "load_config",
    "load_scenario",
    "monte_carlo",
    "run_scenario",
]
