"""The grouping rule: one conversation per unordered pair of normalized participant addresses."""

from __future__ import annotations

from typing import NamedTuple


class ParticipantPair(NamedTuple):
    first: str
    second: str


def participant_pair(from_address: str, to_address: str) -> ParticipantPair:
    """The sorted pair of two already-normalized addresses: the same for either direction."""
    first, second = sorted((from_address, to_address))
    return ParticipantPair(first, second)
