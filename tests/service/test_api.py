"""The JSON API through its ASGI app: a whole encounter as three parties, and every way
to act as a party one is not."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from tests.service.kit import FACTS, Service, make_service


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["api-version"] == "1.0.0"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code.lower())
    return body


def test_a_whole_encounter_as_clerk_expert_and_mayor(service: Service) -> None:
    opened = service.open("counter")
    eid = opened["id"]
    assert opened["state"] == "arrived"
    assert opened["facts"] == FACTS
    assert opened["closed_at"] is None  # every field, null included
    allowed = service.client.get(
        f"/api/v1/encounters/{eid}/allowed", headers=service.as_("counter")
    )
    assert "call_expert" in allowed.json()["actions"]
    assert allowed.headers["etag"] == '"v1"'
    steps = [
        ("counter", "call_expert", "awaiting_expert"),
        ("expert", "expert_takes_over", "with_expert"),
        ("expert", "arrange_mayor_meeting", "awaiting_mayor"),
        ("mayor", "mayor_spoke_with_child", "mayor_met"),
        ("expert", "report_made", "reported"),
        ("expert", "close", "closed"),
    ]
    for who, event, state in steps:
        service.clock.advance(timedelta(minutes=5))
        response = service.fire(who, eid, event)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["encounter"]["state"] == state
        assert response.headers["etag"] == f'"v{body["encounter"]["version"]}"'
    timeline = service.client.get(
        f"/api/v1/encounters/{eid}/timeline", headers=service.as_("expert")
    ).json()["items"]
    ids = {(e["actor"]["role"], e["actor"]["id"]) for e in timeline if e["kind"] == "StepEntered"}
    # who did what is the credential's holder, never something the request said
    assert ids == {("counter", "clerk-7"), ("expert", "vt-12"), ("mayor", "mayor-1")}
    timeline_values = [lr.from_json(e, lr.Event) for e in timeline]
    assert timeline_values == service.engine.timeline(eid)


def test_the_clerk_cannot_act_as_the_expert_or_the_mayor(service: Service) -> None:
    eid = service.open("counter")["id"]
    service.fire("counter", eid, "call_expert")
    before = service.engine.get(eid)
    # the expert's handover, fired with the clerk's token: the engine refuses it
    _problem(service.fire("counter", eid, "expert_takes_over"), 403, "NotPermitted")
    # naming another actor in the body is refused outright
    response = service.client.post(
        f"/api/v1/encounters/{eid}/events",
        json={"event": "expert_takes_over", "actor": {"role": "expert", "id": "vt-12"}},
        headers=service.as_("counter"),
    )
    _problem(response, 400, "actor-in-body")
    assert service.engine.get(eid) == before
    refusals = service.engine.refusals(encounter_id=eid)
    assert [(r.actor_role, r.actor_id, r.reason) for r in refusals] == [
        ("counter", "clerk-7", "NotPermitted")
    ]


def test_without_a_token_or_with_a_bad_one_nothing_happens_and_it_is_recorded(
    service: Service,
) -> None:
    eid = service.open("counter")["id"]
    before = (service.engine.get(eid), service.engine.timeline(eid))
    cases = [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer lr_000000000000_" + "A" * 43},
        {"Authorization": "Bearer " + service.tokens["counter"][:-1] + "x"},
        {"Authorization": "Bearer not-a-token"},
    ]
    for headers in cases:
        response = service.client.post(
            f"/api/v1/encounters/{eid}/events", json={"event": "call_expert"}, headers=headers
        )
        body = _problem(response, 401, "unauthenticated")
        assert service.tokens["counter"] not in str(body)
    assert (service.engine.get(eid), service.engine.timeline(eid)) == before
    reasons = [r.reason for r in service.engine.refusals()]
    assert reasons == [
        "unauthenticated:missing",
        "unauthenticated:malformed",
        "unauthenticated:unknown",
        "unauthenticated:unknown",
        "unauthenticated:malformed",
    ]
    assert all(
        r.actor_role == "anonymous" and r.actor_id is None for r in service.engine.refusals()
    )


def test_a_revoked_token_is_refused_from_then_on(service: Service) -> None:
    eid = service.open("counter")["id"]
    token_id = service.tokens["counter"].split("_")[1]
    service.credentials.revoke(token_id)
    _problem(service.fire("counter", eid, "call_expert"), 401, "unauthenticated")
    assert service.engine.get(eid).state == "arrived"
    assert service.engine.refusals()[-1].reason == "unauthenticated:revoked"


def test_a_token_for_another_protocol_or_without_the_act_scope_is_forbidden(
    service: Service,
) -> None:
    eid = service.open("counter")["id"]
    token, _ = service.credentials.add(party="counter", actor_id="clerk-9", protocols=["amsterdam"])
    headers = {"Authorization": f"Bearer {token}"}
    response = service.client.post(
        f"/api/v1/encounters/{eid}/events", json={"event": "call_expert"}, headers=headers
    )
    _problem(response, 403, "wrong-protocol")
    response = service.client.post(
        "/api/v1/encounters", json={"protocol": "taskforce", "facts": FACTS}, headers=headers
    )
    _problem(response, 403, "wrong-protocol")
    _problem(service.fire("mayor_staff", eid, "call_expert"), 403, "no-act-scope")
    assert service.engine.get(eid).version == 1
    reasons = [(r.actor_id, r.reason) for r in service.engine.refusals()]
    assert reasons == [
        ("clerk-9", "wrong-protocol"),
        ("clerk-9", "wrong-protocol"),
        ("staff-3", "no-act-scope"),
    ]


def test_if_match_refuses_a_decision_made_on_an_older_version(service: Service) -> None:
    eid = service.open("counter")["id"]
    etag = service.client.get(f"/api/v1/encounters/{eid}", headers=service.as_("counter")).headers[
        "etag"
    ]
    assert (
        service.fire("counter", eid, "call_expert", headers={"If-Match": etag}).status_code == 200
    )
    before = service.engine.get(eid)
    body = _problem(
        service.fire("expert", eid, "expert_takes_over", headers={"If-Match": etag}),
        412,
        "version-mismatch",
    )
    assert body["current"] == f'"v{before.version}"'
    assert service.engine.get(eid) == before
    # an ETag never given cannot match (RFC 9110): refused the same way, nothing changes
    for never in ("v2", '"x"', ""):
        _problem(
            service.fire("expert", eid, "expert_takes_over", headers={"If-Match": never}),
            412,
            "version-mismatch",
        )
    assert service.engine.get(eid) == before
    ok = service.fire("expert", eid, "expert_takes_over", headers={"If-Match": body["current"]})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid-field"),
        ({"event": 5}, 400, "invalid-field"),
        ({"event": "call_expert", "note": "Jantje is bang"}, 400, "unknown-field"),
        ({"event": "call_expert", "until": "tomorrow"}, 400, "invalid-field"),
        ({"event": "no_such_event"}, 409, "TransitionNotAllowed"),
        ([1, 2], 400, "malformed-body"),
    ],
)
def test_bad_fire_requests_change_nothing_and_quote_nothing(
    service: Service, body: Any, status: int, code: str
) -> None:
    eid = service.open("counter")["id"]
    before = (service.engine.get(eid), service.engine.timeline(eid))
    response = service.client.post(
        f"/api/v1/encounters/{eid}/events", json=body, headers=service.as_("counter")
    )
    problem = _problem(response, status, code)
    assert "Jantje" not in str(problem)
    assert (service.engine.get(eid), service.engine.timeline(eid)) == before


def test_a_body_that_is_not_json_or_too_large_is_refused(service: Service) -> None:
    eid = service.open("counter")["id"]
    url = f"/api/v1/encounters/{eid}/events"
    headers = service.as_("counter")
    _problem(
        service.client.post(url, content=b"event=call_expert", headers=headers),
        415,
        "unsupported-media-type",
    )
    _problem(
        service.client.post(
            url, content=b"{not json", headers={**headers, "content-type": "application/json"}
        ),
        400,
        "malformed-json",
    )
    big = b'{"event": "' + b"x" * 20_000 + b'"}'
    _problem(
        service.client.post(
            url, content=big, headers={**headers, "content-type": "application/json"}
        ),
        413,
        "body-too-large",
    )
    assert service.engine.get(eid).version == 1


def test_free_text_in_facts_is_refused_and_not_echoed(service: Service) -> None:
    response = service.client.post(
        "/api/v1/encounters",
        json={"protocol": "taskforce", "facts": {"age_band": "Jantje de Vries, 12"}},
        headers=service.as_("counter"),
    )
    assert response.status_code == 400
    assert "Jantje" not in response.text
    assert service.engine.store.encounter_ids() == []


def test_unknown_things_are_problems_too(service: Service) -> None:
    _problem(
        service.client.get("/api/v1/encounters/nope", headers=service.as_("counter")),
        404,
        "UnknownEncounter",
    )
    _problem(service.client.get("/api/v1/nothing-here"), 404, "not-found")
    _problem(service.client.delete("/api/v1/encounters"), 405, "method-not-allowed")
    _problem(
        service.client.post(
            "/api/v1/encounters", json={"protocol": "nowhere"}, headers=service.as_("counter")
        ),
        404,
        "UnknownProtocol",
    )


def test_the_work_queue_filters_and_pages(service: Service) -> None:
    ids = [service.open("counter")["id"] for _ in range(5)]
    service.fire("counter", ids[0], "call_expert")
    service.fire("counter", ids[1], "call_expert")
    headers = service.as_("expert")
    waiting = service.client.get(
        "/api/v1/encounters", params={"step": "awaiting_expert"}, headers=headers
    ).json()
    assert sorted(i["id"] for i in waiting["items"]) == sorted(ids[:2])
    assert waiting["next"] is None
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        page = service.client.get("/api/v1/encounters", params=params, headers=headers).json()
        seen += [i["id"] for i in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))
    # an hour on, the arrivals' first deadline has passed: they are overdue
    service.clock.advance(timedelta(hours=1))
    overdue = service.client.get(
        "/api/v1/encounters", params={"overdue": "true"}, headers=headers
    ).json()["items"]
    assert {i["id"] for i in overdue} == set(ids)
    assert all(i["overdue"] for i in overdue)
    _problem(
        service.client.get("/api/v1/encounters", params={"overdue": "yes"}, headers=headers),
        400,
        "invalid-parameter",
    )
    _problem(
        service.client.get("/api/v1/encounters", params={"name": "x"}, headers=headers),
        400,
        "unknown-parameter",
    )


def test_the_refusal_log_is_for_the_audit_scope_only(service: Service) -> None:
    eid = service.open("counter")["id"]
    service.fire("counter", eid, "expert_takes_over")  # refused: NotPermitted
    _problem(
        service.client.get("/api/v1/refusals", headers=service.as_("counter")),
        403,
        "no-audit-scope",
    )
    items = service.client.get("/api/v1/refusals", headers=service.as_("mayor_staff")).json()[
        "items"
    ]
    assert [(i["actor_id"], i["reason"]) for i in items] == [
        ("clerk-7", "NotPermitted"),
        ("clerk-7", "no-audit-scope"),
    ]
    assert all("facts" not in i for i in items)


def test_deadlines_and_outbox_of_an_encounter(service: Service) -> None:
    eid = service.open("counter")["id"]
    service.fire("counter", eid, "call_expert")
    headers = service.as_("counter")
    pending = service.client.get(f"/api/v1/encounters/{eid}/deadlines", headers=headers).json()
    assert [d["event"] for d in pending["items"]] == ["expert_overdue"]
    outbox = service.client.get(f"/api/v1/encounters/{eid}/outbox", headers=headers).json()
    assert [n["party"] for n in outbox["items"]] == ["expert"]
    assert outbox["items"][0]["delivered_at"] is None


def test_every_response_carries_the_api_version(service: Service) -> None:
    for response in (
        service.client.get("/api/v1/openapi.json"),
        service.client.get("/api/v1/health"),
        service.client.get("/api/v1/protocols", headers=service.as_("counter")),
        service.client.get("/api/v1/protocols"),
    ):
        assert response.headers["api-version"] == "1.0.0"


class _Counting:
    """A store that counts the reads of single encounters (delegates everything)."""

    def __init__(self, inner: lr.Store) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if name in ("load", "deadlines", "encounter_ids", "timeline"):
            self.calls[name] = self.calls.get(name, 0) + 1
        return found


def test_a_work_queue_page_reads_the_page_not_every_open_encounter(tmp_path: Path) -> None:
    counting = _Counting(lr.SQLiteStore(tmp_path / "queue.db"))
    made = make_service(tmp_path, store=counting)  # type: ignore[arg-type]
    with made.client:
        ids = sorted(made.open("counter")["id"] for _ in range(40))
        made.clock.advance(timedelta(hours=1))
        counting.calls.clear()
        page = made.client.get(
            "/api/v1/encounters", params={"limit": 3, "overdue": "true"}, headers=made.as_("expert")
        ).json()
        assert [i["id"] for i in page["items"]] == ids[:3]
        assert page["next"] == ids[2]
        assert all(i["overdue"] and i["next_deadline"] for i in page["items"])
        # the deadlines of the three shown, nothing per open encounter
        assert counting.calls == {"deadlines": 3}
        last = made.client.get(
            "/api/v1/encounters", params={"limit": 50, "after": ids[-2]}, headers=made.as_("expert")
        ).json()
        assert ([i["id"] for i in last["items"]], last["next"]) == ([ids[-1]], None)
    counting.inner.close()


def test_a_token_for_some_protocols_sees_only_their_encounters(service: Service) -> None:
    ids = sorted(service.open("counter")["id"] for _ in range(3))
    other, _ = service.credentials.add(party="expert", actor_id="vt-99", protocols=("meldcode",))
    mine, _ = service.credentials.add(party="expert", actor_id="vt-98", protocols=("taskforce",))
    for token, params, expected in (
        (other, {}, []),
        (other, {"protocol": "taskforce"}, []),
        (mine, {}, ids),
        (mine, {"protocol": "taskforce"}, ids),
        (mine, {"protocol": "meldcode"}, []),
    ):
        found = service.client.get(
            "/api/v1/encounters", params=params, headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert [i["id"] for i in found["items"]] == expected, params
