"""Address normalization: phones to E.164, emails to the bare lower-cased address.

The grouping rule depends on every address having exactly one normal form, so both directions and both
channels of a pair meet in one conversation. Anything the libraries would silently convert (letters read
off a keypad, an extension dropped, a link's target chosen over its text, a fullwidth letter read as its
ASCII twin) is refused instead: a stored address must be the one the sender wrote.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from messaging.limits import MAX_PHONE_LENGTH

MAX_ADDRESS_LENGTH = 320
MAX_LOCAL_PART_OCTETS = 64  # RFC 5321 §4.5.3.1.1
_MARKDOWN_MAILTO = re.compile(r"^\[(?P<text>[^\[\]]*)\]\(mailto:(?P<target>[^()\s]+)\)$", re.IGNORECASE)
# After the one leading '+': ASCII digits and the separators people type. No letters (phonenumbers reads
# them off a keypad), no ';', ',', '#', 'x' or 'ext' (it drops them as an extension), no second '+'.
_PHONE_CHARACTERS = re.compile(r"\+[0-9 ().\-]+")


class InvalidAddress(ValueError):
    """Raised with a message naming what is wrong with the address."""


def _printable(value: str) -> str:
    if any(ord(character) < 0x20 or 0xD800 <= ord(character) <= 0xDFFF for character in value):
        raise InvalidAddress("address contains control characters or invalid Unicode")
    # Format characters (bidi overrides, zero-width spaces and joiners, soft hyphens) are invisible: an
    # address holding one reads as another address.
    if any(unicodedata.category(character) == "Cf" for character in value):
        raise InvalidAddress("address contains invisible format characters (bidi controls or zero-width)")
    return value


def _phone_syntax(value: str) -> None:
    """Refuse what phonenumbers would convert or drop, naming it."""
    if _PHONE_CHARACTERS.fullmatch(value):
        return
    if value.startswith("++"):
        raise InvalidAddress("phone number has more than one '+'")
    lowered = value.lower()
    if "ext" in lowered or any(marker in value for marker in ";,#") or re.search(r"[0-9\s]x\s*[0-9]", lowered):
        raise InvalidAddress("phone number has an extension; extensions are not supported")
    if any(character.isalpha() for character in value):
        raise InvalidAddress("not a phone number: it contains letters (write it with digits only)")
    raise InvalidAddress("phone number may contain only ASCII digits, spaces and '-', '.', '(' or ')' after the '+'")


def parse_phone(raw: str) -> phonenumbers.PhoneNumber:
    """The number `raw` writes, checked for syntax and a possible length (not for being assigned)."""
    if len(raw) > MAX_PHONE_LENGTH:
        raise InvalidAddress(f"phone number is too long: more than {MAX_PHONE_LENGTH} characters")
    value = _printable(raw.strip())
    if not value:
        raise InvalidAddress("phone number is empty")
    if not value.startswith("+"):
        raise InvalidAddress("phone number must be in international format starting with '+' (E.164)")
    _phone_syntax(value)
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(f"not a phone number: {exc}") from None
    # IS_POSSIBLE only: is_possible_number() also passes numbers dialable only locally (no area code).
    if phonenumbers.is_possible_number_with_reason(parsed) != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise InvalidAddress("not a valid phone number: wrong length for its country code")
    return parsed


# Addresses repeat (a conversation is two of them, over and over): the normalized form of each is kept, so a
# warm function parses a number or an address once, not on every request. Refusals are not kept (they raise).
@functools.lru_cache(maxsize=4096)
def normalize_phone(raw: str, *, assigned: bool = True) -> str:
    """E.164 form of `raw`. `assigned=True` (sends) also requires a number the numbering plan assigns;
    webhooks pass False: the carrier already delivered the message, so any possible number is real enough."""
    parsed = parse_phone(raw)
    if assigned and not phonenumbers.is_valid_number(parsed):
        raise InvalidAddress(
            "not a valid phone number for sending: its length is possible but its country assigns no such number"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _bare_email(value: str) -> str:
    if not value:
        raise InvalidAddress("email address is empty")
    # Compatibility characters (fullwidth letters, digits, '@' and '.', ligatures, circled digits, roman
    # numerals) read as other characters: `ａ@example.com` looks like, but is not, `a@example.com`, and in a
    # domain the library would silently map them to what they resemble.
    if unicodedata.normalize("NFKC", value) != unicodedata.normalize("NFC", value):
        raise InvalidAddress(
            "email address contains compatibility characters (fullwidth forms, ligatures or the like); "
            "write it with plain characters"
        )
    try:
        validated = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"not a valid email address: {exc}") from None
    if len(validated.local_part.encode()) > MAX_LOCAL_PART_OCTETS:
        raise InvalidAddress(
            f"the part before the @ is longer than {MAX_LOCAL_PART_OCTETS} bytes in UTF-8 "
            "(a character such as 'ä' takes 2 of them)"
        )
    stored = validated.normalized.lower()
    if not _same_address(value, stored, validated.ascii_domain):
        raise InvalidAddress(f"email address would be stored as {stored!r}, not as written; send that form")
    return stored


def _same_address(given: str, stored: str, ascii_domain: str) -> bool:
    """True when `stored` is `given` up to letter case, Unicode canonical equivalence (one character
    encoded composed or decomposed: the same text) and a domain written in its ASCII IDNA form (xn--...:
    the same domain, stored in Unicode). Any other mapping the library made (such as an ideographic full
    stop read as '.') would store an address the sender did not write."""
    given = unicodedata.normalize("NFC", given).lower()
    if given == stored:
        return True
    given_local, _, given_domain = given.rpartition("@")
    stored_local = stored.rpartition("@")[0]
    return given_local == stored_local and given_domain == ascii_domain.lower()


@functools.lru_cache(maxsize=4096)
def normalize_email(raw: str) -> str:
    value = _printable(raw.strip())
    if len(value) > 2 * MAX_ADDRESS_LENGTH + 16:
        raise InvalidAddress("email address is too long")
    markdown = _MARKDOWN_MAILTO.match(value)
    if not markdown:
        return _bare_email(value)
    target = _bare_email(markdown.group("target"))
    try:
        text = _bare_email(markdown.group("text").strip())
    except InvalidAddress:
        text = None
    if text != target:
        raise InvalidAddress("ambiguous markdown link: its text and its mailto target are different addresses")
    return target
