import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import response_json, sample_body, sample_event
from tests.integration.conftest import sqs_event


def crash(*_args, **_kwargs):
    raise ConnectionError("the function died before recording the provider's answer")


def send(invoke, name="send_message-sms", headers=None, **changes):
    body = {**sample_body(name), **changes}
    event = sample_event(name, payload=body)
    if headers:
        event["headers"] = {**event["headers"], **{key.lower(): value for key, value in headers.items()}}
    return invoke("SendMessageFunction", event)


def make_due(db, message_id):
    """Time travel: the message's next attempt is due (and overdue for the sweep)."""
    db.scalar(
        "UPDATE messages SET next_attempt_at = now() - interval '1 hour' WHERE id = :id RETURNING id", id=message_id
    )


def retry_record(message_id):
    return {"body": json.dumps({"message_id": message_id})}


@pytest.mark.parametrize(
    ("event", "message_type", "provider"),
    [
        ("send_message-sms", "sms", "mock-sms"),
        ("send_message-mms", "mms", "mock-sms"),
        ("send_message-email", "email", "mock-email"),
    ],
)
def test_send_happy_path(invoke, db, queues, event, message_type, provider):
    response = send(invoke, event)
    assert response["statusCode"] == 202, response["body"]
    message = response_json(response)
    assert response["headers"]["Location"] == f"/api/messages/{message['id']}"
    assert message["status"] == "sent"
    assert message["direction"] == "outbound"
    assert message["type"] == message_type
    assert message["attempts"] == 1
    assert message["provider"] == provider
    assert message["provider_message_id"]
    deliveries = db.rows("SELECT * FROM mock_provider_deliveries")
    assert len(deliveries) == 1
    assert deliveries[0]["idempotency_token"] == str(message["id"])
    assert deliveries[0]["provider_message_id"] == message["provider_message_id"]
    assert deliveries[0]["provider"] == provider
    assert queues.depth(queues.retry_url) == 0
    shown = response_json(
        invoke(
            "ConversationsFunction",
            sample_event(
                "conversations-message",
                pathParameters={"message_id": str(message["id"])},
                rawPath=f"/api/messages/{message['id']}",
                requestContext={
                    **sample_event("conversations-message")["requestContext"],
                    "http": {
                        **sample_event("conversations-message")["requestContext"]["http"],
                        "path": f"/api/messages/{message['id']}",
                    },
                },
            ),
        )
    )
    assert shown["status"] == "sent"


def test_a_reply_lands_in_the_conversation_of_the_message_it_answers(invoke, db, queues):
    sent = response_json(send(invoke))
    reply_body = {**sample_body("inbound_sms-sms"), "from": sent["to"], "to": sent["from"]}
    reply = response_json(invoke("InboundSmsFunction", sample_event("inbound_sms-sms", payload=reply_body)))
    assert reply["conversation_id"] == sent["conversation_id"]
    assert db.scalar("SELECT message_count FROM conversations") == 2


def test_throttled_send_is_retried_after_retry_after(invoke, db, queues, configure, retry_consumer):
    configure(MOCK_SMS_FAULTS="429", MOCK_RETRY_AFTER_SECONDS=30, RETRY_BASE_SECONDS=0.01, RETRY_MAX_SECONDS=0.01)
    before = datetime.now(UTC)
    response = send(invoke)
    assert response["statusCode"] == 202
    message = response_json(response)
    assert message["status"] == "retrying"
    assert message["attempts"] == 1
    assert "429" in message["last_error"]
    assert datetime.fromisoformat(message["next_attempt_at"]) >= before + timedelta(seconds=29)
    assert queues.depth(queues.retry_url) == 1
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 0

    early = retry_consumer([retry_record(message["id"])])
    assert early["batchItemFailures"] == [{"itemIdentifier": "test-0"}]
    assert db.scalar("SELECT attempts FROM messages") == 1

    make_due(db, message["id"])
    on_time = retry_consumer([retry_record(message["id"])])
    assert on_time["batchItemFailures"] == []
    row = db.rows("SELECT status, attempts, last_error, next_attempt_at FROM messages")[0]
    assert (row["status"], row["attempts"], row["last_error"], row["next_attempt_at"]) == ("sent", 2, None, None)
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1


def test_server_errors_until_the_last_attempt_end_failed_and_in_the_dlq(invoke, db, queues, configure, drain):
    configure(MOCK_SMS_FAULTS="500=1", MAX_SEND_ATTEMPTS=4, RETRY_BASE_SECONDS=0, RETRY_MAX_SECONDS=0)
    message = response_json(send(invoke))
    assert message["status"] == "retrying"
    assert drain() == 3
    row = db.rows("SELECT status, attempts, last_error, next_attempt_at FROM messages")[0]
    assert row["status"] == "failed"
    assert row["attempts"] == 4
    assert "500" in row["last_error"]
    assert row["next_attempt_at"] is None
    dead = queues.receive_all(queues.dlq_url)
    assert [json.loads(entry["Body"])["message_id"] for entry in dead] == [message["id"]]
    assert "500" in dead[0]["MessageAttributes"]["failure_reason"]["StringValue"]
    assert queues.depth(queues.retry_url) == 0
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 0


def test_provider_rejection_fails_at_once_without_a_retry(invoke, db, queues, configure):
    configure(MOCK_SMS_FAULTS="400")
    message = response_json(send(invoke))
    assert message["status"] == "failed"
    assert message["attempts"] == 1
    assert "400" in message["last_error"]
    assert queues.depth(queues.retry_url) == 0


def test_duplicate_sqs_delivery_does_nothing(invoke, db, queues, configure, retry_consumer):
    configure(MOCK_SMS_FAULTS="500", RETRY_BASE_SECONDS=0, RETRY_MAX_SECONDS=0)
    message = response_json(send(invoke))
    make_due(db, message["id"])
    first = retry_consumer([retry_record(message["id"])])
    again = retry_consumer([retry_record(message["id"]), retry_record(message["id"])])
    assert first["batchItemFailures"] == [] and again["batchItemFailures"] == []
    row = db.rows("SELECT status, attempts FROM messages")[0]
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert db.rows("SELECT replay_count FROM mock_provider_deliveries") == [{"replay_count": 0}]


def test_concurrent_duplicate_retries_attempt_once(invoke, concurrent_invoke, db, queues, configure):
    configure(MOCK_SMS_FAULTS="500", RETRY_BASE_SECONDS=0, RETRY_MAX_SECONDS=0)
    message = response_json(send(invoke))
    make_due(db, message["id"])
    configure(MOCK_SMS_FAULTS=None)  # a fault script runs in each execution environment: the retries succeed
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda _: concurrent_invoke("SendRetryFunction", sqs_event([retry_record(message["id"])])), range(8)
            )
        )
    assert db.scalar("SELECT attempts FROM messages") == 2
    assert db.rows("SELECT replay_count FROM mock_provider_deliveries") == [{"replay_count": 0}]


def test_sqs_down_at_enqueue_time_loses_nothing(invoke, db, queues, configure, drain):
    configure(MOCK_SMS_FAULTS="429", MOCK_RETRY_AFTER_SECONDS=0, SEND_RETRY_QUEUE_URL=queues.retry_url + "-gone")
    message = response_json(send(invoke))
    assert message["status"] == "retrying"
    assert queues.depth(queues.retry_url) == 0

    configure(SEND_RETRY_QUEUE_URL=queues.retry_url, SWEEP_GRACE_SECONDS=0, MOCK_SMS_FAULTS=None)
    make_due(db, message["id"])
    swept = invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))
    assert swept["requeued"] == 1
    assert drain() == 1
    assert db.scalar("SELECT status FROM messages") == "sent"
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1


def test_sweep_failing_to_enqueue_changes_nothing(invoke, db, queues, configure):
    configure(MOCK_SMS_FAULTS="429", MOCK_RETRY_AFTER_SECONDS=0, SEND_RETRY_QUEUE_URL=queues.retry_url + "-gone")
    message = response_json(send(invoke))
    make_due(db, message["id"])
    due_before = db.scalar("SELECT next_attempt_at FROM messages")
    configure(SWEEP_GRACE_SECONDS=0)
    with pytest.raises(Exception, match="NonExistentQueue|does not exist"):
        invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))
    assert db.scalar("SELECT next_attempt_at FROM messages") == due_before
    assert db.scalar("SELECT status FROM messages") == "retrying"


def test_crash_between_provider_acceptance_and_database_update_delivers_once(
    invoke, db, queues, configure, drain, monkeypatch
):
    from messaging.services import delivery

    with monkeypatch.context() as patch:
        patch.setattr(delivery, "_record_success", crash)
        response = send(invoke)
    assert response["statusCode"] == 202
    message = response_json(response)
    assert message["status"] == "queued"
    original = db.rows("SELECT provider_message_id FROM mock_provider_deliveries")
    assert len(original) == 1

    configure(SWEEP_GRACE_SECONDS=0)
    make_due(db, message["id"])
    assert invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))["requeued"] == 1
    drain()
    row = db.rows("SELECT status, provider_message_id FROM messages")[0]
    assert row["status"] == "sent"
    deliveries = db.rows("SELECT provider_message_id, replay_count FROM mock_provider_deliveries")
    assert deliveries == [{"provider_message_id": original[0]["provider_message_id"], "replay_count": 1}]
    assert row["provider_message_id"] == original[0]["provider_message_id"]


def test_consumer_dying_after_provider_acceptance_is_redelivered_without_a_second_delivery(
    invoke, db, queues, configure, retry_consumer, monkeypatch
):
    from messaging.services import delivery

    configure(MOCK_SMS_FAULTS="timeout", RETRY_BASE_SECONDS=0, RETRY_MAX_SECONDS=0)
    message = response_json(send(invoke))
    assert message["status"] == "retrying"  # the provider accepted, but we never heard back
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1
    make_due(db, message["id"])
    with monkeypatch.context() as patch:
        patch.setattr(delivery, "_record_success", crash)
        assert retry_consumer([retry_record(message["id"])])["batchItemFailures"] == [{"itemIdentifier": "test-0"}]
    make_due(db, message["id"])
    assert retry_consumer([retry_record(message["id"])])["batchItemFailures"] == []
    assert db.scalar("SELECT status FROM messages") == "sent"
    assert db.rows("SELECT replay_count FROM mock_provider_deliveries") == [{"replay_count": 2}]


def test_chaos_every_message_ends_sent_or_failed_and_each_sent_one_is_delivered_once(
    concurrent_invoke, db, queues, configure, drain
):
    configure(
        MOCK_SMS_FAULTS="429=0.3,500=0.1",
        MOCK_EMAIL_FAULTS="429=0.3,500=0.1",
        MOCK_PROVIDER_SEED=20261124,
        MOCK_RETRY_AFTER_SECONDS=0,
        MAX_SEND_ATTEMPTS=6,
        RETRY_BASE_SECONDS=0,
        RETRY_MAX_SECONDS=0,
    )
    names = ["send_message-sms", "send_message-mms", "send_message-email"]

    def one(index):
        name = names[index % 3]
        recipient = {"to": f"+1415555{index:04d}"} if name != "send_message-email" else {"to": f"c{index}@example.com"}
        return send(concurrent_invoke, name, **recipient)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(one, range(210)))
    assert {response["statusCode"] for response in responses} == {202}
    assert db.scalar("SELECT count(*) FROM messages WHERE status = 'retrying'") > 30
    drain(max_rounds=2000)

    statuses = {
        row["status"]: row["n"] for row in db.rows("SELECT status, count(*) AS n FROM messages GROUP BY status")
    }
    assert set(statuses) <= {"sent", "failed"}
    assert sum(statuses.values()) == 210
    unmatched = db.scalar(
        """SELECT count(*) FROM messages m
           WHERE m.status = 'sent' AND (SELECT count(*) FROM mock_provider_deliveries d
                                        WHERE d.idempotency_token = m.id::text
                                          AND d.provider_message_id = m.provider_message_id) <> 1"""
    )
    assert unmatched == 0
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == statuses.get("sent", 0)
    assert len(queues.receive_all(queues.dlq_url)) == statuses.get("failed", 0)


@pytest.mark.parametrize(
    ("name", "changes", "field"),
    [
        ("send_message-sms", {"from": "12345"}, "from"),
        ("send_message-sms", {"type": "sms", "attachments": ["https://example.com/a.png"]}, "attachments"),
        ("send_message-mms", {"attachments": ["file:///etc/passwd"]}, "attachments.0"),
        ("send_message-sms", {"priority": "high"}, "priority"),
        ("send_message-sms", {"body": "x" * 1601}, "body"),
        ("send_message-email", {"to": "[a](mailto:not an email)"}, "to"),
        ("send_message-email", {"body": "", "attachments": []}, "body"),
    ],
)
def test_invalid_sends_get_422_and_write_nothing(invoke, db, queues, name, changes, field):
    response = send(invoke, name, **changes)
    assert response["statusCode"] == 422, response["body"]
    assert response_json(response)["error"]["field"] == field
    assert db.counts() == {"messages": 0, "conversations": 0, "mock_provider_deliveries": 0}


def test_idempotency_key_replays_the_first_response(invoke, db, queues):
    first = send(invoke, headers={"Idempotency-Key": "order-42"})
    again = send(invoke, headers={"Idempotency-Key": "order-42"})
    assert first["statusCode"] == again["statusCode"] == 202
    assert response_json(again) == response_json(first)
    assert again["headers"]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first["headers"]
    assert db.scalar("SELECT count(*) FROM messages") == 1
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1


def test_idempotency_key_with_another_body_is_422(invoke, db, queues):
    send(invoke, headers={"Idempotency-Key": "order-43"})
    other = send(invoke, headers={"Idempotency-Key": "order-43"}, body="something else")
    assert other["statusCode"] == 422
    assert response_json(other)["error"]["field"] == "Idempotency-Key"
    assert db.scalar("SELECT count(*) FROM messages") == 1


def test_the_same_key_on_another_route_is_independent(invoke, db, queues):
    send(invoke, headers={"Idempotency-Key": "k"})
    send(invoke, "send_message-email", headers={"Idempotency-Key": "k"})
    assert db.scalar("SELECT count(*) FROM messages") == 2


def test_expired_idempotency_key_starts_afresh(invoke, db, queues):
    send(invoke, headers={"Idempotency-Key": "old"})
    db.scalar("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' RETURNING 1")
    again = send(invoke, headers={"Idempotency-Key": "old"})
    assert "Idempotent-Replayed" not in again["headers"]
    assert db.scalar("SELECT count(*) FROM messages") == 2
    assert db.scalar("SELECT count(*) FROM idempotency_keys") == 1


def test_concurrent_sends_with_one_idempotency_key_make_one_message(concurrent_invoke, db, queues):
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: send(concurrent_invoke, headers={"Idempotency-Key": "burst"}), range(50)))
    statuses = sorted({response["statusCode"] for response in responses})
    assert set(statuses) <= {202, 409}
    assert 202 in statuses
    for response in responses:
        if response["statusCode"] == 409:
            assert response["headers"]["Retry-After"] == "1"
            assert response_json(response)["error"]["code"] == "request_in_flight"
    assert db.scalar("SELECT count(*) FROM messages") == 1
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1
    ids = {response_json(response)["id"] for response in responses if response["statusCode"] == 202}
    assert len(ids) == 1


@pytest.mark.parametrize("key", ["x" * 256, "has space", ""])
def test_malformed_idempotency_keys_are_rejected(invoke, db, queues, key):
    response = send(invoke, headers={"Idempotency-Key": key})
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["field"] == "Idempotency-Key"
    assert db.scalar("SELECT count(*) FROM messages") == 0


def test_database_down_before_storing_is_503_and_nothing_is_sent(invoke, db, queues, configure, database_url):

    configure(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none", DATABASE_TIMEOUT_SECONDS=1)
    try:
        response = send(invoke)
    finally:
        configure(DATABASE_URL=database_url)
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"]
    assert response_json(response)["error"]["code"] == "service_unavailable"
    assert db.counts() == {"messages": 0, "conversations": 0, "mock_provider_deliveries": 0}


def test_database_failing_while_recording_a_throttled_attempt_loses_nothing(
    invoke, db, queues, configure, drain, monkeypatch
):
    from messaging.services import delivery

    configure(MOCK_SMS_FAULTS="429", MOCK_RETRY_AFTER_SECONDS=0)
    with monkeypatch.context() as patch:
        patch.setattr(delivery, "_record_failure", crash)
        response = send(invoke)
    assert response["statusCode"] == 202
    assert response_json(response)["status"] == "queued"
    configure(SWEEP_GRACE_SECONDS=0)
    make_due(db, response_json(response)["id"])
    assert invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))["requeued"] == 1
    drain()
    assert db.scalar("SELECT status FROM messages") == "sent"
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1


def test_consumer_with_the_database_down_keeps_the_record(invoke, db, queues, configure, retry_consumer, database_url):

    configure(MOCK_SMS_FAULTS="500", RETRY_BASE_SECONDS=0, RETRY_MAX_SECONDS=0)
    message = response_json(send(invoke))
    configure(DATABASE_URL="postgresql://postgres@127.0.0.1:1/unreachable", DATABASE_TIMEOUT_SECONDS=1)
    try:
        result = retry_consumer([retry_record(message["id"])])
    finally:
        configure(DATABASE_URL=database_url)
    assert result["batchItemFailures"] == [{"itemIdentifier": "test-0"}]
    assert db.scalar("SELECT status FROM messages") == "retrying"
    make_due(db, message["id"])
    assert retry_consumer([retry_record(message["id"])])["batchItemFailures"] == []
    assert db.scalar("SELECT status FROM messages") == "sent"


def _dead_lettered(queues):
    return [
        (json.loads(entry["Body"]), entry["MessageAttributes"]["failure_reason"]["StringValue"])
        for entry in queues.receive_all(queues.dlq_url)
    ]


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"MOCK_SMS_FAULTS": "400"}, "400"),
        ({"MOCK_SMS_FAULTS": "500", "MAX_SEND_ATTEMPTS": 1}, "500"),
        ({"MOCK_SMS_FAULTS": "429", "MAX_SEND_ATTEMPTS": 1}, "429"),
    ],
)
def test_a_send_failing_for_good_on_its_first_attempt_is_dead_lettered_like_a_retry(
    invoke, db, queues, configure, settings, reason
):
    configure(**settings)
    message = response_json(send(invoke))
    assert message["status"] == "failed"
    dead = _dead_lettered(queues)
    assert dead == [({"message_id": message["id"]}, message["last_error"])]
    assert reason in dead[0][1]
    assert queues.depth(queues.retry_url) == 0


def test_the_first_and_a_retried_terminal_failure_reach_the_dlq_in_the_same_shape(invoke, db, queues, configure, drain):
    configure(MOCK_SMS_FAULTS="400", MAX_SEND_ATTEMPTS=2, RETRY_BASE_SECONDS=0, RETRY_MAX_SECONDS=0)
    at_once = response_json(send(invoke))
    configure(MOCK_SMS_FAULTS="500=1")
    retried = response_json(send(invoke, to="+14155550199"))
    assert retried["status"] == "retrying"
    drain()
    failed = {row["id"]: row["last_error"] for row in db.rows("SELECT id, last_error FROM messages")}
    assert sorted(_dead_lettered(queues), key=lambda entry: entry[0]["message_id"]) == [
        ({"message_id": at_once["id"]}, failed[at_once["id"]]),
        ({"message_id": retried["id"]}, failed[retried["id"]]),
    ]


def test_a_failed_send_survives_an_unavailable_dlq(invoke, db, queues, configure):
    configure(MOCK_SMS_FAULTS="400", SEND_RETRY_DLQ_URL="https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    response = send(invoke)
    assert response["statusCode"] == 202
    assert response_json(response)["status"] == "failed"
    assert db.scalar("SELECT status FROM messages") == "failed"


@pytest.mark.parametrize("stage", ["_record_success", "_record_failure"])
def test_a_defect_in_the_first_attempt_is_not_disguised_as_queued(invoke, db, queues, configure, monkeypatch, stage):
    """Only an unavailable database (or network) after the commit is survived with a 202 `queued`."""
    from messaging.services import delivery

    def defect(*_arguments, **_keywords):
        raise KeyError("a bug")

    configure(MOCK_SMS_FAULTS="500" if stage == "_record_failure" else "")
    monkeypatch.setattr(delivery, stage, defect)
    with pytest.raises(KeyError):
        send(invoke)
    assert db.scalar("SELECT status FROM messages") == "queued"


def test_the_database_unavailable_after_the_commit_still_answers_queued(invoke, db, queues, monkeypatch):
    from messaging.errors import ServiceUnavailable
    from messaging.services import delivery

    def unavailable(*_arguments, **_keywords):
        raise ServiceUnavailable("the database is unavailable; retry later")

    monkeypatch.setattr(delivery, "_record_success", unavailable)
    response = send(invoke)
    assert response["statusCode"] == 202
    assert response_json(response)["status"] == "queued"


def _move(queues, source_url, destination_url):
    """What `aws sqs start-message-move-task --destination-arn` does: every record, body and attributes."""
    for entry in queues.receive_all(source_url):
        queues.client.send_message(
            QueueUrl=destination_url,
            MessageBody=entry["Body"],
            MessageAttributes=entry.get("MessageAttributes", {}),
        )
        queues.client.delete_message(QueueUrl=source_url, ReceiptHandle=entry["ReceiptHandle"])


def test_redriving_send_retry_dlq_sends_what_is_pending_and_leaves_failed_messages_failed(
    invoke, db, queues, configure, drain
):
    """README "Dead-letter queue": the DLQ holds copies of failed sends (put there by the functions) and
    records SQS gave up on (their messages still pending). Redriven to SendRetryQueue, the first are read
    and dropped (the message stays failed: no attempt, no delivery), the second are attempted."""
    configure(MOCK_SMS_FAULTS="400")
    failed = response_json(send(invoke))
    assert failed["status"] == "failed"
    configure(MOCK_SMS_FAULTS="500", MAX_SEND_ATTEMPTS=3, RETRY_BASE_SECONDS=0, RETRY_MAX_SECONDS=0)
    pending = response_json(send(invoke, to="+14155550199"))
    assert pending["status"] == "retrying"
    _move(queues, queues.retry_url, queues.dlq_url)  # as the redrive policy does after maxReceiveCount
    assert queues.depth(queues.dlq_url) == 2

    configure(MOCK_SMS_FAULTS="")  # the cause is fixed
    make_due(db, pending["id"])
    _move(queues, queues.dlq_url, queues.retry_url)  # the redrive
    drain()
    rows = {row["id"]: row for row in db.rows("SELECT id, status, attempts FROM messages")}
    assert (rows[failed["id"]]["status"], rows[failed["id"]]["attempts"]) == ("failed", 1)
    assert (rows[pending["id"]]["status"], rows[pending["id"]]["attempts"]) == ("sent", 2)
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1
    assert queues.depth(queues.retry_url) == 0
    assert queues.depth(queues.dlq_url) == 0


def test_a_function_whose_settings_lack_the_retry_queue_fails_instead_of_answering_retrying(db, queues, configure):
    """A configuration defect on the enqueue path (a function's model without RetryQueueSettings) is not taken
    for SQS being down: it propagates, where an outage is survived (test_sqs_down_at_enqueue_time_loses_nothing)."""
    from messaging import config
    from messaging.config import ConfigurationError
    from messaging.models import SendSms
    from messaging.services import outbound

    class WithoutRetryQueue(
        config.ApiSettings,
        config.RetryPolicySettings,
        config.IdempotencySettings,
        config.DeadLetterQueueSettings,
        config.ProviderMockSettings,
        config.SegmentSettings,
        config.ThrottleSettings,
    ):
        """SendMessageFunction's settings without RetryQueueSettings."""

    configure(MOCK_SMS_FAULTS="500")
    send_sms = config.FunctionSettings(WithoutRetryQueue).bind(lambda payload, _context: outbound.send_sms(payload))
    with pytest.raises(ConfigurationError, match="does not include RetryQueueSettings"):
        send_sms(SendSms.model_validate(sample_body("send_message-sms")), None)
    assert db.scalar("SELECT status FROM messages") == "retrying"
    assert queues.depth(queues.retry_url) == 0


def test_a_first_attempt_whose_provider_cannot_be_asked_is_left_to_the_retry_path(
    invoke, db, queues, configure, monkeypatch, drain
):
    """A send failing for good on its first attempt is looked up before being declared failed; a lookup the
    provider cannot answer leaves it in doubt: 202 `queued` (never a 500), and the retry path finishes it."""
    from messaging.providers import ProviderTimeout
    from messaging.providers.mock import MockProvider

    real_lookup = MockProvider.lookup
    provider_down = [True]

    def lookup(provider, token):
        if provider_down:
            raise ProviderTimeout("the lookup timed out")
        return real_lookup(provider, token)

    monkeypatch.setattr(MockProvider, "lookup", lookup)
    configure(MOCK_SMS_FAULTS="400")
    response = send(invoke)
    assert response["statusCode"] == 202, response
    message = response_json(response)
    assert message["status"] == "queued"
    assert db.scalar("SELECT status FROM messages") == "queued"
    assert queues.depth(queues.dlq_url) == 0  # not declared failed

    provider_down.clear()
    configure(MOCK_SMS_FAULTS=None, SWEEP_GRACE_SECONDS=0)
    make_due(db, message["id"])
    assert invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))["requeued"] == 1
    assert drain() == 1
    assert db.scalar("SELECT status FROM messages") == "sent"
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1
