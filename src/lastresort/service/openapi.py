"""The service's OpenAPI 3.1 document, served at ``/api/v1/openapi.json`` and kept in
the repository as docs/openapi.json (a test fails when they differ; regenerate with
``lastresort serve --openapi > docs/openapi.json``).

Written out rather than generated from the handlers: the document is the contract
clients in other languages are built from, and its schemas come from the same
field lists the public JSON (:mod:`lastresort.store.exchange`) writes.
"""

from __future__ import annotations

from typing import Any

from .problems import API_VERSION

__all__ = ["openapi"]

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"type": ["string", "null"], "format": "date-time"}
_INT = {"type": "integer"}
_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required if required is not None else list(props),
    }


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"API-Version": {"$ref": "#/components/headers/API-Version"}},
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _ok(schema: dict[str, Any], description: str = "OK", etag: bool = False) -> dict[str, Any]:
    headers: dict[str, Any] = {"API-Version": {"$ref": "#/components/headers/API-Version"}}
    if etag:
        headers["ETag"] = {"$ref": "#/components/headers/ETag"}
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": schema}},
    }


_ERRORS = {
    "400": _problem("the request is malformed or refused whatever the state (invalid)"),
    "401": _problem("no valid bearer token"),
    "403": _problem("the token's party may not do this (the refusal is recorded)"),
    "404": _problem("no such encounter or protocol"),
    "409": _problem("refused in the encounter's present state (conflict)"),
    "503": _problem("the store is unavailable; nothing was applied"),
}
_READ_ERRORS = {k: v for k, v in _ERRORS.items() if k in {"400", "401", "403", "404", "503"}}

_ENCOUNTER_ID = {
    "name": "encounter_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": _ID_PATTERN},
}


def _page(item: str) -> dict[str, Any]:
    return _obj(
        {"items": {"type": "array", "items": _ref(item)}, "next": {"type": ["string", "null"]}}
    )


def _schemas() -> dict[str, Any]:
    actor = _obj({"role": _STR, "id": _NSTR})
    return {
        "Problem": {
            "type": "object",
            "properties": {
                "type": _STR,
                "title": _STR,
                "status": _INT,
                "detail": _STR,
                "code": _STR,
                "category": _STR,
            },
            "required": ["type", "title", "status", "detail", "code"],
        },
        "Actor": actor,
        "Encounter": _obj(
            {
                "id": _STR,
                "protocol": _STR,
                "protocol_version": _STR,
                "state": _STR,
                "responsible": _NSTR,
                "facts": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "boolean"]},
                },
                "version": _INT,
                "opened_at": _TIME,
                "closed_at": _NTIME,
                "channel": _STR,
            }
        ),
        "WorkItem": {
            "allOf": [
                _ref("Encounter"),
                _obj({"next_deadline": _NTIME, "overdue": {"type": "boolean"}}),
            ]
        },
        "Event": {
            "type": "object",
            "description": "an event of the timeline, tagged by class name in `kind`"
            " (EncounterOpened, StepEntered, ResponsibilityTransferred, DeadlineScheduled,"
            " DeadlineMissed, DeadlineCleared, NotificationQueued, NotificationDelivered,"
            " NotificationDeadLettered, EncounterClosed, ObserverFailed); further fields"
            " per kind",
            "properties": {
                "kind": _STR,
                "encounter_id": _STR,
                "seq": _INT,
                "at": _TIME,
                "actor": _ref("Actor"),
            },
            "required": ["kind", "encounter_id", "seq", "at", "actor"],
        },
        "PendingDeadline": _obj(
            {"id": _STR, "encounter_id": _STR, "step": _STR, "event": _STR, "due": _TIME}
        ),
        "Notification": _obj(
            {
                "key": _STR,
                "encounter_id": _STR,
                "protocol": _STR,
                "event": _STR,
                "step": _STR,
                "party": _STR,
                "created_at": _TIME,
                "attempts": _INT,
                "next_attempt_at": _TIME,
                "contact": _NSTR,
                "last_error": _NSTR,
                "delivered_at": _NTIME,
                "dead_lettered_at": _NTIME,
            }
        ),
        "Refusal": _obj(
            {
                "seq": _INT,
                "at": _TIME,
                "actor_role": _STR,
                "actor_id": _NSTR,
                "action": _STR,
                "encounter_id": _NSTR,
                "step": _NSTR,
                "version": {"type": ["integer", "null"]},
                "category": _STR,
                "reason": _STR,
                "protocol": _NSTR,
            },
            ["seq", "at", "actor_role", "action", "category", "reason"],
        ),
        "Protocol": _obj(
            {
                "id": _STR,
                "version": _STR,
                "title": {"type": "object", "additionalProperties": _STR},
                "parties": {"type": "array", "items": _STR},
                "facts": {"type": "object"},
                "channels": {"type": "array", "items": _STR},
            }
        ),
        "OpenRequest": {
            "type": "object",
            "properties": {
                "protocol": {"type": "string", "pattern": _ID_PATTERN},
                "facts": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "boolean"]},
                },
                "channel": {"type": "string"},
            },
            "required": ["protocol"],
            "additionalProperties": False,
        },
        "FireRequest": {
            "type": "object",
            "properties": {
                "event": {"type": "string", "pattern": _ID_PATTERN},
                "until": {"type": "string", "format": "date-time"},
            },
            "required": ["event"],
            "additionalProperties": False,
        },
    }


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service."""
    get_encounter = {
        "parameters": [_ENCOUNTER_ID],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lastresort",
            "version": API_VERSION,
            "description": "Mayor as last resort: encounters of children at the city hall"
            " counter, run on a municipality's protocol. Every request but this document"
            " needs `Authorization: Bearer <token>`; the token's party and actor id act.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/health": {
                "get": {
                    "operationId": "health",
                    "security": [],
                    "responses": {
                        "200": _ok(_obj({"status": _STR})),
                        "503": _ERRORS["503"],
                    },
                }
            },
            "/api/v1/protocols": {
                "get": {
                    "operationId": "listProtocols",
                    "responses": {
                        "200": _ok(_obj({"items": {"type": "array", "items": _ref("Protocol")}})),
                        "401": _ERRORS["401"],
                    },
                }
            },
            "/api/v1/encounters": {
                "get": {
                    "operationId": "listEncounters",
                    "summary": "a work queue: open encounters by protocol, step, responsible"
                    " party, overdue; paged by `after` = the previous page's `next`",
                    "parameters": [
                        *(
                            {
                                "name": n,
                                "in": "query",
                                "required": False,
                                "schema": {"type": "string", "pattern": _ID_PATTERN},
                            }
                            for n in ("protocol", "step", "responsible", "after")
                        ),
                        *(
                            {
                                "name": n,
                                "in": "query",
                                "required": False,
                                "schema": {"type": "string", "enum": ["true", "false"]},
                            }
                            for n in ("overdue", "closed")
                        ),
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                    ],
                    "responses": {"200": _ok(_page("WorkItem")), **_READ_ERRORS},
                },
                "post": {
                    "operationId": "openEncounter",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("OpenRequest")}},
                    },
                    "responses": {
                        "201": {
                            **_ok(_ref("Encounter"), "opened", etag=True),
                            "headers": {
                                "API-Version": {"$ref": "#/components/headers/API-Version"},
                                "ETag": {"$ref": "#/components/headers/ETag"},
                                "Location": {"schema": _STR},
                            },
                        },
                        **_ERRORS,
                        "413": _problem("the body is too large"),
                        "415": _problem("the body is not application/json"),
                    },
                },
            },
            "/api/v1/encounters/{encounter_id}": {
                **get_encounter,
                "get": {
                    "operationId": "getEncounter",
                    "responses": {"200": _ok(_ref("Encounter"), etag=True), **_READ_ERRORS},
                },
            },
            "/api/v1/encounters/{encounter_id}/allowed": {
                **get_encounter,
                "get": {
                    "operationId": "allowedActions",
                    "summary": "the events the token's holder may fire now",
                    "responses": {
                        "200": _ok(
                            _obj(
                                {
                                    "encounter": _STR,
                                    "version": _INT,
                                    "actions": {"type": "array", "items": _STR},
                                }
                            ),
                            etag=True,
                        ),
                        **_READ_ERRORS,
                    },
                },
            },
            "/api/v1/encounters/{encounter_id}/events": {
                **get_encounter,
                "post": {
                    "operationId": "fireEvent",
                    "summary": "fire an event as the token's holder; If-Match: the ETag"
                    " the decision was made on",
                    "parameters": [
                        {
                            "name": "If-Match",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": 'the ETag the decision was made on ("v3");'
                            " any other value cannot match: 412",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("FireRequest")}},
                    },
                    "responses": {
                        "200": _ok(
                            _obj(
                                {
                                    "encounter": _ref("Encounter"),
                                    "events": {"type": "array", "items": _ref("Event")},
                                }
                            ),
                            etag=True,
                        ),
                        **_ERRORS,
                        "412": _problem("the encounter changed since the If-Match ETag"),
                        "413": _problem("the body is too large"),
                        "415": _problem("the body is not application/json"),
                    },
                },
            },
            "/api/v1/encounters/{encounter_id}/timeline": {
                **get_encounter,
                "get": {
                    "operationId": "timeline",
                    "responses": {
                        "200": _ok(_obj({"items": {"type": "array", "items": _ref("Event")}})),
                        **_READ_ERRORS,
                    },
                },
            },
            "/api/v1/encounters/{encounter_id}/deadlines": {
                **get_encounter,
                "get": {
                    "operationId": "deadlines",
                    "responses": {
                        "200": _ok(
                            _obj({"items": {"type": "array", "items": _ref("PendingDeadline")}})
                        ),
                        **_READ_ERRORS,
                    },
                },
            },
            "/api/v1/encounters/{encounter_id}/outbox": {
                **get_encounter,
                "get": {
                    "operationId": "outbox",
                    "responses": {
                        "200": _ok(
                            _obj({"items": {"type": "array", "items": _ref("Notification")}})
                        ),
                        **_READ_ERRORS,
                    },
                },
            },
            "/api/v1/refusals": {
                "get": {
                    "operationId": "refusals",
                    "summary": "the refusal log (tokens with the audit scope)",
                    "parameters": [
                        {
                            "name": "encounter",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "pattern": _ID_PATTERN},
                        },
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                        },
                    ],
                    "responses": {
                        "200": _ok(
                            _obj(
                                {
                                    "items": {"type": "array", "items": _ref("Refusal")},
                                    "next": {"type": ["integer", "null"]},
                                }
                            )
                        ),
                        **_READ_ERRORS,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "headers": {
                "API-Version": {"schema": _STR, "description": "the API's version"},
                "ETag": {"schema": _STR, "description": 'the encounter\'s version, e.g. "v3"'},
            },
            "schemas": _schemas(),
        },
    }
