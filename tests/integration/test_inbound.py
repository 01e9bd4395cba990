import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from tests.conftest import response_json, sample_body, sample_event


def webhook(invoke, name, **body_changes):
    body = {**sample_body(name), **body_changes}
    function = "InboundSmsFunction" if name.startswith("inbound_sms") else "InboundEmailFunction"
    return invoke(function, sample_event(name, payload=body))


def test_inbound_sms_is_stored_in_a_new_conversation(invoke, db):
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))
    assert response["statusCode"] == 200
    assert response_json(response) == {"id": 1, "conversation_id": 1, "duplicate": False}
    message = db.rows("SELECT * FROM messages")[0]
    assert message["direction"] == "inbound"
    assert message["status"] == "received"
    assert message["type"] == "sms"
    assert message["from_address"] == "+18045551234"
    assert message["provider"] == "mock-sms"
    assert message["provider_message_id"] == "message-1"
    conversation = db.rows("SELECT * FROM conversations")[0]
    assert (conversation["participant_a"], conversation["participant_b"]) == ("+12016661234", "+18045551234")
    assert conversation["message_count"] == 1
    assert conversation["last_message_preview"] == "text message"


def test_an_html_emails_preview_is_the_text_a_reader_sees(invoke, db):
    body = (
        "<html><head><style>p { color: red }</style><script>steal()</script></head>"
        "<body><p>Invoice&nbsp;7781 &amp; receipt</p><p>attached</p></body></html>"
    )
    assert webhook(invoke, "inbound_email-email", body=body)["statusCode"] == 200
    assert db.rows("SELECT body FROM messages")[0]["body"] == body  # the message keeps its HTML
    assert db.rows("SELECT last_message_preview FROM conversations")[0]["last_message_preview"] == (
        "Invoice 7781 & receipt attached"
    )


def test_inbound_mms_keeps_its_attachments_and_shares_the_sms_conversation(invoke, db):
    sms = response_json(invoke("InboundSmsFunction", sample_event("inbound_sms-sms")))
    mms = response_json(invoke("InboundSmsFunction", sample_event("inbound_sms-mms")))
    assert mms["conversation_id"] == sms["conversation_id"]
    row = db.rows("SELECT type, attachments FROM messages WHERE id = :id", id=mms["id"])[0]
    assert row["type"] == "mms"
    assert row["attachments"] == ["https://example.com/image.jpg"]
    assert db.scalar("SELECT message_count FROM conversations") == 2


def test_inbound_email_with_markdown_addresses_stores_bare_addresses(invoke, db):
    response = invoke("InboundEmailFunction", sample_event("inbound_email-email"))
    assert response["statusCode"] == 200
    row = db.rows("SELECT from_address, to_address, body, provider FROM messages")[0]
    assert row["from_address"] == "contact@gmail.com"
    assert row["to_address"] == "user@usehatchapp.com"
    assert row["body"].startswith("<html>")
    assert row["provider"] == "mock-email"


def test_both_directions_land_in_one_conversation(invoke, db):
    first = response_json(webhook(invoke, "inbound_sms-sms"))
    reply = response_json(
        webhook(
            invoke, "inbound_sms-sms", **{"from": "+12016661234", "to": "+1 804 555 1234", "messaging_provider_id": "r"}
        )
    )
    assert reply["conversation_id"] == first["conversation_id"]
    assert db.scalar("SELECT count(*) FROM conversations") == 1


def test_email_case_and_markdown_variants_group_together(invoke, db):
    first = response_json(webhook(invoke, "inbound_email-email"))
    second = response_json(
        webhook(
            invoke,
            "inbound_email-email",
            **{"from": "USER@usehatchapp.com", "to": "Contact@Gmail.com", "xillio_id": "m-2"},
        )
    )
    assert second["conversation_id"] == first["conversation_id"]


def test_a_different_pair_gets_its_own_conversation(invoke, db):
    first = response_json(webhook(invoke, "inbound_sms-sms"))
    other = response_json(webhook(invoke, "inbound_sms-sms", to="+14155550100", messaging_provider_id="other"))
    assert other["conversation_id"] != first["conversation_id"]


def test_duplicate_webhook_returns_the_original_ids_and_writes_nothing(invoke, db):
    first = invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))
    before = db.counts()
    summary = db.rows("SELECT * FROM conversations")
    again = invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))
    assert again["statusCode"] == 200
    assert response_json(again) == {**response_json(first), "duplicate": True}
    assert db.counts() == before
    assert db.rows("SELECT * FROM conversations") == summary


def test_the_same_provider_id_on_another_channel_is_a_different_message(invoke, db):
    webhook(invoke, "inbound_sms-sms", messaging_provider_id="shared-id")
    webhook(invoke, "inbound_email-email", xillio_id="shared-id")
    assert db.scalar("SELECT count(*) FROM messages") == 2


def test_concurrent_first_messages_of_a_new_pair_create_one_conversation(concurrent_invoke, db):
    def send(index):
        return webhook(concurrent_invoke, "inbound_sms-sms", messaging_provider_id=f"burst-{index}")

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(send, range(50)))
    assert {response["statusCode"] for response in responses} == {200}
    assert len({response_json(response)["conversation_id"] for response in responses}) == 1
    assert db.scalar("SELECT count(*) FROM conversations") == 1
    assert db.scalar("SELECT message_count FROM conversations") == 50
    assert db.scalar("SELECT count(*) FROM messages") == 50


def test_concurrent_identical_webhooks_store_one_message(concurrent_invoke, db):
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: webhook(concurrent_invoke, "inbound_sms-sms"), range(50)))
    assert {response["statusCode"] for response in responses} == {200}
    assert len({response_json(response)["id"] for response in responses}) == 1
    assert sum(not response_json(response)["duplicate"] for response in responses) == 1
    assert db.counts()["messages"] == 1
    assert db.scalar("SELECT message_count FROM conversations") == 1


def test_summary_tracks_the_latest_message_even_when_webhooks_arrive_out_of_order(invoke, db):
    webhook(invoke, "inbound_sms-sms", messaging_provider_id="late", body="newest", timestamp="2024-11-02T10:00:00Z")
    webhook(invoke, "inbound_sms-sms", messaging_provider_id="early", body="older", timestamp="2024-11-01T10:00:00Z")
    conversation = db.rows("SELECT * FROM conversations")[0]
    assert conversation["last_message_preview"] == "newest"
    assert conversation["message_count"] == 2
    assert conversation["last_message_at"].isoformat().startswith("2024-11-02T10:00:00")


BAD_SMS_BODIES = [
    ({"from": "not-a-phone"}, "from"),
    ({"to": "+1555"}, "to"),
    ({"type": "fax"}, "type"),
    ({"messaging_provider_id": ""}, "messaging_provider_id"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp"),
    ({"body": 42}, "body"),
    ({"attachments": ["ftp://example.com/x.png"]}, "attachments.0"),
    ({"attachments": ["javascript:alert(1)"]}, "attachments.0"),
    ({"attachments": "https://example.com/x.png"}, "attachments"),
    ({"type": "sms", "attachments": ["https://example.com/x.png"]}, "attachments"),
    ({"to": "+18045551234"}, "to"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_SMS_BODIES)
def test_invalid_sms_webhooks_get_422_naming_the_field_and_write_nothing(invoke, db, changes, field):
    response = webhook(invoke, "inbound_sms-sms", **changes)
    assert response["statusCode"] == 422, response["body"]
    error = response_json(response)["error"]
    assert error["code"] == "invalid_input"
    assert error["field"] == field
    assert error["message"]
    assert db.counts() == {"messages": 0, "conversations": 0, "mock_provider_deliveries": 0}


@pytest.mark.parametrize("missing", ["from", "to", "type", "messaging_provider_id", "timestamp"])
def test_missing_fields_are_named(invoke, db, missing):
    body = sample_body("inbound_sms-sms")
    del body[missing]
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", payload=body))
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["field"] == missing
    assert db.counts()["messages"] == 0


def test_invalid_email_address_is_rejected(invoke, db):
    response = webhook(invoke, "inbound_email-email", **{"from": "[nobody](mailto:not-an-address)"})
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["field"] == "from"
    assert db.counts()["messages"] == 0


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"body": "{not json"}, 400, "malformed_request"),
        ({"body": "[1, 2]"}, 400, "malformed_request"),
        ({"body": ""}, 400, "malformed_request"),
        ({"headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"headers": {}}, 415, "unsupported_media_type"),
        ({"body": json.dumps({"body": "x" * 300_000})}, 413, "payload_too_large"),
    ],
)
def test_malformed_requests_get_clear_4xx_and_write_nothing(invoke, db, changes, status, code):
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", **changes))
    assert response["statusCode"] == status, response["body"]
    assert response_json(response)["error"]["code"] == code
    assert db.counts()["messages"] == 0


def test_a_twin_committed_while_the_webhook_waited_leaves_the_conversation_as_the_twin_left_it(
    invoke, db, admin_engine
):
    """The store is its own transaction, so nobody can roll it back afterwards: when a twin with the same
    provider id commits after the store's snapshot (the store has already updated the conversation and its
    message insert then meets the twin), the statement must abort itself and answer with the twin."""
    first = response_json(webhook(invoke, "inbound_sms-sms", messaging_provider_id="first"))
    conversation_before = db.rows("SELECT * FROM conversations")[0]
    with admin_engine.connect() as holder:
        holder.begin()
        # A twin of the coming webhook, stored but not committed, holding the conversation's row lock.
        holder.execute(text("SELECT 1 FROM conversations WHERE id = :id FOR UPDATE"), {"id": first["conversation_id"]})
        holder.execute(
            text(
                "INSERT INTO messages (conversation_id, direction, type, from_address, to_address, body,"
                " message_timestamp, status, provider, provider_message_id, search_vector)"
                " SELECT conversation_id, direction, type, from_address, to_address, 'twin', message_timestamp,"
                " status, provider, 'twin', search_vector FROM messages WHERE id = :id RETURNING id"
            ),
            {"id": first["id"]},
        )
        twin_id = holder.execute(text("SELECT max(id) FROM messages")).scalar()
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(webhook, invoke, "inbound_sms-sms", messaging_provider_id="twin")
            deadline = time.monotonic() + 10
            while not db.scalar(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE 'WITH new_message%'"
            ):
                assert time.monotonic() < deadline, "the webhook never waited for the twin's lock"
                time.sleep(0.01)
            holder.commit()
            response = pending.result(timeout=10)
    assert response["statusCode"] == 200
    assert response_json(response) == {"id": twin_id, "conversation_id": first["conversation_id"], "duplicate": True}
    assert db.rows("SELECT * FROM conversations")[0] == conversation_before
    assert db.scalar("SELECT count(*) FROM message_events WHERE message_id = :id", id=twin_id) == 0
