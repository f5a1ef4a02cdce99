"""The desk's message catalogue: Dutch first, English complete, and a third language
is a file, not code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from lastresort.service.desk import Catalogue, Desk, catalogue
from tests.desk.kit import csrf_of
from tests.service.kit import make_service


def test_dutch_is_first_and_english_has_every_key() -> None:
    words = catalogue()
    assert words.languages[:1] == ["nl"]
    assert "en" in words.languages
    assert set(words.texts["en"]) == set(words.texts["nl"])
    # the same placeholders in every language
    for key, text in words.texts["nl"].items():
        assert set(re.findall(r"{(\w+)}", text)) == set(
            re.findall(r"{(\w+)}", words.texts["en"][key])
        ), key


def test_a_language_missing_a_key_is_refused_naming_it() -> None:
    texts = catalogue().texts
    broken = {**texts, "de": {k: v for k, v in texts["en"].items() if k != "sign_in"}}
    with pytest.raises(ValueError, match=r"messages/de\.json misses sign_in"):
        Catalogue(broken)


def test_an_unknown_language_falls_back_to_dutch() -> None:
    words = catalogue()
    assert words.lang("xx") == "nl"
    assert words.text("xx", "sign_in") == "Inloggen"


def test_a_third_language_needs_no_code_change(tmp_path: Path) -> None:
    texts = catalogue().texts
    german = {**texts["en"], "lang_name": "Deutsch", "sign_in": "Anmelden"}
    service = make_service(tmp_path)
    desk = Desk(service.engine, service.credentials, words=Catalogue({**texts, "de": german}))
    client = TestClient(Starlette(routes=[Mount("/desk", routes=desk.routes())]))
    page = client.get("/desk/").text
    assert 'hreflang="de"' in page
    client.get("/desk/lang/de?next=/desk/")
    page = client.get("/desk/").text
    assert '<html lang="de">' in page
    assert "Anmelden" in page
    assert csrf_of(page)
    service.engine.store.close()
