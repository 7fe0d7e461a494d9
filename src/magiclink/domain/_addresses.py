"""E-mail addresses that cannot be misdelivered (SPEC §9.2).

Parsing is done by `email-validator` (no DNS: `check_deliverability=False`); the checks of
§9.2 run on the raw input first, so that no character can be normalized onto another address
(the Kelvin sign onto `k`, a full-width at sign (U+FF20) onto `@`, the dotless i onto `i`).
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Final

from email_validator import EmailNotValidError, validate_email

from magiclink.domain._errors import InvalidInput

MAX_EMAIL_LENGTH: Final = 254

# Display names, quoted local parts, comments, lists and routes are never an address here.
_FORBIDDEN: Final = {
    ",": "commas",
    "<": "angle brackets",
    ">": "angle brackets",
    '"': "quoted local parts",
    "(": "comments",
    ")": "comments",
    ";": "lists",
    ":": "routes",
    "[": "domain literals",
    "]": "domain literals",
    "\\": "escapes",
}
# Unicode general categories refused anywhere: control, format (zero-width...), separators,
# private use, unassigned and surrogates.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cn", "Cs"})


def _refuse(why: str) -> InvalidInput:
    return InvalidInput(f"Invalid e-mail address: {why}")


def _maps_to_ascii(char: str) -> bool:
    """True when NFC, NFKC or a case mapping turns the non-ASCII `char` into ASCII text."""
    images = (
        unicodedata.normalize("NFC", char),
        unicodedata.normalize("NFKC", char),
        char.lower(),
        char.upper(),
        char.casefold(),
        char.title(),
    )
    return any(any(c.isascii() for c in image) for image in images)


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def _check_raw(text: str) -> None:
    """The §9.2 refusals, on the raw (stripped) input, before any normalization."""
    if not text:
        raise _refuse("it is empty")
    if len(text) > MAX_EMAIL_LENGTH:
        raise _refuse(f"it is longer than {MAX_EMAIL_LENGTH} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse("it is not valid Unicode text") from None
    for char in text:
        if char in _FORBIDDEN:
            raise _refuse(f"{_FORBIDDEN[char]} are not allowed")
        if char.isspace() or unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise _refuse(
                f"whitespace, control or format character U+{ord(char):04X} is not allowed"
            )
    if text.count("@") != 1 or unicodedata.normalize("NFKC", text).count("@") != 1:
        raise _refuse("it must contain exactly one @")
    for char in text:
        if unicodedata.normalize("NFKC", char) != char:
            raise _refuse(f"character U+{ord(char):04X} changes under compatibility normalization")
        if not char.isascii() and _maps_to_ascii(char):
            raise _refuse(f"character U+{ord(char):04X} could be read as an ASCII character")
    if unicodedata.normalize("NFC", text) != text or unicodedata.normalize("NFKC", text) != text:
        raise _refuse("it is not in Unicode normal form (NFC)")


def normalize_address(value: object) -> str:
    """The one normal form of an e-mail address, or `InvalidInput` (SPEC §9.2).

    Surrounding whitespace is stripped; the local part is lower-cased for ASCII letters only;
    the domain is lower-cased and IDNA-normalized. A plain ASCII address normalizes to
    `value.strip().lower()`, exactly as before (R6).
    """
    if not isinstance(value, str):
        raise InvalidInput("E-mail address must be a string")
    return _normalized(str(value))


@functools.lru_cache(maxsize=4096)
def _normalized(value: str) -> str:
    """`normalize_address` of a string, remembered: the checks and email-validator cost
    about 60 µs, most of an in-memory issue, and a host sees the same addresses again and
    again. A refusal raises and is not remembered."""
    text = value.strip()
    _check_raw(text)
    local, _, domain = text.partition("@")
    if "." not in domain:
        raise _refuse("the domain must contain a dot")
    try:
        parsed = validate_email(
            text,
            check_deliverability=False,
            # Special-use names (.test, .local) stay accepted as before (R6); no DNS either way.
            globally_deliverable=False,
            test_environment=True,
            allow_smtputf8=True,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            allow_empty_local=False,
        )
    except EmailNotValidError as error:
        raise _refuse(str(error)) from None
    # Only ASCII letters change case: no non-ASCII character may fold onto another address.
    folded_local = _ascii_lower(local)
    if _ascii_lower(parsed.local_part) != folded_local:
        # email-validator keeps the local part as given once it is in NFC (checked above),
        # except that 2.4 lower-cases it: equal up to ASCII case is the same address. A
        # non-ASCII capital it folded is refused (only ASCII letters change case here).
        raise _refuse("the local part is not in its normal form")
    if domain.isascii():
        # Exactly as before (R6); an A-label (xn--) domain stays as written, lower-cased.
        normalized_domain = domain.lower()
    elif parsed.domain == _ascii_lower(domain):
        normalized_domain = parsed.domain
    else:
        # A non-ASCII domain must already be in its IDNA-mapped form (lower case, NFC),
        # so that two spellings that differ by more than ASCII case never meet.
        raise _refuse("the domain is not in its normal (IDNA) form")
    normalized = f"{folded_local}@{normalized_domain}"
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise _refuse(f"it is longer than {MAX_EMAIL_LENGTH} characters")
    return normalized


__all__ = ["MAX_EMAIL_LENGTH", "normalize_address"]
