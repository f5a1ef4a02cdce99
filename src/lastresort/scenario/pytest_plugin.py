"""pytest items for ``*.scenario.toml`` files (needs pytest).

Imported only by the pytest hooks of :mod:`lastresort.testing` (which registers
this module as a pytest plugin for its fixture ``recording_delivery``), so that
pytest never becomes a dependency of the library itself. A failing scenario is reported
with its readable diff and timeline, not a traceback; an unusable file is a
collection error listing every problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..engine.installed import load_installed
from ..engine.recording import RecordingDelivery, replacing_delivery
from ..errors import LastResortError, ScenarioError
from ..protocol.model import Protocol
from .files import load_scenario
from .model import Scenario
from .runner import ScenarioResult, run_scenario

__all__ = ["ScenarioFailed", "ScenarioFile", "ScenarioItem", "recording_delivery"]

_PROTOCOLS = pytest.StashKey[dict[str, Protocol]]()


class ScenarioFailed(AssertionError):
    """A scenario ran and one of its steps failed; ``result`` says which and why."""

    def __init__(self, result: ScenarioResult) -> None:
        self.result = result
        super().__init__(result.report())


class ScenarioFile(pytest.File):
    """A ``*.scenario.toml`` file: one test item for its scenario."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenario = load_scenario(self.path, self._protocols())
        except ScenarioError as exc:
            raise self.CollectError(f"unusable scenario file: {exc}") from exc
        except LastResortError as exc:  # the installed plugins could not be loaded
            raise self.CollectError(f"cannot check {self.path}: {exc}") from exc
        yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)

    def _protocols(self) -> dict[str, Protocol]:
        stash = self.config.stash
        if _PROTOCOLS not in stash:
            stash[_PROTOCOLS] = dict(load_installed().protocols)
        return stash[_PROTOCOLS]


class ScenarioItem(pytest.Item):
    """One scenario, run on a fresh engine when the test runs."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        real = bool(self.config.getoption("real_delivery", default=False))
        result = run_scenario(self.scenario, real_delivery=real)
        if not result.passed:
            raise ScenarioFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.result.report()
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario: {self.name}"


@pytest.fixture
def recording_delivery() -> Iterator[RecordingDelivery]:
    """A :class:`~lastresort.testing.RecordingDelivery` that alone delivers for every
    :class:`~lastresort.Engine` the test builds: no installed delivery plugin (nor
    the default log) is called, nobody is paged, and the test asserts on
    ``recording_delivery.delivered``. Engines built before the fixture are not
    affected."""
    recording = RecordingDelivery()
    with replacing_delivery(recording):
        yield recording
