"""What may be stored besides facts, and which fact names a protocol may not declare.

Facts are the only place for case data. Everything else an encounter records, the
channel it arrived on and the ids of the actors, is a short identifier of a fixed
form, so that no name, citizen service number (BSN) or free text fits in it. And a
protocol may not declare a fact whose name says it holds such data. These rules
are checked where the data enters (:class:`~lastresort.protocol.model.Actor`,
:meth:`lastresort.Engine.open`, :func:`lastresort.validate`), so stored free text
is impossible by construction. See docs/protocol-format.md and docs/guarantees.md.

This module knows no other module of lastresort: the model and the validator use it.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ACTOR_ID",
    "CHANNEL",
    "DEFAULT_CHANNELS",
    "EXCEPTION_KIND",
    "FACT_NAME",
    "FORBIDDEN_GLUED",
    "FORBIDDEN_PARTS",
    "FORBIDDEN_WORDS",
    "ROLE",
    "actor_id_problem",
    "describe",
    "error_text",
    "exception_kind",
    "fact_words",
    "forbidden_fact_term",
    "holds_bsn",
    "is_bsn",
    "role_problem",
]

#: A channel: how a child (or a case) arrived. A short lowercase slug.
CHANNEL = re.compile(r"[a-z][a-z0-9_-]{0,31}")

#: The channels of a protocol that declares none: the ways a child reaches the
#: municipality that DOMAIN.md names: at the counter (the sticker on the city hall),
#: by phone (most Jeugdconsul cases start with a call; Veilig Thuis, Kindertelefoon),
#: online (chat, e-mail or a web form), or referred by a professional (school, GP,
#: youth care, police). The first is the default of :meth:`lastresort.Engine.open`.
DEFAULT_CHANNELS: tuple[str, ...] = ("counter", "phone", "online", "referral")

#: A pseudonymous actor id: letters, digits and ``. _ : -``, 1 to 64 characters,
#: starting with a letter or digit. No spaces (no full name fits), no ``@`` (an
#: e-mail address names its holder), bounded in length (no text fits).
ACTOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

#: A role key as an actor names it: what a party key may be (see ``validate``),
#: at most 64 characters.
ROLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")

#: A fact name: a lowercase slug of at most 64 characters.
FACT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def describe(value: object) -> str:
    """What a refused value was, without its content (it could be about a child):
    its type, and its length when it has one."""
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in ("a", "e", "i", "o", "u") else "a"
    try:
        size = len(value)  # type: ignore[arg-type]
    except TypeError:
        return f"{article} {kind}"
    return f"{article} {kind} of length {size}"


#: An exception class name that may be kept: an identifier of at most 64 characters
#: holding no run of eight or more digits (no citizen service number fits in it).
EXCEPTION_KIND = re.compile(r"(?!.*[0-9]{8})[A-Za-z_][A-Za-z0-9_]{0,63}")


def exception_kind(exc: BaseException) -> str:
    """What may be kept of an exception a plugin (or a driver) raised: the name of its
    class, or of the nearest base class whose name has :data:`EXCEPTION_KIND`'s form.
    Never its message nor its attributes, which could hold anything (a child's name
    a plugin put in its message)."""
    for cls in type(exc).__mro__:
        if EXCEPTION_KIND.fullmatch(cls.__name__):
            return cls.__name__
    return "BaseException"  # not reached: BaseException's own name has the form


def error_text(exc: BaseException) -> str:
    """What an event or a log line may say of ``exc``: ``"<class>: <message>"`` (at most
    300 characters) for an error class of lastresort itself, whose messages name ids,
    steps and events only; for any other (a plugin's or a driver's, a plugin's own
    subclass of a lastresort error included) only :func:`exception_kind`, since its
    message could hold anything."""
    module = type(exc).__module__
    if module == "lastresort" or module.startswith("lastresort."):
        return f"{type(exc).__name__}: {exc}"[:300]
    return exception_kind(exc)


def is_bsn(text: str) -> bool:
    """Whether ``text`` is 8 or 9 digits passing the BSN eleven-test
    (``9·d1 + 8·d2 + … + 2·d8 − 1·d9`` divisible by 11; 8 digits have a leading 0)."""
    if not (text.isascii() and text.isdigit() and len(text) in (8, 9)):
        return False
    digits = [int(c) for c in text.rjust(9, "0")]
    total = sum(weight * d for weight, d in zip(range(9, 1, -1), digits, strict=False))
    return (total - digits[8]) % 11 == 0


_ID_PARTS = re.compile(r"[._:-]")


def holds_bsn(text: str) -> bool:
    """Whether ``text`` is a citizen service number (:func:`is_bsn`) or holds one as a
    part of its own between ``. _ : -`` (``bsn-123456782``, ``123456782.x``): nine
    digits passing the eleven-test. Digits glued to letters (``x123456782``) are not
    split off, so that a random id (32 hex digits) is never refused by chance; and a
    dashed UUID has no part of nine characters."""
    if is_bsn(text):
        return True
    return any(len(part) == 9 and is_bsn(part) for part in _ID_PARTS.split(text))


def actor_id_problem(value: object) -> str | None:
    """Why ``value`` cannot be an actor id (``None`` when it can). Never quotes the value."""
    if not isinstance(value, str):
        return f"an actor id must be a string, got {describe(value)}"
    if not ACTOR_ID.fullmatch(value):
        return (
            f"an actor id is 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a"
            f" letter or digit (a pseudonymous identifier, never a name); got {describe(value)}"
        )
    if holds_bsn(value):
        return (
            "an actor id may not be or hold a citizen service number (8 or 9 digits passing"
            " the 11-test, alone or as a part between '.', '_', ':' or '-')"
        )
    return None


def role_problem(value: object) -> str | None:
    """Why ``value`` cannot be an actor's role key (``None`` when it can)."""
    if not isinstance(value, str):
        return f"a role must be a string, got {describe(value)}"
    if not ROLE.fullmatch(value):
        return (
            "a role is a party key of the protocol: 1 to 64 letters, digits, '_' or '-';"
            f" got {describe(value)}"
        )
    if is_bsn(value):
        return "a role may not be a citizen service number"
    return None


# -- fact names ------------------------------------------------------------------------
#
# A fact name is refused when, read as words, it names identifying data or free text.
# The check is deliberately over-inclusive: a refused innocent name costs a protocol's
# author a rename, a missed one costs a child's privacy.

#: Refused when they are one of the words of a fact name (too short, or too common
#: inside innocent words, to be searched for inside words).
FORBIDDEN_WORDS = frozenset(
    {
        "bsn",
        "ssn",
        "sofi",
        "dob",
        "mail",
        "street",
        "straat",
        "initials",
        "initialen",
        "text",
        "tekst",
        "note",
        "notes",
        "memo",
        "remark",
        "remarks",
    }
)

#: Refused when they occur inside any one word (a Dutch or English compound:
#: ``kindnaam``, ``surname``, ``woonadres``, ``smartphone``).
FORBIDDEN_PARTS = frozenset({"name", "naam", "bsn", "address", "adres", "phone", "email"})

#: Refused when they occur in the words written together (``date_of_birth`` reads as
#: ``dateofbirth``): names of identifying data and of free text, English and Dutch.
FORBIDDEN_GLUED = frozenset(
    {
        "birthdate",
        "birthday",
        "dateofbirth",
        "geboortedatum",
        "geboortedag",
        "burgerservicenummer",
        "citizenservicenumber",
        "socialsecuritynumber",
        "sofinummer",
        "telefoon",
        "postcode",
        "zipcode",
        "woonplaats",
        "freetext",
        "vrijetekst",
        "opmerking",
        "toelichting",
        "omschrijving",
        "beschrijving",
        "description",
        "notitie",
        "comment",
    }
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])")
_SEPARATORS = re.compile(r"[^0-9a-z]+")


def fact_words(name: str) -> list[str]:
    """The words of a fact name, as the forbidden-name check reads them.

    Unicode compatibility forms are folded (NFKC: full-width letters, ligatures),
    accents and invisible format characters (zero-width space, BOM, soft hyphen)
    dropped, camelCase and letter-digit boundaries split, case folded, and the rest
    split on every character that is not a letter or digit (``_``, ``-``, spaces).
    """
    text = unicodedata.normalize("NFKC", name)
    text = "".join(
        c
        for c in unicodedata.normalize("NFKD", text)
        if unicodedata.category(c) not in ("Cf", "Mn")
    )
    text = _CAMEL.sub(" ", unicodedata.normalize("NFKC", text))
    return [w for w in _SEPARATORS.split(text.casefold()) if w]


def forbidden_fact_term(name: str) -> str | None:
    """The forbidden term a fact name contains (``None`` when it contains none)."""
    words = fact_words(name)
    for word in words:
        if word in FORBIDDEN_WORDS:
            return word
        for part in sorted(FORBIDDEN_PARTS):
            if part in word:
                return part
    glued = "".join(words)
    for term in sorted(FORBIDDEN_GLUED):
        if term in glued:
            return term
    return None


def quoted(value: object) -> str:
    """``value`` quoted for an error message when it has an identifier's form (an actor
    id's: no spaces, at most 64 characters, not a BSN); otherwise only its type and
    length: a name or citizen service number typed into the wrong field never reaches an
    error, a log or a response."""
    if isinstance(value, str) and ACTOR_ID.fullmatch(value) and not is_bsn(value):
        return repr(value)
    return f"({describe(value)}, not an identifier)"
