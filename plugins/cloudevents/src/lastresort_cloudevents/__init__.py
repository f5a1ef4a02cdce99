"""lastresort-cloudevents: outbox notifications as CloudEvents 1.0 (NL GOV profile),
POSTed to HTTP webhooks in structured content mode (``application/cloudevents+json``).

Configure it without code, by environment variables (the installed entry point reads
them at each delivery), or in code with :class:`CloudEventsConfig` and
:class:`CloudEventsDelivery`. See the README for each setting and the event's shape.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import httpx
from attrs import field, frozen

import lastresort as lr

from ._http import post

__all__ = [
    "CONTENT_TYPE",
    "ENV",
    "CloudEventsConfig",
    "CloudEventsDelivery",
    "cloud_event",
    "lastresort_deliver",
]

#: the structured content mode's media type (CloudEvents HTTP binding, JSON format)
CONTENT_TYPE = "application/cloudevents+json"
#: the prefix of every environment variable this plugin reads
ENV = "LASTRESORT_CLOUDEVENTS_"

_SLUG = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_ROLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
_REVERSE_DNS = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)+")
_URN_OR_URL = re.compile(r"(urn:[a-z0-9][a-z0-9-]{0,31}:\S+|https?://\S+)")
_VERSION = re.compile(r"v(\d{1,12})")


def _refuse(argument: str, problem: str) -> lr.InvalidArgument:
    return lr.InvalidArgument(call="CloudEventsConfig", argument=argument, problem=problem)


def _url(argument: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s]+", value):
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


@frozen(kw_only=True)
class CloudEventsConfig:
    """Where and how to deliver.

    :param source: the CloudEvents ``source``: a URI naming the municipality and this
        deployment, by the NL GOV profile a URN in the ``nld`` namespace, e.g.
        ``urn:nld:oin:00000001001234567000:systeem:lastresort`` (an https URL is taken too).
    :param type_prefix: reverse-DNS prefix of ``type``, e.g. ``nl.utrecht.lastresort``;
        the type is ``<type_prefix>.<event>`` (``.escalated`` added for an escalation).
    :param protocols: the protocol ids whose notifications this delivers; any other
        notification is left to the next plugin (issue 14).
    :param url: the webhook for every party without one of its own in ``urls``.
    :param urls: a webhook per party role; a party in neither is left to the next plugin.
    :param timeout: seconds to wait for the receiver (connect, write, read); keep it
        below the engine's ``delivery_timeout`` so a slow receiver is reported as such.
    :param authorization: the ``Authorization`` header to send, if any.
    :raises lastresort.InvalidArgument: naming the setting that is wrong.
    """

    source: str = field()
    type_prefix: str = field()
    protocols: frozenset[str] = field(converter=_check_protocols)
    url: str | None = None
    urls: Mapping[str, str] = field(factory=dict, converter=_check_urls)
    timeout: float = 10.0
    authorization: str | None = None

    @source.validator
    def _source(self, _: Any, value: object) -> None:
        if not isinstance(value, str) or not _URN_OR_URL.fullmatch(value):
            raise _refuse("source", "a URN (urn:nld:...) or an http(s) URL, without spaces")

    @type_prefix.validator
    def _type_prefix(self, _: Any, value: object) -> None:
        if not isinstance(value, str) or not _REVERSE_DNS.fullmatch(value):
            raise _refuse("type_prefix", "a reverse-DNS name such as nl.utrecht.lastresort")

    def __attrs_post_init__(self) -> None:
        if self.url is not None:
            _url("url", self.url)
        if self.url is None and not self.urls:
            raise _refuse("url", "given, or urls must name at least one party's webhook")
        timeout = self.timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout < math.inf
        ):
            raise _refuse("timeout", "a number of seconds > 0")
        if self.authorization is not None and (
            not isinstance(self.authorization, str)
            or not self.authorization.strip()
            or any(c in self.authorization for c in "\r\n")
        ):
            raise _refuse("authorization", "a one-line header value")

    def webhook(self, party: str) -> str | None:
        """The URL for ``party``, or ``None`` when this plugin does not deliver to it."""
        return self.urls.get(party, self.url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CloudEventsConfig | None:
        """The configuration in ``LASTRESORT_CLOUDEVENTS_*``, or ``None`` when neither
        ``..._URL`` nor ``..._URLS`` is set (the plugin is then not in use).

        :raises lastresort.InvalidArgument: naming the variable that is wrong.
        """
        env = os.environ if environ is None else environ
        url, urls = env.get(ENV + "URL") or None, env.get(ENV + "URLS") or None
        if url is None and urls is None:
            return None

        def refuse(variable: str, problem: str) -> lr.InvalidArgument:
            return lr.InvalidArgument(
                call="CloudEventsConfig.from_env", argument=ENV + variable, problem=problem
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
            "source": env.get(ENV + "SOURCE", ""),
            "type_prefix": env.get(ENV + "TYPE_PREFIX", ""),
            "protocols": frozenset(
                p.strip() for p in env.get(ENV + "PROTOCOLS", "").split(",") if p.strip()
            ),
            "timeout": timeout,
            "authorization": env.get(ENV + "AUTHORIZATION") or None,
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


def sequence(note: lr.Notification) -> str | None:
    """The encounter version the notification was queued at (its key is
    ``<encounter>:v<version>:<event>:<party>``), zero-padded to 12 digits so that
    it orders as a string (the CloudEvents ``sequence`` extension compares strings);
    ``None`` for a key of another form."""
    head = f"{note.encounter_id}:"
    if not note.key.startswith(head):
        return None
    found = _VERSION.fullmatch(note.key[len(head) :].split(":", 1)[0])
    return None if found is None else found.group(1).rjust(12, "0")


def cloud_event(note: lr.Notification, config: CloudEventsConfig) -> dict[str, Any]:
    """The CloudEvent (JSON format) for ``note``: ids, names and a time, nothing else.

    ``data`` holds the protocol, the step entered, the party addressed and whether it
    is an escalation of a dead letter: no facts, no free text, no contact address."""
    escalation = note.escalates is not None
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": note.key,
        "source": config.source,
        "type": f"{config.type_prefix}.{note.event}" + (".escalated" if escalation else ""),
        "subject": note.encounter_id,
        "time": note.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {
            "protocol": note.protocol,
            "step": note.step,
            "party": note.party,
            "escalation": escalation,
        },
    }
    seq = sequence(note)
    if seq is not None:
        event["sequence"] = seq
    return event


class CloudEventsDelivery:
    """A plugin instance: ``lr.Engine(plugins=[CloudEventsDelivery(config)])``.

    :param client: an ``httpx.Client`` to use (one is made, and closed by
        :meth:`close`, otherwise).
    """

    def __init__(self, config: CloudEventsConfig, client: httpx.Client | None = None) -> None:
        if not isinstance(config, CloudEventsConfig):
            raise lr.InvalidArgument(
                call="CloudEventsDelivery", argument="config", problem="a CloudEventsConfig"
            )
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
        """POST the notification's CloudEvent; ``None`` for a protocol or party this
        plugin is not configured for."""
        config = self.config
        url = config.webhook(notification.party)
        if notification.protocol not in config.protocols or url is None:
            return None
        headers = {"Content-Type": CONTENT_TYPE, "Idempotency-Key": notification.key}
        if config.authorization is not None:
            headers["Authorization"] = config.authorization
        body = json.dumps(cloud_event(notification, config), separators=(",", ":"))
        return post(
            self.client,
            url,
            content=body.encode(),
            headers=headers,
            timeout=config.timeout,
            party=notification.party,
            receipt="cloudevents",
        )


log = logging.getLogger(__name__)

_cache: dict[tuple[tuple[str, str], ...], CloudEventsDelivery | None] = {}
_cache_lock = threading.Lock()


def from_env() -> CloudEventsDelivery | None:
    """The plugin configured by the environment now (made once per configuration)."""
    snapshot = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV)))
    with _cache_lock:
        if snapshot not in _cache:
            config = CloudEventsConfig.from_env(dict(snapshot))
            _cache[snapshot] = None if config is None else CloudEventsDelivery(config)
        return _cache[snapshot]


@lr.hookimpl(optionalhook=True)
def lastresort_delivers_for() -> list[str]:
    """The installed entry point's scope: the protocols the ``LASTRESORT_CLOUDEVENTS_*``
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
    """The installed entry point: delivers as the ``LASTRESORT_CLOUDEVENTS_*``
    variables say, and nothing when they are not set. A wrong setting raises
    :class:`lastresort.InvalidArgument` naming the variable: the notification is
    retried and, if it is not fixed, dead-lettered and escalated, never lost."""
    try:
        plugin = from_env()
    except lr.InvalidArgument as exc:  # the outbox keeps the type only: say which variable
        log.error("not delivered, the configuration is wrong: %s", exc)
        raise
    return None if plugin is None else plugin.lastresort_deliver(notification)
