"""Posted forms and what a refusal shows: the desk's small, strict form reader (no
multipart, no file, no field it does not expect), and the refusal a page explains."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from ..problems import ID as _SERVICE_ID

__all__ = ["ID", "MAX_FORM", "Refused", "code", "read_form"]

#: forms are a few short fields; anything longer is refused unread
MAX_FORM = 4096
#: what may be recorded (or shown) of a value a caller sent: an identifier's form only
ID = _SERVICE_ID  # the service's identifier form: what may be repeated back or recorded


class Refused(Exception):
    """A refusal to show: a message key and its fields, and the HTTP status."""

    def __init__(self, status: int, key: str, **fields: str) -> None:
        super().__init__(key)
        self.status, self.key, self.fields = status, key, fields


def code(value: object) -> str:
    """``value`` when it has an identifier's form, else ``?`` (never echo free text)."""
    return value if isinstance(value, str) and ID.fullmatch(value) else "?"


async def read_form(request: Request, allowed: set[str]) -> dict[str, str]:
    """The posted form: urlencoded, short, only ``allowed`` fields, each once."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, "invalid", problem="form")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM:
            raise Refused(413, "invalid", problem="form")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "invalid", problem="form") from None
    if any(len(v) != 1 for v in fields.values()) or not set(fields) <= allowed:
        raise Refused(400, "invalid", problem="form")
    return {k: v[0] for k, v in fields.items()}
