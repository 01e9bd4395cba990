"""The original client flow, over HTTP against the local runner: every call 2xx, conversations grouped."""

import pytest

from tests.conftest import sample_body
from tests.e2e.client import call

pytestmark = pytest.mark.e2e

FLOW = [
    ("POST", "/api/messages/sms", "send_message-sms", 202),
    ("POST", "/api/messages/sms", "send_message-mms", 202),
    ("POST", "/api/messages/email", "send_message-email", 202),
    ("POST", "/api/webhooks/sms", "inbound_sms-sms", 200),
    ("POST", "/api/webhooks/sms", "inbound_sms-mms", 200),
    ("POST", "/api/webhooks/email", "inbound_email-email", 200),
]


def test_the_original_client_flow(runner_url, runner_db):
    stored = []
    for method, path, event, status in FLOW:
        response = call(runner_url, method, path, sample_body(event))
        assert response.status == status, (path, response.text)
        stored.append(response.json())

    conversations = call(runner_url, "GET", "/api/conversations")
    assert conversations.status == 200
    items = conversations.json()["items"]
    assert len(items) == 2
    assert conversations.json()["next_cursor"] is None

    messages = call(runner_url, "GET", "/api/conversations/1/messages")
    assert messages.status == 200
    page = messages.json()["items"]
    assert [(message["direction"], message["type"]) for message in page] == [
        ("outbound", "sms"),
        ("outbound", "mms"),
        ("inbound", "sms"),
        ("inbound", "mms"),
    ]
    assert {message["conversation_id"] for message in page} == {1}
    # `delivered` once the mock provider's receipt (a second after the send) has come back.
    assert {message["status"] for message in page if message["direction"] == "outbound"} <= {"sent", "delivered"}

    sms_conversation = {stored[0]["conversation_id"], stored[1]["conversation_id"]}
    sms_conversation |= {stored[3]["conversation_id"], stored[4]["conversation_id"]}
    assert sms_conversation == {1}
    assert stored[2]["conversation_id"] == stored[5]["conversation_id"] != 1
    email_thread = call(runner_url, "GET", f"/api/conversations/{stored[2]['conversation_id']}/messages").json()
    assert {message["type"] for message in email_thread["items"]} == {"email"}
    assert len(email_thread["items"]) == 2
    assert runner_db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 3
