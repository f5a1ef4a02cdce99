"""Privacy (issue #12, item 7): stored free text is impossible by construction.

A channel is one the protocol declares, an actor id is a short pseudonymous
identifier, a fact name cannot say it holds a name, BSN or free text (however it is
spelt), and no module keeps fact combinations after a purge. Every refusal writes
nothing and never repeats the refused value.
"""

from __future__ import annotations

import gc
import re
import weakref
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import lastresort as lr
import lastresort.protocol.model
import lastresort.store.row_codecs
from lastresort.privacy import fact_words, forbidden_fact_term, is_bsn
from tests import pg_kit
from tests.conftest import START, TASKFORCE
from tests.store_kit import relay

NAME_AND_BSN = "Jan Jansen 123456782"  # 123456782 passes the BSN 11-test
FIVE_MB = "x" * (5 * 1024 * 1024)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    stores: list[lr.Store] = []
    schema = pg_kit.new_schema()

    def make() -> lr.Store:
        store: lr.Store
        if request.param == "memory":
            store = lr.MemoryStore()
        elif request.param == "sqlite":
            store = lr.SQLiteStore(tmp_path / "p.db")
        else:
            store = pg_kit.make_store(schema)  # one schema: a second make() is the same store
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def engine(make_store: Any) -> lr.Engine:
    return lr.Engine(
        protocols=[lr.load_protocol(TASKFORCE)],
        store=make_store(),
        clock=lr.VirtualClock(START),
        entry_points=False,
    )


def _stored_bytes(engine: lr.Engine) -> bytes:
    """Everything the store file (SQLite) or schema (PostgreSQL, every row as text)
    holds, or b'' for a memory store."""
    store = engine.store
    if isinstance(store, lr.PostgresStore):
        return pg_kit.all_rows(store)
    if isinstance(store, lr.SQLiteStore):
        return b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    return b""


def _nothing_stored(engine: lr.Engine) -> None:
    assert engine.store.encounter_ids() == []
    assert engine.store.outbox() == []
    for secret in (b"Jansen", b"123456782"):
        assert secret not in _stored_bytes(engine)


# -- channel -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel",
    [NAME_AND_BSN, 123, FIVE_MB, "", "Counter", "counter ", ["counter"], None.__class__],
    ids=["name-and-bsn", "int", "5MB", "empty", "capital", "space", "list", "type"],
)
def test_an_undeclared_channel_is_refused_and_nothing_is_stored(
    engine: lr.Engine, channel: Any
) -> None:
    with pytest.raises(lr.ChannelRefused) as caught:
        engine.open("taskforce", lr.Actor("counter", "counter-1"), channel=channel)
    message = str(caught.value)
    assert "counter, phone, online, referral" in message  # names what is allowed
    assert caught.value.allowed == ["counter", "phone", "online", "referral"]
    for secret in ("Jansen", "123456782", "xxxx"):
        assert secret not in message
    assert len(message) < 200
    _nothing_stored(engine)


def test_channel_123_was_committed_and_broke_the_timeline(engine: lr.Engine) -> None:
    """On main, ``channel=123`` was committed; reading the timeline and the audit
    then failed. Now it is refused, and an encounter on a declared channel reads back."""
    with pytest.raises(lr.ChannelRefused, match="got an int"):
        engine.open("taskforce", lr.Actor("counter", "counter-1"), channel=123)  # type: ignore[arg-type]
    child = engine.open("taskforce", lr.Actor("counter", "counter-1"), channel="phone")
    assert engine.get(child.id).channel == "phone"
    opened = engine.timeline(child.id)[0]
    assert isinstance(opened, lr.EncounterOpened)
    assert opened.channel == "phone"


def test_the_default_channel_is_the_protocols_first(make_store: Any) -> None:
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data["protocol"]["channels"] = ["walk_in", "call-centre"]
    protocol = lr.load_protocol(data)
    assert protocol.channels == ("walk_in", "call-centre")
    assert lr.load_protocol(lr.dump_protocol(protocol)) == protocol
    engine = lr.Engine(protocols=[protocol], store=make_store(), entry_points=False)
    assert engine.open("taskforce", lr.Actor("counter", "counter-1")).channel == "walk_in"
    assert (
        engine.open("taskforce", lr.Actor("counter", "counter-1"), channel="call-centre").channel
        == "call-centre"
    )
    with pytest.raises(lr.ChannelRefused, match="allowed: walk_in, call-centre"):
        engine.open("taskforce", lr.Actor("counter", "counter-1"), channel="counter")


def test_a_protocol_without_channels_gets_the_default_ones() -> None:
    protocol = lr.load_protocol(TASKFORCE)
    assert protocol.channels == ("counter", "phone", "online", "referral")
    assert "channels" not in lr.dump_protocol(protocol)["protocol"]


def test_declared_channels_are_checked_at_load() -> None:
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data["protocol"]["channels"] = ["counter", "Jan Jansen", "x" * 40, "counter"]
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert caught.value.problems == [
        "$.protocol.channels[1]: channel 'Jan Jansen' is not a short slug (a lowercase"
        " letter, then up to 31 lowercase letters, digits, '_' or '-')",
        f"$.protocol.channels[2]: channel '{'x' * 40}' is not a short slug (a lowercase"
        " letter, then up to 31 lowercase letters, digits, '_' or '-')",
        "$.protocol.channels[3]: 'counter' is named twice",
    ]
    data["protocol"]["channels"] = []
    with pytest.raises(lr.ProtocolError, match=r"\$\.protocol\.channels: names no channel"):
        lr.load_protocol(data)
    data["protocol"]["channels"] = "counter"
    with pytest.raises(lr.ProtocolError, match=r"\$\.protocol\.channels"):
        lr.load_protocol(data)


# -- actor ids -----------------------------------------------------------------------

BAD_IDS = [
    "Jan Jansen",
    "123456782",  # a BSN (9 digits, 11-test)
    "11111112",  # a BSN written with 8 digits (its leading 0 dropped)
    NAME_AND_BSN,
    "jan.jansen@gemeente.nl",
    "x" * 65,
    FIVE_MB,
    "",
    "-desk",
    "naam\u200b",
    "desk\n2",
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=range(len(BAD_IDS)))
def test_an_actor_id_that_could_hold_a_name_or_bsn_is_refused(bad: str) -> None:
    with pytest.raises(lr.ActorRefused) as caught:
        lr.Actor("counter", bad)
    message = str(caught.value)
    assert bad not in message or bad == ""
    assert "Jansen" not in message
    assert "123456782" not in message
    assert len(message) < 250


@pytest.mark.parametrize("good", ["desk-2", "u:4711", "emp.00123", "123456789", "A" * 64])
def test_pseudonymous_actor_ids_are_accepted(good: str) -> None:
    assert not is_bsn(good)
    assert lr.Actor("counter", good).id == good


def test_the_bsn_eleven_test() -> None:
    for bsn in ("123456782", "011111112", "11111112"):
        assert is_bsn(bsn)
    for other in ("123456789", "1234567", "1234567890", "12345678a"):
        assert not is_bsn(other)
    assert not is_bsn("१२३४५६७८२")  # digits, but not ASCII: refused by the id pattern anyway


@pytest.mark.parametrize("role", [NAME_AND_BSN, "123456782", FIVE_MB, 42, ["counter"]])
def test_a_role_that_is_not_a_role_key_is_refused(engine: lr.Engine, role: Any) -> None:
    # a string that is no role key is refused as an actor; something that is not a
    # string at all is a wrong argument (tests/faults/test_inputs.py) before that
    refusal = lr.ActorRefused if isinstance(role, str) else lr.InvalidArgument
    with pytest.raises(refusal) as caught:
        engine.open("taskforce", role)
    assert "Jansen" not in str(caught.value)
    assert "123456782" not in str(caught.value)
    with pytest.raises(lr.ActorRefused):
        lr.Actor.of(role)
    _nothing_stored(engine)


def test_an_actor_id_with_a_name_or_bsn_is_refused_at_open_and_fire(engine: lr.Engine) -> None:
    with pytest.raises(lr.ActorRefused):
        engine.open("taskforce", lr.Actor("counter", NAME_AND_BSN))
    _nothing_stored(engine)
    child = engine.open("taskforce", lr.Actor("counter", "desk-2"))
    before = (engine.get(child.id), engine.timeline(child.id), engine.store.outbox())
    with pytest.raises(lr.ActorRefused):
        engine.fire(child.id, "call_expert", lr.Actor("counter", "123456782"))
    with pytest.raises(lr.ActorRefused):  # attrs.evolve runs the validators too
        engine.fire(child.id, "call_expert", lr.Actor.of("counter").__class__("counter", "a b"))
    assert (engine.get(child.id), engine.timeline(child.id), engine.store.outbox()) == before
    assert b"123456782" not in _stored_bytes(engine)


def test_every_actor_the_examples_and_plugins_use_conforms() -> None:
    """The scenario files, the simulation and the plugins open encounters with their
    actors: running their own tests is the real check; here the shared ones."""
    for role in ("counter", "clock", "outbox", "vangnet", "mayor_staff", "jeugdconsul"):
        assert lr.Actor.of(role).role == role


# -- forbidden fact names ------------------------------------------------------------

EVASIONS = [
    "BSN ",
    "child_name",
    "naam\u200b",
    "\ufeffnaam",
    "na\u00adam",  # soft hyphen
    "Naam",
    "childName",
    "ChildNAME",
    "kindnaam",
    "voor-naam",
    "ｎａａｍ",  # full-width
    "näam",
    "e_mail",
    "email_address",
    "date_of_birth",
    "geboorte_datum",
    "birthDate",
    "citizen service number",
    "citizen_service_number",
    "bsn2",
    "kind_bsn",
    "home-adres",
    "phone_number",
    "telefoonnummer",
    "free_text",
    "vrije_tekst",
    "notes",
    "opmerkingen",
    "toelichting",
    "omschrijving",
    "description",
    "comments",
    "surname",
    "postcode",
]


@pytest.mark.parametrize("name", EVASIONS, ids=[repr(n) for n in EVASIONS])
def test_each_evasion_of_a_forbidden_fact_name_is_refused_at_load(name: str) -> None:
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data["facts"][name] = "bool"
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name)
    where = f"$.facts.{name}" if plain else f"$.facts[{name!r}]"
    refused = [p for p in caught.value.problems if p.startswith(where + ": may not be declared")]
    assert len(refused) == 1, caught.value.problems
    assert all(p.startswith(where + ":") for p in caught.value.problems)


@pytest.mark.parametrize("name", ["Age_band", "age band", "leeftijd\u200b", "a" * 65, "_x"])
def test_a_fact_name_that_is_not_a_plain_slug_is_refused(name: str) -> None:
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data["facts"][name] = "bool"
    with pytest.raises(lr.ProtocolError, match="is not a plain name"):
        lr.load_protocol(data)


def test_the_words_of_a_fact_name() -> None:
    assert fact_words("childNAMEBsn2\u200b") == ["child", "name", "bsn", "2"]
    assert fact_words("Date-of birth") == ["date", "of", "birth"]
    assert forbidden_fact_term("age_band") is None
    assert forbidden_fact_term("disclosure") is None
    assert forbidden_fact_term("contact_by") is None
    assert forbidden_fact_term("help_involved") is None


# -- no module-level caches of facts ---------------------------------------------------

SECRET_FACTS: dict[str, str | bool] = {"age_band": "0-7", "disclosure": True, "accompanied": False}


def _module_state(module: ModuleType) -> list[object]:
    """Every object reachable from the module's globals (its own state, not imports)."""
    seen: dict[int, object] = {}
    frontier: list[object] = [
        value
        for name, value in vars(module).items()
        if not name.startswith("__")
        and not isinstance(value, ModuleType | type)
        and not callable(value)
    ]
    while frontier:
        item = frontier.pop()
        if id(item) in seen or isinstance(item, ModuleType | type):
            continue
        seen[id(item)] = item
        if isinstance(item, dict):
            frontier.extend(item.keys())
            frontier.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            frontier.extend(item)
        elif isinstance(item, lr.Encounter):
            frontier.append(item.facts)
        elif isinstance(item, weakref.WeakValueDictionary):
            frontier.extend(item.items())  # what it holds now (weakly)
        elif hasattr(item, "_data"):
            frontier.append(item._data)
        elif hasattr(item, "__dict__"):
            frontier.extend(vars(item).values())
    return list(seen.values())


def _holds_facts(module: ModuleType) -> list[object]:
    """What of the module's state holds the facts of :data:`SECRET_FACTS`."""
    found = []
    for item in _module_state(module):
        text = isinstance(item, str) and '"age_band":"0-7"' in item  # e.g. a cache key
        facts = (
            isinstance(item, dict | lr.protocol.model.FrozenMap) and item.get("age_band") == "0-7"
        )
        if text or facts or isinstance(item, lr.Encounter):
            found.append(item)
    return found


def test_the_codecs_hold_no_facts_after_purge(tmp_path: Path) -> None:
    clock = lr.VirtualClock(START)
    path = tmp_path / "purge.db"
    protocol = lr.load_protocol(TASKFORCE)
    with lr.SQLiteStore(path) as store:
        engine = lr.Engine(protocols=[protocol], store=store, clock=clock, entry_points=False)
        child = engine.open("taskforce", lr.Actor("counter", "counter-1"), facts=SECRET_FACTS)
        engine.fire(child.id, "acute_danger", lr.Actor("counter", "counter-1"))
        for _ in range(3):  # reads decode the facts through the codecs
            assert engine.get(child.id).facts == SECRET_FACTS
        clock.advance(timedelta(days=1))
        assert store.purge_facts(clock.now()) == 1
        assert engine.get(child.id).facts == {}
        del child
    gc.collect()
    for module in (lastresort.store.row_codecs, lastresort.protocol.model):
        assert _holds_facts(module) == [], module.__name__
    # and no mapping of those facts survives anywhere (the test's own constant aside)
    leftovers = [
        o
        for o in gc.get_objects()
        if isinstance(o, dict | lr.protocol.model.FrozenMap)
        and o is not SECRET_FACTS
        and o.get("age_band") == "0-7"
        and o.get("accompanied") is False
    ]
    assert leftovers == []


def test_opening_keeps_no_fact_combination_in_the_model() -> None:
    """Equal facts of live encounters share one map (memory), through a weak index:
    once the encounters are gone, so are their facts."""
    engine = lr.Engine(
        protocols=[relay()],
        store=lr.MemoryStore(),
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    a = engine.open(
        "relay", lr.Actor("counter", "counter-1"), facts={"age_band": "0-7", "disclosure": True}
    )
    b = engine.open(
        "relay", lr.Actor("counter", "counter-1"), facts={"disclosure": True, "age_band": "0-7"}
    )
    assert a.facts is b.facts
    assert _holds_facts(lastresort.protocol.model) != []  # while they live, the index finds them
    engine.store.close()
    del a, b
    del engine
    gc.collect()
    assert _holds_facts(lastresort.protocol.model) == []


def test_a_party_key_is_short_enough_to_be_a_role() -> None:
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data["parties"]["p" * 65] = data["parties"]["counter"]
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data)
    assert f"$.parties.{'p' * 65}: a party key is at most 64 characters" in str(caught.value)


@pytest.mark.parametrize("key", [NAME_AND_BSN, "123456782", "Jansen"])
def test_an_undeclared_fact_key_that_could_be_child_data_is_not_echoed(
    engine: lr.Engine, key: str
) -> None:
    """A key that is no fact name (a name typed into the wrong field) is described by
    its type and length only; a key of a fact name's form is named, to help."""
    with pytest.raises(lr.FactsRefused) as caught:
        engine.open("taskforce", lr.Actor("counter", "counter-1"), facts={key: "x"})
    assert "Jansen" not in str(caught.value)
    assert "123456782" not in str(caught.value)
    assert "not a fact name" in str(caught.value)
    _nothing_stored(engine)
    with pytest.raises(lr.FactsRefused, match="unknown fact 'colour'"):
        engine.open("taskforce", lr.Actor("counter", "counter-1"), facts={"colour": "x"})


@pytest.mark.parametrize("text", [NAME_AND_BSN, "123456782"])
def test_caller_text_that_could_be_child_data_is_not_echoed_in_errors(
    engine: lr.Engine, text: str
) -> None:
    """An event, encounter id, protocol id or party typed wrong (a name, a BSN) is
    described in the error, never repeated; identifiers are still named."""
    child = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    refusals: list[tuple[type[lr.LastResortError], Any]] = [
        (
            lr.TransitionNotAllowed,
            lambda: engine.fire(child.id, text, lr.Actor("counter", "counter-1")),
        ),
        (lr.UnknownEncounter, lambda: engine.get(text)),
        (lr.UnknownProtocol, lambda: engine.protocol(text)),
        (lr.NotPermitted, lambda: engine.on_duty("taskforce", text)),
    ]
    for error, call in refusals:
        with pytest.raises(error) as caught:
            call()
        message = str(caught.value)
        assert "Jansen" not in message
        assert "123456782" not in message
        assert "not an identifier" in message
    with pytest.raises(lr.TransitionNotAllowed, match="event 'no_such_event'"):
        engine.fire(child.id, "no_such_event", lr.Actor("counter", "counter-1"))
    with pytest.raises(lr.UnknownEncounter, match="unknown encounter 'enc-1'"):
        engine.get("enc-1")
