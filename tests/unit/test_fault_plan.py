import random
from collections import Counter

import pytest

from messaging.providers.mock import FaultPlan


def test_probabilities_are_honoured_reproducibly():
    plan = FaultPlan.parse("429=0.3,500=0.1")

    def outcomes(seed: int, count: int) -> list[str]:
        rng = random.Random(seed)
        return [plan.next_outcome(rng) for _ in range(count)]

    counts = Counter(outcomes(5, 10_000))
    assert 0.27 < counts["429"] / 10_000 < 0.33
    assert 0.08 < counts["500"] / 10_000 < 0.12
    assert outcomes(5, 50) == outcomes(5, 50)
    assert outcomes(5, 50) != outcomes(6, 50)


def test_a_script_is_consumed_first_then_probabilities_apply():
    plan = FaultPlan.parse("429,timeout,ok,503,500=1")
    rng = random.Random(0)
    assert [plan.next_outcome(rng) for _ in range(6)] == ["429", "timeout", "ok", "503", "500", "500"]


def test_no_faults_means_every_call_succeeds():
    plan = FaultPlan.parse("")
    assert {plan.next_outcome(random.Random(1)) for _ in range(100)} == {"ok"}


@pytest.mark.parametrize("spec", ["429=2", "429=0.7,500=0.5", "teapot=0.1", "429=lots", "200", "600"])
def test_invalid_specs_are_rejected_with_the_variable_named(spec):
    with pytest.raises(ValueError, match="MOCK_SMS_FAULTS"):
        FaultPlan.parse(spec, "MOCK_SMS_FAULTS")
