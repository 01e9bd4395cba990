import random

import pytest

from messaging.services.retry_policy import backoff_seconds


@pytest.mark.parametrize("attempts_made", [1, 2, 3, 5, 10, 30])
def test_full_jitter_stays_within_the_capped_exponential_ceiling(attempts_made):
    rng = random.Random(7)
    ceiling = min(60.0, 2.0 * 2 ** (attempts_made - 1))
    delays = [backoff_seconds(attempts_made, base_seconds=2, max_seconds=60, rng=rng) for _ in range(500)]
    assert all(0 <= delay <= ceiling for delay in delays)
    assert max(delays) > ceiling * 0.8  # jitter spans the whole range
    assert min(delays) < ceiling * 0.2


def test_retry_after_is_a_floor():
    rng = random.Random(1)
    delays = [backoff_seconds(1, base_seconds=2, max_seconds=60, retry_after_seconds=30, rng=rng) for _ in range(100)]
    assert min(delays) >= 30


def test_retry_after_beyond_the_cap_is_still_honoured():
    assert backoff_seconds(3, base_seconds=1, max_seconds=5, retry_after_seconds=3600) == 3600
