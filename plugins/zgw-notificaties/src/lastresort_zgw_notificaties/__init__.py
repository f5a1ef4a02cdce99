"""lastresort-zgw-notificaties: outbox notifications as ZGW Notificaties API messages
(``kanaal``, ``hoofdObject``, ``resource``, ``resourceUrl``, ``actie``,
``aanmaakdatum``, ``kenmerken``), POSTed to a Notificaties API with its
``Authorization`` header: a configured token, or a ZGW JWT (HS256) minted per request
from a client id and secret.

Configure it without code, by environment variables (the installed entry point reads
them at each delivery), or in code with :class:`ZgwConfig` and :class:`ZgwDelivery`.
See the README for each setting and the message's shape.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx
from attrs import field, frozen

import lastresort as lr

from ._http import post

__all__ = [
    "ENV",
    "ZgwConfig",
    "ZgwDelivery",
    "jwt",
    "lastresort_deliver",
    "message",
]

#: the prefix of every environment variable this plugin reads
ENV = "LASTRESORT_ZGW_"

_SLUG = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_ROLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
_KANAAL = re.compile(r"[a-z][a-z0-9_-]{0,49}")
_URL = re.compile(r"https?://[^\s]+")
_VERSION = re.compile(r"v(\d{1,12})")


def _refuse(argument: str, problem: str) -> lr.InvalidArgument:
    return lr.InvalidArgument(call="ZgwConfig", argument=argument, problem=problem)


def _url(argument: str, value: object) -> str:
    if not isinstance(value, str) or not _URL.fullmatch(value):
        raise _refuse(argument, "an http:// or https:// URL without spaces")
    return value


def _check_urls(value: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _refuse("urls", "a mapping of party role to URL")
    for role, url in value.items():
        if not isinstance(role, str) or not _ROLE.fullmatch(role):
            raise _refuse("urls", "keyed by party roles (letters, digits, _ and -)")
        _url(f"urls[{role}]", url)
    return dict(value)


def _check_protocols(value: frozenset[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise _refuse("protocols", "a collection of protocol ids, not one string")
    ids = frozenset(value)
    if not ids or not all(isinstance(p, str) and _SLUG.fullmatch(p) for p in ids):
        raise _refuse("protocols", "a non-empty collection of protocol ids")
    return ids


def _one_line(argument: str, value: object) -> None:
    if value is not None and (
        not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n")
    ):
        raise _refuse(argument, "a non-empty one-line string")


@frozen(kw_only=True)
class ZgwConfig:
    """Where and how to deliver.

    :param resource_base: the base URL of the lastresort service API; the message's
        ``hoofdObject`` is ``<resource_base>/encounters/<id>`` and its ``resourceUrl``
        ``<resource_base>/encounters/<id>/notifications/<key>``.
    :param protocols: the protocol ids whose notifications this delivers; any other
        notification is left to the next plugin (issue 14).
    :param url: the Notificaties API's ``notificaties`` endpoint, for every party
        without one of its own in ``urls``.
    :param urls: an endpoint per party role; a party in neither is left to the next plugin.
    :param kanaal: the kanaal (channel) registered in the Notificaties API
        (lowercase, at most 50 characters; default ``lastresort``).
    :param authorization: the ``Authorization`` header as is (``Token …``,
        ``Bearer …``); or, instead, ``client_id`` and ``secret``: a ZGW JWT (HS256)
        is minted for each request.
    :param timeout: seconds to wait for the API; keep it below the engine's
        ``delivery_timeout``.
    :raises lastresort.InvalidArgument: naming the setting that is wrong.
    """

    resource_base: str = field()
    protocols: frozenset[str] = field(converter=_check_protocols)
    url: str | None = None
    urls: Mapping[str, str] = field(factory=dict, converter=_check_urls)
    kanaal: str = "lastresort"
    authorization: str | None = None
    client_id: str | None = None
    secret: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @resource_base.validator
    def _resource_base(self, _: Any, value: object) -> None:
        _url("resource_base", value)

    def __attrs_post_init__(self) -> None:
        if self.url is not None:
            _url("url", self.url)
        if self.url is None and not self.urls:
            raise _refuse("url", "given, or urls must name at least one party's endpoint")
        if not isinstance(self.kanaal, str) or not _KANAAL.fullmatch(self.kanaal):
            raise _refuse("kanaal", "lowercase letters, digits, _ and -, at most 50 characters")
        for name in ("authorization", "client_id", "secret"):
            _one_line(name, getattr(self, name))
        jwt_parts = (self.client_id is not None, self.secret is not None)
        if jwt_parts[0] != jwt_parts[1]:
            raise _refuse("secret" if jwt_parts[0] else "client_id", "given with the other")
        if self.authorization is not None and jwt_parts[0]:
            raise _refuse("authorization", "left out when client_id and secret are given")
        if self.authorization is None and not jwt_parts[0]:
            raise _refuse("authorization", "given, or client_id and secret (the API needs one)")
        timeout = self.timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout < math.inf
        ):
            raise _refuse("timeout", "a number of seconds > 0")

    def endpoint(self, party: str) -> str | None:
        """The URL for ``party``, or ``None`` when this plugin does not deliver to it."""
        return self.urls.get(party, self.url)

    def authorization_header(self, now: Callable[[], float] = time.time) -> str:
        """The ``Authorization`` value for one request."""
        if self.authorization is not None:
            return self.authorization
        if self.client_id is None or self.secret is None:  # refused when it was made
            raise _refuse("authorization", "given, or client_id and secret")
        return f"Bearer {jwt(self.client_id, self.secret, int(now()))}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ZgwConfig | None:
        """The configuration in ``LASTRESORT_ZGW_*``, or ``None`` when neither
        ``..._URL`` nor ``..._URLS`` is set (the plugin is then not in use).

        :raises lastresort.InvalidArgument: naming the variable that is wrong.
        """
        env = os.environ if environ is None else environ
        url, urls = env.get(ENV + "URL") or None, env.get(ENV + "URLS") or None
        if url is None and urls is None:
            return None

        def refuse(variable: str, problem: str) -> lr.InvalidArgument:
            return lr.InvalidArgument(
                call="ZgwConfig.from_env", argument=ENV + variable, problem=problem
            )

        try:
            pairs = _pairs(urls or "")
        except ValueError as exc:
            raise refuse("URLS", str(exc)) from None
        try:
            timeout = float(env.get(ENV + "TIMEOUT", "10"))
        except ValueError:
            raise refuse("TIMEOUT", "a number of seconds") from None
        settings: dict[str, Any] = {
            "url": url,
            "urls": pairs,
            "resource_base": env.get(ENV + "RESOURCE_BASE", ""),
            "protocols": frozenset(
                p.strip() for p in env.get(ENV + "PROTOCOLS", "").split(",") if p.strip()
            ),
            "kanaal": env.get(ENV + "KANAAL") or "lastresort",
            "authorization": env.get(ENV + "AUTHORIZATION") or None,
            "client_id": env.get(ENV + "CLIENT_ID") or None,
            "secret": env.get(ENV + "SECRET") or None,
            "timeout": timeout,
        }
        try:
            return cls(**settings)
        except lr.InvalidArgument as exc:
            problem = str(exc).split(" must be ", 1)[1].removesuffix("; nothing was changed")
            raise refuse(exc.argument.split("[")[0].upper(), problem) from None


def _pairs(text: str) -> dict[str, str]:
    """``"police=https://a,expert=https://b"`` as a dict."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        role, sep, url = item.partition("=")
        if not sep:
            raise ValueError("role=URL pairs separated by commas")
        out[role.strip()] = url.strip()
    return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(client_id: str, secret: str, issued_at: int) -> str:
    """A ZGW API JWT: HS256, with the claims the ZGW standard's autorisatie expects
    (``iss``, ``iat``, ``client_id``, ``user_id``, ``user_representation``); the user is
    this system, never a person."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {
        "iss": client_id,
        "iat": issued_at,
        "client_id": client_id,
        "user_id": "lastresort",
        "user_representation": "lastresort",
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signed = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def sequence(note: lr.Notification) -> str | None:
    """The encounter version the notification was queued at, zero-padded to 12 digits;
    ``None`` for a key not of the form ``<encounter>:v<version>:…``."""
    head = f"{note.encounter_id}:"
    if not note.key.startswith(head):
        return None
    found = _VERSION.fullmatch(note.key[len(head) :].split(":", 1)[0])
    return None if found is None else found.group(1).rjust(12, "0")


def message(note: lr.Notification, config: ZgwConfig) -> dict[str, Any]:
    """The Notificaties API message for ``note``: ids, names and a time, nothing else.

    ``kenmerken`` (all strings, as the API wants) hold the protocol, the step entered,
    the party addressed, whether it escalates a dead letter and the encounter version:
    no facts, no free text, no contact address."""
    base = config.resource_base.rstrip("/")
    encounter = f"{base}/encounters/{quote(note.encounter_id, safe='')}"
    kenmerken = {
        "protocol": note.protocol,
        "step": note.step,
        "party": note.party,
        "escalation": "true" if note.escalates is not None else "false",
    }
    seq = sequence(note)
    if seq is not None:
        kenmerken["sequence"] = seq
    return {
        "kanaal": config.kanaal,
        "hoofdObject": encounter,
        "resource": "notification",
        "resourceUrl": f"{encounter}/notifications/{quote(note.key, safe='')}",
        "actie": note.event,
        "aanmaakdatum": note.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "kenmerken": kenmerken,
    }


class ZgwDelivery:
    """A plugin instance: ``lr.Engine(plugins=[ZgwDelivery(config)])``.

    :param client: an ``httpx.Client`` to use (one is made, and closed by
        :meth:`close`, otherwise).
    """

    def __init__(self, config: ZgwConfig, client: httpx.Client | None = None) -> None:
        if not isinstance(config, ZgwConfig):
            raise lr.InvalidArgument(call="ZgwDelivery", argument="config", problem="a ZgwConfig")
        self.config = config
        self._own = client is None
        self.client = httpx.Client() if client is None else client

    def close(self) -> None:
        if self._own:
            self.client.close()

    # optional: a lastresort older than the hook loads the plugin as before
    @lr.hookimpl(optionalhook=True)
    def lastresort_delivers_for(self) -> list[str]:
        """The protocols it is configured for: it is not called for any other."""
        return sorted(self.config.protocols)

    @lr.hookimpl
    def lastresort_deliver(self, notification: lr.Notification) -> str | None:
        """POST the notification's message; ``None`` for a protocol or party this
        plugin is not configured for."""
        config = self.config
        url = config.endpoint(notification.party)
        if notification.protocol not in config.protocols or url is None:
            return None
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": config.authorization_header(),
            "Idempotency-Key": notification.key,
        }
        body = json.dumps(message(notification, config), separators=(",", ":"))
        return post(
            self.client,
            url,
            content=body.encode(),
            headers=headers,
            timeout=config.timeout,
            party=notification.party,
            receipt="zgw",
        )


log = logging.getLogger(__name__)

_cache: dict[tuple[tuple[str, str], ...], ZgwDelivery | None] = {}
_cache_lock = threading.Lock()


def from_env() -> ZgwDelivery | None:
    """The plugin configured by the environment now (made once per configuration)."""
    snapshot = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV)))
    with _cache_lock:
        if snapshot not in _cache:
            config = ZgwConfig.from_env(dict(snapshot))
            _cache[snapshot] = None if config is None else ZgwDelivery(config)
        return _cache[snapshot]


@lr.hookimpl(optionalhook=True)
def lastresort_delivers_for() -> list[str]:
    """The installed entry point's scope: the protocols the ``LASTRESORT_ZGW_*``
    variables name (read when an engine is built), none when they are not set; with a
    wrong setting every protocol, so that each notification is tried, fails naming the
    variable, and is retried, dead-lettered and escalated rather than logged as
    delivered."""
    try:
        plugin = from_env()
    except lr.InvalidArgument:
        return ["*"]
    return [] if plugin is None else plugin.lastresort_delivers_for()


@lr.hookimpl
def lastresort_deliver(notification: lr.Notification) -> str | None:
    """The installed entry point: delivers as the ``LASTRESORT_ZGW_*`` variables say,
    and nothing when they are not set. A wrong setting raises
    :class:`lastresort.InvalidArgument` naming the variable: the notification is
    retried and, if it is not fixed, dead-lettered and escalated, never lost."""
    try:
        plugin = from_env()
    except lr.InvalidArgument as exc:  # the outbox keeps the type only: say which variable
        log.error("not delivered, the configuration is wrong: %s", exc)
        raise
    return None if plugin is None else plugin.lastresort_deliver(notification)
