"""Chaos: 200 sends through faulty providers with 90/10 receipts, the runner killed with SIGKILL while client
sends, retries and receipts are in flight, and started again. Client requests that got no answer are sent
again with their Idempotency-Key. Every send makes exactly one message, every message ends in a terminal
state that agrees with the mock providers' ledger, every history moves forward only, no receipt is lost and
none is applied twice, and most verdicts come from the providers' receipts (not only from lookups)."""

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


def _recipient(index: int) -> str:
    return f"c{index}@example.com" if index % 2 else f"+1415555{index:04d}"


def _send(url: str, index: int) -> int | None:
    name = ("send_message-sms", "send_message-email")[index % 2]
    path = "/api/messages/email" if name.endswith("email") else "/api/messages/sms"
    body = {**sample_body(name), "to": _recipient(index)}
    try:
        return call(url, "POST", path, body, headers={"Idempotency-Key": f"chaos-{index}"}, timeout=10).status
    except OSError:
        return None  # the runner was killed under this request, or was down when it was made


def _send_until_answered(url: str, index: int) -> int:
    """A client retrying a request that got no answer, with the same Idempotency-Key (409: still in flight,
    until the dead request's lease runs out)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = _send(url, index)
        if status is not None and status != 409:
            return status
        time.sleep(0.5)
    raise AssertionError(f"send {index} never got an answer")


def test_chaos_with_a_kill_ends_in_agreement_with_the_ledger(chaos_runner):
    database = RunnerDb(chaos_runner.database_url)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_send, chaos_runner.url, index) for index in range(SENDS)]
        while sum(future.done() for future in futures) < SENDS // 3:
            time.sleep(0.05)
        in_flight = sum(future.running() for future in futures)
        chaos_runner.kill()  # kill -9 amid client sends, retries and receipts (the embedded SQS dies with it)
        chaos_runner.start()  # meanwhile the other sends go on: refused until it is up again
        statuses = [future.result() for future in futures]
    assert in_flight >= 1
    unanswered = [index for index, status in enumerate(statuses) if status is None]
    assert unanswered, "the kill interrupted no client request"
    for index in unanswered:
        statuses[index] = _send_until_answered(chaos_runner.url, index)
    assert statuses == [202] * SENDS
    # Nothing lost, nothing doubled: exactly one message per send, whether or not its first request was answered.
    per_recipient = database.scalar(
        "SELECT json_object_agg(to_address, n) FROM (SELECT to_address, count(*) AS n FROM messages GROUP BY 1) AS s"
    )
    assert per_recipient == {_recipient(index): 1 for index in range(SENDS)}

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
            connection.execute(
                text("SELECT message_id, type, status, previous_status, source FROM message_events ORDER BY id")
            )
        )
        # Every receipt the provider delivered found its message (whether it joined by provider id or not):
        # none is left held.
        held = connection.execute(text("SELECT count(*) FROM provider_receipts WHERE applied_at IS NULL")).scalar()
    assert len(messages) == SENDS
    for message in messages:
        if message.accepted_id is None:
            assert message.status == "failed", message  # failed only when never accepted
        else:
            assert message.provider_message_id == message.accepted_id, message
            assert message.status == RECEIPT_OUTCOME_STATUS[message.receipt_outcome], message
    # Transitions only: a lookup's finding without a verdict (message.unconfirmed) changes no status, and the
    # suppression a bounce adds (recipient.opted_out, naming the message) is not the message's status.
    transitions = (
        event
        for event in events
        if event.message_id is not None
        and event.type.startswith("message.")
        and event.status is not None
        and event.type != "message.unconfirmed"
    )
    by_message = {
        message_id: list(rows)
        for message_id, rows in itertools.groupby(
            sorted(transitions, key=lambda event: event.message_id), key=lambda event: event.message_id
        )
    }
    by_receipt = 0
    for message in messages:
        history = by_message[message.id]
        assert history[0].type == "message.queued", history
        for before, after in itertools.pairwise(history):
            assert after.previous_status == before.status, history
            assert after.status in ALLOWED[before.status], history
        assert history[-1].status == message.status, history
        verdicts = [event for event in history if event.type in ("message.delivered", "message.undelivered")]
        assert len(verdicts) == (0 if message.accepted_id is None else 1), history  # 0 lost, 0 applied twice
        by_receipt += sum(event.source == "receipt" for event in verdicts)
    assert held == 0
    # The runner drives ProviderReceiptQueue -> MockReceiptFunction -> the status webhooks: most verdicts are
    # receipts; lookups only settle what the kill lost (receipts in the dead embedded SQS).
    settled = sum(message.accepted_id is not None for message in messages)
    assert by_receipt >= settled * 0.6, (by_receipt, settled)
    assert {message.status for message in messages} >= {"delivered", "failed"}
    database.engine.dispose()
