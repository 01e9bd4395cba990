"""With faults injected into the providers, every send still ends delivered exactly once or failed in the DLQ."""
# The full lifecycle under chaos (receipts, a kill -9, ledger agreement) is tests/e2e/test_lifecycle_chaos.py.

import time

import pytest

from tests.conftest import sample_body
from tests.e2e.client import call
from tests.e2e.conftest import Runner, RunnerDb

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def faulty_runner():
    runner = Runner(
        "faults",
        {
            "MOCK_SMS_FAULTS": "429=0.3,500=0.1",
            "MOCK_EMAIL_FAULTS": "429=0.3,500=0.1,timeout=0.05",
            "MOCK_PROVIDER_SEED": "7",
            "MAX_SEND_ATTEMPTS": "5",
        },
    )
    yield runner
    runner.stop()


def test_faulty_providers_lose_nothing(faulty_runner):
    database = RunnerDb(faulty_runner.database_url)
    names = ["send_message-sms", "send_message-mms", "send_message-email"]
    for index in range(30):
        name = names[index % 3]
        recipient = f"p{index}@example.com" if name.endswith("email") else f"+1415555{index:04d}"
        path = "/api/messages/email" if name.endswith("email") else "/api/messages/sms"
        response = call(faulty_runner.url, "POST", path, {**sample_body(name), "to": recipient})
        assert response.status == 202, response.text

    deadline = time.monotonic() + 90
    while database.scalar("SELECT count(*) FROM messages WHERE status IN ('queued', 'retrying')") and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert database.scalar("SELECT count(*) FROM messages WHERE status IN ('queued', 'retrying')") == 0
    sent = database.scalar("SELECT count(*) FROM messages WHERE status IN ('sent', 'delivered')")
    failed = database.scalar("SELECT count(*) FROM messages WHERE status = 'failed'")
    assert sent + failed == 30
    assert database.scalar("SELECT count(DISTINCT idempotency_token) FROM mock_provider_deliveries") >= sent
    assert (
        database.scalar(
            """SELECT count(*) FROM messages m WHERE m.status IN ('sent', 'delivered') AND NOT EXISTS (
               SELECT 1 FROM mock_provider_deliveries d
               WHERE d.idempotency_token = m.id::text AND d.provider_message_id = m.provider_message_id)"""
        )
        == 0
    )
    assert (
        database.scalar(
            "SELECT count(*) FROM (SELECT idempotency_token FROM mock_provider_deliveries"
            " GROUP BY 1 HAVING count(*) > 1) AS twice"
        )
        == 0
    )
    retried = database.scalar("SELECT count(*) FROM messages WHERE attempts > 1")
    assert retried > 0, "the faults should have forced retries"
    database.engine.dispose()
