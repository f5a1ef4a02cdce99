"""Monte Carlo comparison of arrangements: many simulated children, the same for
every protocol, on the real Engine; KPIs that do not depend on how the work was
split.

The run is cut into chunks of ``config.chunk`` encounters. Chunk ``i`` draws its
random numbers only from ``(seed, i)``, each protocol of the comparison sees the
same children in it, and chunk results are merged in chunk order, so the same
seed gives identical KPIs for one worker, a process pool, or a Dask cluster::

    from lastresort.simulate import monte_carlo

    result = monte_carlo(["taskforce"], encounters=1000, seed=7)
    result.comparison["taskforce"].with_expert.p90     # minutes
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed

from attrs import field, frozen

from ..engine.engine import Engine
from ..engine.installed import load_installed
from ..protocol.model import Protocol
from .check import check_config, defaulted_responses
from .config import SimulationConfig, SimulationConfigError
from .kpi import Comparison, Samples, kpis, merge
from .plan import plan_of
from .runner import run_chunk, run_chunk_owned

__all__ = ["MonteCarloResult", "Progress", "chunk_sizes", "monte_carlo"]

#: ``progress(done, total)``: encounters per protocol simulated so far, and in all.
Progress = Callable[[int, int], None]


@frozen
class MonteCarloResult:
    """What :func:`monte_carlo` returns.

    :param comparison: the KPIs of every protocol (frozen, comparable).
    :param samples: the merged raw samples per protocol id (waiting times in
        seconds), for plots and your own statistics.
    :param config: the configuration used.
    :param protocols: the protocols simulated, in the order given.
    :param defaulted: per protocol id, the parties whose response times came from
        ``config.default_response`` (none unless it is set); shown in the report.
    """

    comparison: Comparison
    samples: Mapping[str, Samples]
    config: SimulationConfig
    protocols: tuple[Protocol, ...]
    defaulted: Mapping[str, tuple[str, ...]] = field(factory=dict)


def chunk_sizes(encounters: int, chunk: int) -> list[int]:
    """How ``encounters`` are cut into chunks of at most ``chunk`` (the last one smaller)."""
    full, rest = divmod(encounters, chunk)
    return [chunk] * full + ([rest] if rest else [])


def _whole(name: str, value: object, minimum: int) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return [f"{name}: expected a whole number of at least {minimum}, got {value!r}"]
    return []


def _resolve(
    protocols: Sequence[Protocol | str], plugins: Sequence[object], entry_points: bool
) -> list[Protocol]:
    problems: list[str] = []
    if isinstance(protocols, str | Protocol) or not protocols:
        raise SimulationConfigError(
            problems=["protocols: expected a non-empty list of protocols or ids"]
        )
    wanted = [p for p in protocols if isinstance(p, str)]
    installed = load_installed(plugins, entry_points).protocols if wanted else {}
    found: list[Protocol] = []
    for i, item in enumerate(protocols):
        if isinstance(item, Protocol):
            found.append(item)
        elif isinstance(item, str) and item in installed:
            found.append(installed[item])
        elif isinstance(item, str):
            known = ", ".join(sorted(installed)) or "none"
            problems.append(f"protocols[{i}]: unknown protocol {item!r}; installed: {known}")
        else:
            problems.append(f"protocols[{i}]: expected a Protocol or an id, got {item!r}")
    ids = [p.id for p in found]
    problems.extend(
        f"protocols: {pid!r} is given twice" for pid in sorted({i for i in ids if ids.count(i) > 1})
    )
    if problems:
        raise SimulationConfigError(problems=problems)
    return found


def monte_carlo(
    protocols: Sequence[Protocol | str],
    encounters: int,
    seed: int = 0,
    config: SimulationConfig | None = None,
    *,
    workers: int = 1,
    executor: Executor | None = None,
    plugins: Sequence[object] = (),
    entry_points: bool = True,
    progress: Progress | None = None,
) -> MonteCarloResult:
    """Simulate ``encounters`` children per protocol and compute the KPIs.

    :param protocols: :class:`~lastresort.Protocol` values, or ids of installed ones.
    :param encounters: children who get in, per protocol.
    :param seed: the seed; the same seed, configuration and protocols give the
        same KPIs for any ``workers`` or ``executor``.
    :param config: arrivals, children, party overrides and policies
        (default: :class:`SimulationConfig` ``()``).
    :param workers: run on a process pool of this many processes (ignored when
        ``executor`` is given; 1: in this process).
    :param executor: any :class:`concurrent.futures.Executor`, e.g. a
        ``dask.distributed`` client's ``client.get_executor()``. Arguments are
        pickled: ``plugins`` must be picklable (instances of module-level classes).
    :param plugins: plugin objects the engines are built with (guards, observers).
    :param entry_points: load installed plugins in every engine (for guards they answer).
    :param progress: called with ``(done, total)`` encounters after every chunk.
    :raises SimulationConfigError: for bad arguments, an unknown protocol id or a
        configuration that does not fit the protocols (every problem at once).
    :raises ProtocolError: for an invalid protocol.
    """
    config = config if config is not None else SimulationConfig()
    problems = _whole("encounters", encounters, 1) + _whole("workers", workers, 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(f"seed: expected a whole number, got {seed!r}")
    if not isinstance(config, SimulationConfig):
        problems.append(f"config: expected a SimulationConfig, got {type(config).__name__}")
    if problems:
        raise SimulationConfigError(problems=problems)
    found = _resolve(protocols, plugins, entry_points)
    # build one engine here, so that an invalid protocol or plugin fails before any work
    Engine(protocols=found, plugins=plugins, entry_points=entry_points)
    problems = check_config(config, found)
    if problems:
        raise SimulationConfigError(problems=problems)
    sizes = chunk_sizes(encounters, config.chunk)
    args = (tuple(found), config, seed)
    results: list[list[Samples]] = []
    if executor is None and workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            # processes this call owns: their collector may be paused per chunk
            results = _run_on(
                pool, run_chunk_owned, sizes, args, plugins, entry_points, progress, encounters
            )
    elif executor is not None:
        # the caller's executor (threads, Dask): nothing global of theirs is touched
        results = _run_on(
            executor, run_chunk, sizes, args, plugins, entry_points, progress, encounters
        )
    else:
        done = 0
        for index, size in enumerate(sizes):
            results.append(run_chunk(*args, index, size, plugins, entry_points))
            done += size
            if progress is not None:
                progress(done, encounters)
    merged = {p.id: merge((chunk[i] for chunk in results), p.id) for i, p in enumerate(found)}
    comparison = Comparison(
        seed=seed,
        encounters=encounters,
        chunk=config.chunk,
        protocols=tuple(kpis(p, merged[p.id], _capacities(p, config)) for p in found),
    )
    defaulted = {
        p.id: found_here
        for p in found
        if config.default_response is not None and (found_here := defaulted_responses(config, p))
    }
    return MonteCarloResult(comparison, merged, config, tuple(found), defaulted)


def _run_on(
    executor: Executor,
    run: Callable[..., list[Samples]],
    sizes: list[int],
    args: tuple[tuple[Protocol, ...], SimulationConfig, int],
    plugins: Sequence[object],
    entry_points: bool,
    progress: Progress | None,
    total: int,
) -> list[list[Samples]]:
    futures: list[Future[list[Samples]]] = [
        executor.submit(run, *args, index, size, tuple(plugins), entry_points)
        for index, size in enumerate(sizes)
    ]
    order = {id(f): i for i, f in enumerate(futures)}
    done = 0
    try:
        for future in as_completed(futures):
            future.result()  # raise the first failure at once
            done += sizes[order[id(future)]]
            if progress is not None:
                progress(done, total)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [future.result() for future in futures]  # chunk order, whatever finished first


def _capacities(protocol: Protocol, config: SimulationConfig) -> dict[str, int | None]:
    plan = plan_of(protocol, config)
    return {key: model.capacity for key, model in plan.parties.items()}
