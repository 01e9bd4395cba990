"""How an SMS body travels and what it costs: its encoding (GSM-7 or UCS-2) and its number of segments.

GSM 03.38 (the `gsm0338` codec): a character of the default alphabet is one septet, one of the extension
table (`€ [ ] { } | ~ ^ \\` and form feed) two (escape + character). A body with any other character
travels as UCS-2, counted in UTF-16 code units (an emoji outside the Basic Multilingual Plane is two).
One segment holds 160 septets or 70 units; a longer body is split into segments of 153 septets or 67
units (the rest is the concatenation header), and a two-septet character or a surrogate pair is never
split across two segments, as handsets and carriers pack them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

from messaging.domain import NewMessage

Encoding = Literal["GSM-7", "UCS-2"]

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67
_ESCAPE = "\x1b"  # the codec's escape to the extension table, never a character of a message


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    segments: int


def _gsm_widths(body: str) -> list[int] | None:
    """Septets per character, or None when some character is outside GSM 03.38."""
    if _ESCAPE in body:
        return None
    try:
        return [len(character.encode("gsm03.38")) for character in body]
    except UnicodeEncodeError:
        return None


def _ucs2_widths(body: str) -> list[int]:
    return [2 if ord(character) > 0xFFFF else 1 for character in body]


def _pack(widths: list[int], single: int, multi: int) -> int:
    total = sum(widths)
    if total <= single:
        return 1
    segments, used = 1, 0
    for width in widths:
        if used + width > multi:
            segments, used = segments + 1, 0
        used += width
    return segments


def count_segments(body: str) -> SegmentCount:
    """The encoding and segment count of an SMS body (an empty body is one segment)."""
    widths = _gsm_widths(body)
    if widths is not None:
        return SegmentCount("GSM-7", _pack(widths, GSM_SINGLE, GSM_MULTI))
    return SegmentCount("UCS-2", _pack(_ucs2_widths(body), UCS2_SINGLE, UCS2_MULTI))


def with_segments(message: NewMessage) -> NewMessage:
    """An SMS/MMS with its encoding and segment count (an MMS travels as one message whatever its body)."""
    if message.type == "email":
        return message
    counted = count_segments(message.body)
    return replace(message, encoding=counted.encoding, segments=1 if message.type == "mms" else counted.segments)
