"""Capped exponential backoff with full jitter, honouring the provider's Retry-After."""

from __future__ import annotations

import random

_rng = random.SystemRandom()


def backoff_seconds(
    attempts_made: int,
    *,
    base_seconds: float,
    max_seconds: float,
    retry_after_seconds: float | None = None,
    rng: random.Random = _rng,
) -> float:
    """Delay before the next attempt, after `attempts_made` attempts (1 = the first one failed).

    Full jitter: uniform in [0, min(max, base * 2^(attempts_made - 1))]. A Retry-After from the provider is a
    floor: the next attempt never comes earlier than the provider asked.
    """
    ceiling = min(max_seconds, base_seconds * (2 ** max(0, attempts_made - 1)))
    delay = rng.uniform(0, ceiling)
    if retry_after_seconds is not None:
        delay = max(delay, retry_after_seconds)
    return delay
