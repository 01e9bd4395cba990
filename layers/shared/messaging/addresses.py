"""Address normalization: phones to E.164, emails to the bare lower-cased address.

The grouping rule depends on every address having exactly one normal form, so both directions and both
channels of a pair meet in one conversation.
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

MAX_ADDRESS_LENGTH = 320
_MARKDOWN_MAILTO = re.compile(r"^\[(?P<text>[^\[\]]*)\]\(mailto:(?P<target>[^()\s]+)\)$", re.IGNORECASE)


class InvalidAddress(ValueError):
    """Raised with a message naming what is wrong with the address."""


def _printable(value: str) -> str:
    if any(ord(character) < 0x20 or 0xD800 <= ord(character) <= 0xDFFF for character in value):
        raise InvalidAddress("address contains control characters or invalid Unicode")
    return value


def normalize_phone(raw: str) -> str:
    value = _printable(raw.strip())
    if not value:
        raise InvalidAddress("phone number is empty")
    if len(value) > 32:
        raise InvalidAddress("phone number is too long")
    if not value.startswith("+"):
        raise InvalidAddress("phone number must be in international format starting with '+' (E.164)")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidAddress("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    value = _printable(raw.strip())
    if len(value) > 2 * MAX_ADDRESS_LENGTH + 16:
        raise InvalidAddress("email address is too long")
    markdown = _MARKDOWN_MAILTO.match(value)
    if markdown:
        value = markdown.group("target")
    if not value:
        raise InvalidAddress("email address is empty")
    try:
        validated = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"not a valid email address: {exc}") from None
    return validated.normalized.lower()
