"""The Store contract, driven by hypothesis: the same random operations on a
MemoryStore, a SQLiteStore and a PostgresStore give the same answers and the same errors.

Operations mix valid and invalid input: commits that hold together and ones that do
not (wrong versions, foreign rows, naive times), claims with random times, leases and
limits (invalid ones included), deliveries and failures of known and unknown
notifications, and reads of unknown ids and of values that are not ids. After every
step the whole observable state of both stores is compared.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import lastresort as lr
from lastresort.store import Change
from tests import pg_kit
from tests.store_kit import START
from tests.test_store_contract import everything

pytestmark = pytest.mark.slow  # see pyproject.toml: make test runs it; -m 'not slow' skips

IDS = ["a", "b", "c"]
STEPS = ["desk", "room", "with_expert", "closed"]
PARTIES = ["expert", "police", "mayor"]
NAIVE = datetime(2026, 3, 2, 12, 0)

minutes = st.integers(min_value=-30, max_value=600)
moments = st.one_of(
    minutes.map(lambda m: START + timedelta(minutes=m)),
    minutes.map(lambda m: (START + timedelta(minutes=m)).astimezone(UTC)),
)
maybe_naive = st.one_of(moments, moments, moments, st.just(NAIVE))
leases = st.one_of(
    st.sampled_from([timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=2)]),
    st.sampled_from([timedelta(0), timedelta(minutes=-1), timedelta(days=400), 60]),
)
limits = st.one_of(
    st.none(), st.integers(min_value=0, max_value=5), st.sampled_from([-1, 10**30, True, "2", 1.0])
)
not_ids = st.sampled_from([None, 1, ["a"], b"a"])


def _outcome(call: Callable[[lr.Store], Any], store: lr.Store) -> tuple[str, Any]:
    try:
        return ("ok", call(store))
    except lr.LastResortError as exc:
        return ("refused", type(exc).__name__)


class TwoStores(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="lastresort-contract-"))
        self.memory: lr.Store = lr.MemoryStore()
        self.sqlite: lr.Store = lr.SQLiteStore(self.tmp / "s.db", synchronous="NORMAL")
        self.postgres: lr.Store = pg_kit.reused_store()
        self.versions: dict[str, int] = {}  # what the model believes is stored
        self.keys: list[str] = []
        self.deadline_ids: list[str] = []
        self.made = 0

    def teardown(self) -> None:
        self.sqlite.close()
        self.postgres.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def both(self, call: Callable[[lr.Store], Any]) -> tuple[str, Any]:
        first = _outcome(call, self.memory)
        second = _outcome(call, self.sqlite)
        assert first == second, (first, second)
        third = _outcome(call, self.postgres)
        assert first == third, (first, third)
        return first

    # -- commits ----------------------------------------------------------------------

    def _encounter(self, eid: str, version: int, state: str, opened: datetime) -> lr.Encounter:
        terminal = state == "closed"
        return lr.Encounter(
            id=eid,
            protocol="relay",
            protocol_version="1",
            state=state,
            responsible=None if terminal else "counter",
            facts={"age_band": "8-11"},
            version=version,
            opened_at=opened,
            closed_at=opened + timedelta(hours=1) if terminal else None,
        )

    @rule(
        eid=st.sampled_from(IDS),
        version_skew=st.sampled_from([0, 0, 0, 0, 1, -1]),
        expected_skew=st.sampled_from([0, 0, 0, 0, 1, -1, None]),
        state=st.sampled_from(STEPS),
        opened=maybe_naive,
        event_at=maybe_naive,
        foreign=st.sampled_from([None, None, None, None, "event", "deadline", "notification"]),
        dues=st.lists(maybe_naive, max_size=2),
        clear=st.lists(st.integers(min_value=0, max_value=20), max_size=2),
        parties=st.lists(st.sampled_from(PARTIES), max_size=2, unique=True),
        created=moments,
    )
    def commit(
        self,
        eid: str,
        version_skew: int,
        expected_skew: int | None,
        state: str,
        opened: datetime,
        event_at: datetime,
        foreign: str | None,
        dues: list[datetime],
        clear: list[int],
        parties: list[str],
        created: datetime,
    ) -> None:
        stored = self.versions.get(eid)
        if expected_skew is None or stored is None:
            expected = None if expected_skew is None or stored is None else stored
        else:
            expected = max(stored + expected_skew, 0) or None
        version = (0 if expected is None else expected) + 1 + version_skew
        self.made += 1
        n = self.made
        owner = "other" if foreign else eid
        event = lr.StepEntered(
            encounter_id=owner if foreign == "event" else eid,
            at=event_at,
            actor=lr.Actor("counter"),
            event="go",
            from_step="desk",
            step=state,
            responsible="counter",
        )
        schedule = [
            lr.PendingDeadline(
                id=f"{eid}:d{n}.{i}",
                encounter_id=owner if foreign == "deadline" else eid,
                step=state,
                event="desk_timeout",
                due=due,
            )
            for i, due in enumerate(dues)
        ]
        outbox = [
            lr.Notification(
                key=f"{eid}:{n}:{party}",
                encounter_id=owner if foreign == "notification" else eid,
                protocol="relay",
                event="go",
                step=state,
                party=party,
                created_at=created,
                next_attempt_at=created,
            )
            for party in parties
        ]
        known = self.deadline_ids
        change = Change(
            encounter=self._encounter(eid, max(version, 1), state, opened),
            expected_version=expected,
            events=[event],
            schedule=schedule,
            clear=[known[i % len(known)] for i in clear] if known else [],
            outbox=outbox,
        )
        kind, _ = self.both(lambda s: s.commit(change))
        if kind == "ok":
            self.versions[eid] = change.encounter.version
            self.deadline_ids.extend(d.id for d in schedule)
            self.keys.extend(n.key for n in outbox)

    # -- claims -----------------------------------------------------------------------

    @rule(now=maybe_naive, lease=leases, limit=limits)
    def claim_deadlines(self, now: datetime, lease: timedelta, limit: int | None) -> None:
        self.both(lambda s: s.claim_deadlines(now, lease, limit))

    @rule(now=maybe_naive, lease=leases, limit=limits)
    def claim_outbox(self, now: datetime, lease: timedelta, limit: int | None) -> None:
        self.both(lambda s: s.claim_outbox(now, lease, limit))

    @rule(pick=st.integers(min_value=0, max_value=50), unknown=st.booleans())
    def release_deadline(self, pick: int, unknown: bool) -> None:
        known = self.deadline_ids
        did = "nope" if unknown or not known else known[pick % len(known)]
        self.both(lambda s: s.release_deadline(did))

    # -- deliveries -------------------------------------------------------------------

    def _key(self, pick: int, unknown: bool) -> str:
        return "nope" if unknown or not self.keys else self.keys[pick % len(self.keys)]

    @rule(
        pick=st.integers(min_value=0, max_value=50),
        unknown=st.booleans(),
        other_encounter=st.booleans(),
        at=maybe_naive,
        attempts=st.integers(min_value=1, max_value=4),
    )
    def delivered(
        self, pick: int, unknown: bool, other_encounter: bool, at: datetime, attempts: int
    ) -> None:
        key = self._key(pick, unknown)
        eid = key.split(":")[0]
        event = lr.NotificationDelivered(
            encounter_id="zz" if other_encounter else eid,
            at=at,
            actor=lr.Actor("outbox"),
            key=key,
            party=key.split(":")[-1],
            receipt=f"r-{pick}",
            attempts=attempts,
        )
        self.both(lambda s: s.delivered(key, event))

    @rule(
        pick=st.integers(min_value=0, max_value=50),
        unknown=st.booleans(),
        attempts=st.sampled_from([0, 1, 2, -1, "1"]),
        at=maybe_naive,
        error=st.sampled_from(["TimeoutError: pager", "", b"x"]),
    )
    def failed(self, pick: int, unknown: bool, attempts: Any, at: datetime, error: Any) -> None:
        key = self._key(pick, unknown)
        self.both(lambda s: s.failed(key, attempts, at, error))

    # -- reads ------------------------------------------------------------------------

    @rule(eid=st.one_of(st.sampled_from([*IDS, "ghost"]), not_ids))
    def read(self, eid: Any) -> None:
        self.both(lambda s: s.load(eid))
        self.both(lambda s: s.timeline(eid))
        self.both(lambda s: s.deadlines(eid))
        self.both(lambda s: s.outbox(eid))

    @rule(open_only=st.sampled_from([True, False, 1, None]))
    def ids(self, open_only: Any) -> None:
        self.both(lambda s: list(s.encounter_ids(open_only)))

    @rule(what=st.sampled_from([{}, None, "change"]))
    def commit_not_a_change(self, what: Any) -> None:
        self.both(lambda s: s.commit(what))

    # -- after every step ---------------------------------------------------------------

    @invariant()
    def same_state(self) -> None:
        assert everything(self.memory) == everything(self.sqlite) == everything(self.postgres)


TwoStores.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_memory_and_sqlite_agree_on_random_operations = TwoStores.TestCase
