"""Chaos: 200 sends through faulty providers with 90/10 receipts, the runner killed with SIGKILL midway and
started again. Every message ends in a terminal state that agrees with the mock providers' ledger, every
history moves forward only, no receipt is lost and none is applied twice."""

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from messaging.enums import RECEIPT_OUTCOME_STATUS
from tests.conftest import sample_body
from tests.e2e.client import call
from tests.e2e.conftest import Runner, RunnerDb

pytestmark = pytest.mark.e2e

SENDS = 200
# What a history may do next from each status (the first row is always message.queued).
ALLOWED = {
    "queued": {"retrying", "sent", "failed", "delivered", "undelivered"},
    "retrying": {"retrying", "sent", "failed", "delivered", "undelivered"},
    "sent": {"delivered", "undelivered"},
    "failed": {"delivered", "undelivered"},
    "delivered": set(),
    "undelivered": set(),
}
FAULTS = "429=0.3,500=0.1,timeout=0.05"


@pytest.fixture(scope="module")
def chaos_runner():
    runner = Runner(
        "chaos",
        {
            "MOCK_SMS_FAULTS": FAULTS,
            "MOCK_EMAIL_FAULTS": FAULTS,
            "MOCK_SMS_RECEIPTS": "delivered=0.9,undelivered=0.1",
            "MOCK_EMAIL_RECEIPTS": "delivered=0.9,bounce=0.05,spamreport=0.05",
            "MOCK_RECEIPT_DELAY_SECONDS": "0",  # receipts race our own `sent` updates
            "MOCK_PROVIDER_SEED": "11",
            "MAX_SEND_ATTEMPTS": "4",
            "SEND_LEASE_SECONDS": "3",
            "SWEEP_GRACE_SECONDS": "1",
            "SWEEP_INTERVAL_SECONDS": "1",
            "RECEIPT_TIMEOUT_SECONDS": "8",
        },
    )
    yield runner
    runner.stop()


def _send(url: str, index: int) -> int | None:
    name = ("send_message-sms", "send_message-email")[index % 2]
    recipient = f"c{index}@example.com" if name.endswith("email") else f"+1415555{index:04d}"
    path = "/api/messages/email" if name.endswith("email") else "/api/messages/sms"
    try:
        return call(url, "POST", path, {**sample_body(name), "to": recipient}, timeout=10).status
    except OSError:
        return None  # the runner was killed under this request


def test_chaos_with_a_kill_ends_in_agreement_with_the_ledger(chaos_runner):
    database = RunnerDb(chaos_runner.database_url)
    statuses: list[int | None] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses += pool.map(lambda index: _send(chaos_runner.url, index), range(SENDS // 2))
        chaos_runner.kill()  # kill -9 while retries and receipts are in flight (the embedded SQS dies with it)
        chaos_runner.start()
        statuses += pool.map(lambda index: _send(chaos_runner.url, index), range(SENDS // 2, SENDS))
    assert statuses.count(202) >= SENDS // 2

    unsettled = "SELECT count(*) FROM messages WHERE status IN ('queued', 'retrying', 'sent')"
    deadline = time.monotonic() + 600  # generous: on a busy machine the embedded SQS is slow, not lossy
    while database.scalar(unsettled) and time.monotonic() < deadline:
        time.sleep(1)
    assert database.scalar(unsettled) == 0, database.scalar(
        "SELECT json_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM messages GROUP BY 1) AS s"
    )

    with database.engine.connect() as connection:
        from sqlalchemy import text

        messages = list(
            connection.execute(
                text(
                    "SELECT m.id, m.status, m.provider_message_id, d.provider_message_id AS accepted_id, "
                    "d.receipt_outcome FROM messages m LEFT JOIN mock_provider_deliveries d "
                    "ON d.provider = m.provider AND d.idempotency_token = m.id::text ORDER BY m.id"
                )
            )
        )
        events = list(
            connection.execute(text("SELECT message_id, type, status, previous_status FROM message_events ORDER BY id"))
        )
        held = connection.execute(
            text(
                "SELECT count(*) FROM provider_receipts r JOIN messages m ON m.provider = r.provider "
                "AND m.provider_message_id = r.provider_message_id WHERE r.applied_at IS NULL"
            )
        ).scalar()
    assert len(messages) >= statuses.count(202)
    for message in messages:
        if message.accepted_id is None:
            assert message.status == "failed", message  # failed only when never accepted
        else:
            assert message.provider_message_id == message.accepted_id, message
            assert message.status == RECEIPT_OUTCOME_STATUS[message.receipt_outcome], message
    by_message = {
        message_id: list(rows)
        for message_id, rows in itertools.groupby(
            # A message's status history (a bounce or spam report also records `recipient.*` on the message).
            sorted(
                (event for event in events if event.message_id is not None and event.type.startswith("message.")),
                key=lambda event: event.message_id,
            ),
            key=lambda event: event.message_id,
        )
    }
    for message in messages:
        history = by_message[message.id]
        assert history[0].type == "message.queued", history
        for before, after in itertools.pairwise(history):
            assert after.previous_status == before.status, history
            assert after.status in ALLOWED[before.status], history
        assert history[-1].status == message.status, history
        verdicts = [event for event in history if event.type in ("message.delivered", "message.undelivered")]
        assert len(verdicts) == (0 if message.accepted_id is None else 1), history  # 0 lost, 0 applied twice
    assert held == 0
    assert {message.status for message in messages} >= {"delivered", "failed"}
    database.engine.dispose()
