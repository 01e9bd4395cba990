import random
from collections import Counter

import pytest

from messaging.config import ProviderReceiptSettings, settings_from
from messaging.providers.mock import EMAIL_RECEIPT_OUTCOMES, SMS_RECEIPT_OUTCOMES, ReceiptPlan


def test_outcomes_follow_their_probabilities_reproducibly():
    plan = ReceiptPlan.parse("delivered=0.9,undelivered=0.1", "MOCK_SMS_RECEIPTS", SMS_RECEIPT_OUTCOMES)

    def outcomes(seed: int, count: int) -> list[str | None]:
        rng = random.Random(seed)
        return [plan.next_outcome(rng) for _ in range(count)]

    counts = Counter(outcomes(3, 10_000))
    assert set(counts) == {"delivered", "undelivered"}
    assert 0.08 < counts["undelivered"] / 10_000 < 0.12
    assert outcomes(3, 50) == outcomes(3, 50)


def test_the_defaults_deliver_everything_and_off_sends_no_receipt():
    settings = settings_from(ProviderReceiptSettings, {})
    for spec, outcomes in ((settings.mock_sms_receipts, SMS_RECEIPT_OUTCOMES), ("OFF", EMAIL_RECEIPT_OUTCOMES)):
        plan = ReceiptPlan.parse(spec, "spec", outcomes)
        drawn = {plan.next_outcome(random.Random(seed)) for seed in range(20)}
        assert drawn == ({"delivered"} if spec != "OFF" else {None})


@pytest.mark.parametrize(
    ("spec", "outcomes", "message"),
    [
        ("delivered=0.9", SMS_RECEIPT_OUTCOMES, "add up to 1"),
        ("delivered=0.5,bounce=0.5", SMS_RECEIPT_OUTCOMES, "unknown outcome 'bounce'"),
        ("delivered", EMAIL_RECEIPT_OUTCOMES, "probability between 0 and 1"),
        ("delivered=x", EMAIL_RECEIPT_OUTCOMES, "probability between 0 and 1"),
        ("", SMS_RECEIPT_OUTCOMES, "add up to 1"),
    ],
)
def test_a_bad_spec_is_refused_naming_its_variable(spec, outcomes, message):
    with pytest.raises(ValueError, match=message) as raised:
        ReceiptPlan.parse(spec, "MOCK_X_RECEIPTS", outcomes)
    assert "MOCK_X_RECEIPTS" in str(raised.value)
