"""Opaque keyset cursors: a position (instant, id) in a list's sort order."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from messaging.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ROW_ID = 2**63 - 1  # ids are bigint


def encode_cursor(at: datetime, row_id: int) -> str:
    raw = json.dumps([at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The position a cursor names, in UTC, checked completely here: a cursor is client input, and what
    reaches the database must be a value the driver and the column types can hold."""
    if cursor is None or cursor == "":
        return None
    try:
        return _position(cursor)
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None


def _position(cursor: str) -> tuple[datetime, int]:
    if len(cursor) > 200:
        raise ValueError("too long")
    document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if not isinstance(document, list) or len(document) != 2:
        raise ValueError("a position is [instant, id]")
    at_text, row_id = document
    if not isinstance(at_text, str) or type(row_id) is not int:  # bool is an int subclass: refused too
        raise ValueError("a position is [text, integer]")
    if not 1 <= row_id <= MAX_ROW_ID:
        raise ValueError("id out of range")
    at = datetime.fromisoformat(at_text)
    if at.tzinfo is None:
        raise ValueError("instant without offset")
    # Raises OverflowError for an instant that exists with its offset but not in UTC (year 1 east of
    # Greenwich, year 9999 west of it): the driver would otherwise fail converting it mid-statement.
    return at.astimezone(UTC), row_id
