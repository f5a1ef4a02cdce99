"""The JSON Schema of the protocol file format (issue 14): generated from the model and
shipped, accepting every shipped protocol, naming exactly the keys the loader accepts,
and rejecting what the loader rejects."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest

import lastresort as lr
from lastresort.cli.app import main
from lastresort.cli.new_plugin import render_plugin
from lastresort.protocol.conversion import _allowed_keys
from lastresort.protocol.files import _Header, _ProtocolFile
from lastresort.protocol.json_schema import protocol_schema, schema_text, shipped_schema_text
from lastresort.protocol.model import Deadline, Party, Requirements, ResponseModel, Step, Transition

ROOT = Path(__file__).parent.parent
PACKAGE = Path(lr.__file__).parent
SHIPPED = PACKAGE / "protocol" / "schema" / "protocol.schema.json"
TASKFORCE = PACKAGE / "protocol" / "builtin" / "taskforce.toml"
PROTOCOL_FILES = sorted(
    [
        *(PACKAGE / "protocol" / "builtin").glob("*.toml"),
        *(ROOT / "plugins").glob("*/src/*/*.toml"),
        *(ROOT / "tests" / "protocols").glob("**/*.toml"),
    ]
)
SOUND_FILES = [p for p in PROTOCOL_FILES if p.name != "five_mistakes.toml"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SHIPPED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


def test_the_shipped_schema_is_the_one_generated_from_the_model() -> None:
    # regenerate with: python -c "from lastresort.protocol.json_schema import schema_text;
    #   open('src/lastresort/protocol/schema/protocol.schema.json','w').write(schema_text())"
    assert SHIPPED.read_text(encoding="utf-8") == schema_text()
    assert shipped_schema_text() == schema_text()
    assert protocol_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_lastresort_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out == SHIPPED.read_text(encoding="utf-8")
    assert json.loads(out)["title"] == "lastresort protocol"


def test_there_are_shipped_protocols_to_check() -> None:
    names = {p.name for p in SOUND_FILES}
    assert {"taskforce.toml", "amsterdam.toml", "rotterdam.toml", "huisverbod.toml"} <= names


@pytest.mark.parametrize("path", SOUND_FILES, ids=lambda p: p.name)
def test_every_shipped_protocol_is_valid(
    path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert _errors(validator, data) == []
    # and its canonical dump too (what `dump_protocol` writes, e.g. as JSON)
    dumped = lr.dump_protocol(lr.load_protocol(path))
    assert _errors(validator, json.loads(json.dumps(dumped))) == []


def test_the_new_plugin_template_is_valid(validator: jsonschema.Draft202012Validator) -> None:
    files = render_plugin("utrecht", "Utrecht")
    (toml,) = [text for name, text in files.items() if name.endswith(".toml") and "src/" in name]
    assert _errors(validator, tomllib.loads(toml)) == []


# -- the keys: exactly those of the model, as the loader reads them ------------------------


def _tables() -> Iterator[tuple[str, type]]:
    """Each schema table with the attrs class the loader structures it into."""
    yield "#", _ProtocolFile
    yield "#/$defs/header", _Header
    for name, cls in (
        ("party", Party),
        ("response", ResponseModel),
        ("step", Step),
        ("deadline", Deadline),
        ("transition", Transition),
        ("requirements", Requirements),
    ):
        yield f"#/$defs/{name}", cls


def _at(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    node = schema
    for part in pointer.lstrip("#").strip("/").split("/"):
        if part:
            node = node[part]
    return node


@pytest.mark.parametrize(("pointer", "cls"), list(_tables()), ids=lambda v: str(v))
def test_every_key_the_loader_accepts_is_in_the_schema_and_no_other(
    pointer: str, cls: type
) -> None:
    table = _at(protocol_schema(), pointer)
    fields = [f for f in attrs.fields(cls) if f.name != "key"]
    # the loader's own list (what its "unknown key ... did you mean" offers)
    accepted = set(_allowed_keys(cls)) if cls not in (_ProtocolFile, _Header) else None
    keys = set(table["properties"])
    if accepted is not None:
        assert keys == accepted
    assert len(keys) == len(fields)
    required = {
        key
        for key, f in zip(table["properties"], fields, strict=True)
        if f.default is attrs.NOTHING
    }
    assert set(table.get("required", [])) == required
    assert table["additionalProperties"] is False


def _every_key() -> dict[str, Any]:
    """A protocol file that uses every key of every table (structure only)."""
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data["protocol"]["kind"] = "encounter"
    data["protocol"]["channels"] = ["counter", "phone"]
    data["protocol"]["timezone"] = "Europe/Amsterdam"
    party = data["parties"]["expert"]
    party.update(hours="always", no_show=0.1, capacity=2)
    party["response"] = {"median": "30m", "p90": "50m", "example": True}
    step = next(s for s in data["steps"].values() if "deadline" in s)
    step["deadline"].update(example=True, until="kept", **{"from": "arrived"})
    data["transitions"][0].update(
        notify=["expert"], guard="on_duty", label={"nl": "Bellen", "en": "Call", "fy": "Skilje"}
    )
    step["label"] = {"nl": "Aangekomen", "en": "Arrived"}
    data["groups"] = {"experts": ["expert"]}
    data["facts"] = {"age_band": ["0-7", "8-11"], "disclosure": "bool"}
    data["requirements"] = {
        "mayor": "informed",
        "mayor_contact": False,
        "max_wait_for_expert": "1h45m",
        "max_wait_for_mayor": "PT3H",
        "report_before_close": True,
        "max_order_duration": "28d",
        "reminders_end_wait": True,
    }
    return data


def _used_keys(data: dict[str, Any]) -> dict[str, set[str]]:
    party = data["parties"]["expert"]
    step = next(s for s in data["steps"].values() if "deadline" in s)
    return {
        "#": set(data),
        "#/$defs/header": set(data["protocol"]),
        "#/$defs/party": set(party),
        "#/$defs/response": set(party["response"]),
        "#/$defs/step": {k for s in data["steps"].values() for k in s},
        "#/$defs/deadline": set(step["deadline"]),
        "#/$defs/transition": set(data["transitions"][0]),
        "#/$defs/requirements": set(data["requirements"]),
    }


def test_a_file_using_every_key_loads_and_is_valid(
    validator: jsonschema.Draft202012Validator,
) -> None:
    data = _every_key()
    schema = protocol_schema()
    for pointer, keys in _used_keys(data).items():
        assert keys == set(_at(schema, pointer)["properties"]), pointer
    lr.load_protocol(copy.deepcopy(data), check=False)  # the loader accepts every key
    assert _errors(validator, data) == []


def _tables_in(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "$", data
    yield "$.protocol", data["protocol"]
    yield "$.protocol.title", data["protocol"]["title"]
    yield "$.parties.expert", data["parties"]["expert"]
    yield "$.parties.expert.response", data["parties"]["expert"]["response"]
    for key, step in data["steps"].items():
        if "deadline" in step:
            yield f"$.steps.{key}", step
            yield f"$.steps.{key}.deadline", step["deadline"]
            break
    yield "$.transitions[0]", data["transitions"][0]
    yield "$.requirements", data["requirements"]


@pytest.mark.parametrize("where", [p for p, _ in _tables_in(_every_key())])
def test_an_unknown_key_is_refused_by_both(
    where: str, validator: jsonschema.Draft202012Validator
) -> None:
    data = _every_key()
    table = dict(_tables_in(data))[where]
    table["zz_unknown"] = "x"
    assert _errors(validator, data) != []
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(data, check=False)
    assert caught.value.problems == [f"{where}.zz_unknown: unknown key 'zz_unknown'"]


# -- broken files: refused by the schema and by the loader ----------------------------------


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


_DELETE = object()

BROKEN = {
    "wrong type": _set(["parties", "expert", "no_show"], "5%"),
    "bad duration": _set(["steps", "awaiting_expert", "deadline", "after"], "45 minutes"),
    "fractional compact duration": _set(["requirements", "max_wait_for_expert"], "1.5h"),
    "missing required key": _set(["steps", "arrived", "kind"], _DELETE),
    "missing header": _set(["protocol"], _DELETE),
    "unknown enum value": _set(["parties", "expert", "kind"], "wizard"),
    "half a text": _set(["protocol", "title"], {"nl": "Alleen Nederlands"}),
    "empty text": _set(["protocol", "title", "en"], ""),
    "a number for a list": _set(["transitions", 0, "by"], 3),
    "a boolean for a number": _set(["parties", "expert", "capacity"], True),
    "an empty fact": _set(["facts"], {"age_band": []}),
    "a fact with duplicates": _set(["facts"], {"age_band": ["0-7", "0-7"]}),
    "a bad fact name": _set(["facts"], {"Age Band": "bool"}),
    "a step key that is not a name": _set(["steps", "a b"], {"kind": "terminal"}),
    "no channel": _set(["protocol", "channels"], []),
    "an unknown mayor promise": _set(["requirements", "mayor"], "visited"),
    "transitions as a table": _set(["transitions"], {"event": "x"}),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_file_is_refused_by_the_schema_and_by_the_loader(
    name: str, validator: jsonschema.Draft202012Validator
) -> None:
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data.setdefault("requirements", {})
    data.setdefault("facts", {})
    BROKEN[name](data)
    assert _errors(validator, data) != [], name
    with pytest.raises(lr.ProtocolError):
        lr.load_protocol(data)


def test_a_schema_directive_line_is_a_comment_to_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "utrecht.toml"
    (toml,) = [
        t for n, t in render_plugin("utrecht", "Utrecht").items() if n.endswith("utrecht.toml")
    ]
    path.write_text("#:schema ./protocol.schema.json\n" + toml, encoding="utf-8")
    (tmp_path / "protocol.schema.json").write_text(schema_text(), encoding="utf-8")
    assert lr.load_protocol(path).id == "utrecht"
    # and the places of problems count that line
    path.write_text("#:schema ./protocol.schema.json\n[protocol]\nid = 3\n", encoding="utf-8")
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(path)
    assert caught.value.located is not None
    assert f"{path}:3:1: $.protocol.id: expected a string, got int 3" in caught.value.located
