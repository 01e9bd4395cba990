"""A connection lost after the database committed but before it answered: the client gets a 503, yet the
write happened. Webhooks are safe (a provider's retry is deduplicated by its message id); a send is safe
when retried with the same Idempotency-Key: the retry finds the stored message and never makes a second."""

import pytest

from tests.conftest import response_json, sample_event
from tests.integration.test_outbound import send


@pytest.fixture
def lose_the_first_commit_reply(monkeypatch):
    """The first COMMIT reaches the server and commits; then the connection breaks before its reply."""
    import pg8000.exceptions

    from messaging.db.engine import get_engine

    dialect = get_engine().dialect
    real_commit = dialect.do_commit
    lost: list[bool] = []

    def commit_then_break(dbapi_connection) -> None:
        real_commit(dbapi_connection)
        if not lost:
            lost.append(True)
            dbapi_connection.close()
            raise pg8000.exceptions.InterfaceError("network error")

    monkeypatch.setattr(dialect, "do_commit", commit_then_break)
    return lost


def test_a_send_whose_commit_reply_is_lost_is_found_again_by_its_idempotency_key(
    invoke, db, queues, lose_the_first_commit_reply
):
    first = send(invoke, headers={"Idempotency-Key": "order-lost-reply"})
    assert lose_the_first_commit_reply and first["statusCode"] == 503, first
    assert db.scalar("SELECT count(*) FROM messages") == 1  # "unavailable", yet stored

    # Within the send lease the first request might still be running: the retry is told to wait.
    waiting = send(invoke, headers={"Idempotency-Key": "order-lost-reply"})
    assert waiting["statusCode"] == 409, waiting
    assert int(waiting["headers"]["Retry-After"]) > 0

    # Once the lease has passed, the retry answers with the stored message, not a new one.
    db.scalar("UPDATE idempotency_keys SET created_at = created_at - interval '1 day' RETURNING 1")
    retried = send(invoke, headers={"Idempotency-Key": "order-lost-reply"})
    assert retried["statusCode"] == 202, retried
    assert response_json(retried)["id"] == db.scalar("SELECT id FROM messages")
    assert db.scalar("SELECT count(*) FROM messages") == 1


@pytest.mark.parametrize(
    ("function", "event_name"),
    [("InboundSmsFunction", "inbound_sms-sms"), ("InboundEmailFunction", "inbound_email-email")],
)
def test_a_webhook_whose_commit_reply_is_lost_is_stored_once_when_the_provider_retries(
    invoke, db, lose_the_first_commit_reply, function, event_name
):
    first = invoke(function, sample_event(event_name))
    assert lose_the_first_commit_reply and first["statusCode"] == 503, first
    assert first["headers"]["Retry-After"]
    assert db.scalar("SELECT count(*) FROM messages") == 1  # "unavailable", yet stored

    # The provider retries the same webhook (the same provider message id): the stored message answers.
    retried = invoke(function, sample_event(event_name))
    assert retried["statusCode"] == 200, retried
    answer = response_json(retried)
    assert answer["duplicate"] is True
    assert answer["id"] == db.scalar("SELECT id FROM messages")
    assert answer["conversation_id"] == db.scalar("SELECT id FROM conversations")
    assert db.counts() == {"messages": 1, "conversations": 1, "mock_provider_deliveries": 0}
    assert db.scalar("SELECT count(*) FROM message_events WHERE type = 'message.received'") == 1
