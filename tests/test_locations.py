"""Problems located as ``file:line:col`` (issue 14): the TOML and JSON scanners of
:mod:`lastresort.protocol.locations`, on tricky files, checked against what the parsers read."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

import lastresort as lr
from lastresort.protocol.conversion import _key_path
from lastresort.protocol.locations import Locator, locate_json, locate_toml, path_of

PROTOCOLS = Path(lr.__file__).parent / "protocol" / "builtin"

TRICKY = '''\
# a comment with [brackets] and = signs and "quotes" and [[arrays]]
[protocol]                 # a comment after a header
id = "x"   # after a value
title = { nl = "een { accolade", en = """multi
line text with [fake.table] and
key = "not a key" and \\""" an escaped quote ]
""" }
literal = 'C:\\path\\'
"dotted.key".inner = 1
a.b.c = "dotted"
"é" = "a non-ASCII key"
"tricky ]] key" = true

[ parties . "a b" ]
name.nl = 'lit'
hours = [1, [2, 3],
  # a comment ] inside an array
  "four", ]   # trailing comma

[[transitions]]
event = "e"
by = ["a", "b"]

[[ transitions ]]
by = [
  "c",
  { x = 1, y = [1, 2] },
]
when = 1979-05-27 07:32:00Z
[[transitions.sub]]
q = 1
[[transitions.sub]]
q = 2
[[transitions]]
[[transitions.sub]]
q = 3
'''


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, _key_path(path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def _text_at(text: str, at: tuple[int, int]) -> str:
    line, col = at
    return text.splitlines()[line - 1][col - 1 :]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_every_part_of_a_tricky_toml_file_is_found_where_it_is(newline: str) -> None:
    text = TRICKY.replace("\n", newline)
    data = tomllib.loads(text)
    positions = locate_toml(text, "t.toml").positions
    paths = dict(_walk(data, "$"))
    assert set(paths) <= set(positions), set(paths) - set(positions)
    for path, value in paths.items():
        if path == "$":
            continue
        here = _text_at(text, positions[path])
        last = path.rsplit(".", 1)[-1] if not path.endswith("]") else None
        if path.endswith("]") and not path.endswith("']"):
            # a list item: the text there starts the value (or its [[header]])
            start = {str: "\"'", bool: "tf", int: "0123456789", list: "[", dict: "{["}
            assert here[0] in start.get(type(value), here[0]), (path, here)
        elif here.startswith("["):  # a [table] header names the key
            assert (last or path.split("[")[-1].strip("]'")) in here.split("]")[0] + "]", path
        else:
            key = last or path.rsplit("[", 1)[-1][1:-2]
            assert here.lstrip("\"'").startswith(key), (path, here)


def test_tricky_toml_positions_by_hand() -> None:
    where = locate_toml(TRICKY, "t.toml").positions
    assert where["$.protocol"] == (2, 1)
    assert where["$.protocol.title.en"] == (4, 34)  # inside an inline table
    assert where["$.protocol.literal"] == (8, 1)  # after a multi-line string with [fake.table]
    assert "$.protocol['fake.table']" not in where
    assert "$.protocol.key" not in where
    assert where["$.protocol['dotted.key'].inner"] == (9, 14)
    assert where["$.protocol.a.b.c"] == (10, 5)
    assert where["$.protocol['é']"] == (11, 1)
    assert where["$.parties['a b']"] == (14, 1)
    assert where["$.parties['a b'].hours[2]"] == (18, 3)  # after a comment holding ']'
    assert where["$.transitions[1]"] == (24, 1)
    assert where["$.transitions[1].by[1].y[1]"] == (27, 20)
    assert where["$.transitions[1].when"] == (29, 1)
    assert where["$.transitions[1].sub[1].q"] == (33, 1)
    assert where["$.transitions[2].sub[0]"] == (35, 1)  # numbered again under a new parent


def test_a_column_counts_characters_not_bytes() -> None:
    text = 'x = { "éé" = 1, b = 2 }\n'
    assert locate_toml(text, "t").positions["$.x.b"] == (1, 17)


def test_json_parts_are_found_where_they_are() -> None:
    data = lr.dump_protocol(lr.load_protocol(PROTOCOLS / "taskforce.toml"))
    data["steps"]['a "quoted" ]key'] = {"tags": ["x", 1, None, {"k": [True]}]}
    for text in (json.dumps(data, indent=2), json.dumps(data)):
        positions = locate_json(text, "p.json").positions
        paths = dict(_walk(json.loads(text), "$"))
        assert set(paths) <= set(positions)
        for path in paths:
            if path != "$" and not (path.endswith("]") and not path.endswith("']")):
                here = _text_at(text, positions[path])
                assert here.startswith('"'), path


def test_every_path_of_the_reference_protocol_is_located() -> None:
    text = (PROTOCOLS / "taskforce.toml").read_text(encoding="utf-8")
    positions = locate_toml(text, "taskforce.toml").positions
    assert set(dict(_walk(tomllib.loads(text), "$"))) <= set(positions)


def test_a_problem_is_placed_at_its_path_or_the_nearest_part_that_is_in_the_file() -> None:
    locator = Locator("f.toml", {"$": (1, 1), "$.steps": (5, 1), "$.steps['a b']": (6, 1)})
    assert locator.where("$.steps['a b'].kind: required key missing") == "f.toml:6:1"
    assert locator.where("$.steps.other: x") == "f.toml:5:1"
    assert locator.where("$.transitions[3].by[0]: x") == "f.toml:1:1"
    assert locator.where("clerk-never-closes: not a path") is None
    assert locator.located(["$.steps: x", "no path"]) == ["f.toml:5:1: $.steps: x", "no path"]


@pytest.mark.parametrize(
    ("problem", "path"),
    [
        ("$.transitions[3].by[0]: unknown party", "$.transitions[3].by[0]"),
        ("$.steps['a: b'].kind: x", "$.steps['a: b'].kind"),
        ('$.steps["it\'s"]: x', '$.steps["it\'s"]'),
        ("$: invalid TOML", "$"),
        ("no path here", None),
    ],
)
def test_the_path_of_a_problem(problem: str, path: str | None) -> None:
    assert path_of(problem) == path


def test_a_missing_key_is_placed_at_its_table(tmp_path: Path) -> None:
    text = (PROTOCOLS / "taskforce.toml").read_text(encoding="utf-8")
    broken = text.replace('kind = "expert"\n', "", 1)
    path = tmp_path / "p.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(path)
    line = broken.splitlines().index("[parties.expert]") + 1
    assert caught.value.located == [f"{path}:{line}:1: $.parties.expert.kind: required key missing"]
    assert caught.value.problems == ["$.parties.expert.kind: required key missing"]


def test_a_mapping_has_no_locations() -> None:
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol({"protocol": {}})
    assert caught.value.located is None
    assert caught.value.lines == caught.value.problems


# -- attack: any document the parsers accept is scanned without error, every part found ----

_KEYS = st.text(alphabet=st.sampled_from("abz_-09 .é\"'[]#={}\\\n\t"), min_size=1, max_size=6)
_SCALARS = st.one_of(
    st.text(alphabet=st.sampled_from("a'\"\\#[]{}=,\n\t é\u2028"), max_size=8),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=12,
)
_DOCUMENTS = st.dictionaries(
    _KEYS,
    st.one_of(
        _VALUES,
        st.dictionaries(_KEYS, _VALUES, max_size=3),
        st.lists(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=3), min_size=1, max_size=3),
    ),
    max_size=4,
)


def _all_found(positions: dict[str, tuple[int, int]], data: Any) -> None:
    paths = set(dict(_walk(data, "$")))
    assert paths <= set(positions), sorted(paths - set(positions))


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS)
def test_any_toml_document_is_located_completely(data: dict[str, Any]) -> None:
    for multiline in (False, True):
        text = tomli_w.dumps(data, multiline_strings=multiline)
        assert tomllib.loads(text) == data
        _all_found(locate_toml(text, "f").positions, data)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS)
def test_any_json_document_is_located_completely(data: dict[str, Any]) -> None:
    for text in (json.dumps(data), json.dumps(data, indent=1, ensure_ascii=False)):
        _all_found(locate_json(text, "f").positions, data)


def test_a_failing_scanner_never_hides_the_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastresort.protocol import files

    def broken(*_: object) -> Locator:
        raise IndexError("scanner bug")

    monkeypatch.setattr(files, "locate", broken)
    path = tmp_path / "p.toml"
    path.write_text("[protocol]\nid = 3\n", encoding="utf-8")
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(path)
    assert "$.protocol.id: expected a string, got int 3" in caught.value.problems
    assert caught.value.located is None
    assert files.locate_problems(path, ["$.x: y"]) == ["$.x: y"]
