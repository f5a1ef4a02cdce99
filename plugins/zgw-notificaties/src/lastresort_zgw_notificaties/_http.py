"""One POST, its answer mapped onto the outbox's retry semantics (the same rules as in
lastresort-cloudevents, copied so that each distribution stands alone).

2xx: delivered. 408, 429, 5xx, a timeout or a connection error: a passing failure
(:class:`lastresort.DeliveryDeferred`, with the receiver's ``Retry-After``); the outbox
retries with backoff. Anything else (3xx, the other 4xx): :class:`lastresort.DeliveryRefused`;
the outbox dead-letters the notification at once and escalates it. Messages name the
status and the party, never the body (it is the receiver's, and could echo anything).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

import lastresort as lr

__all__ = ["TRANSIENT", "post", "retry_after"]

log = logging.getLogger(__name__)

#: 4xx statuses that mean "try again later", not "never"
TRANSIENT = frozenset({408, 429})


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (delta-seconds or an HTTP-date) as a wait after ``now``;
    ``None`` when absent, unreadable or not in the future."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = int(value)
        return timedelta(seconds=seconds) if 0 < seconds <= 366 * 86400 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = when - now
    return wait if timedelta(0) < wait <= timedelta(days=366) else None


def post(
    client: httpx.Client,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout: float,
    party: str,
    receipt: str,
) -> str:
    """POST ``content`` to ``url``: ``"<receipt> <status>"`` on a 2xx.

    :raises lastresort.DeliveryDeferred: a passing failure.
    :raises lastresort.DeliveryRefused: a refusal retrying cannot change.
    """
    try:
        response = client.post(url, content=content, headers=dict(headers), timeout=timeout)
    except httpx.TimeoutException:
        raise _deferred(f"no answer within {timeout} s from the receiver of {party}") from None
    except httpx.TransportError as exc:
        raise _deferred(f"{type(exc).__name__} reaching the receiver of {party}") from None
    status = response.status_code
    if 200 <= status < 300:
        return f"{receipt} {status}"
    if status in TRANSIENT or status >= 500:
        wait = retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        raise _deferred(f"HTTP {status} from the receiver of {party}", wait)
    reason = f"HTTP {status} from the receiver of {party}"
    log.warning("delivery refused for good: %s", reason)
    raise lr.DeliveryRefused(reason)


def _deferred(reason: str, wait: timedelta | None = None) -> lr.DeliveryDeferred:
    # the outbox keeps the exception's type only: the reason is logged here (it names a
    # status and a party, nothing about the child)
    log.warning("delivery failed, to be retried: %s", reason)
    return lr.DeliveryDeferred(reason, retry_after=wait)
