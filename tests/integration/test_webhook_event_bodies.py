"""Message event bodies from the real lifecycle: sends through SendMessageFunction (the mock providers, one
refusing), receipts applied by the status webhooks' handlers, events dispatched by EventDispatchFunction to a
real local receiver. Each body's `data` is the document GET /api/messages/{id} returns at that status."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import response_json, sample_event
from tests.integration.test_customer_webhooks import (  # noqa: F401 - receiver, webhooks_env: fixtures
    EventQueues,
    Receiver,
    receive_sms,
    receiver,
    register,
    verified,
    webhooks_env,
)
from tests.integration.test_lifecycle import deliver, send

SUBSCRIBED = ["message.sent", "message.delivered", "message.undelivered", "message.failed"]


def get_message(invoke, message_id: int) -> dict[str, Any]:
    """The API's own document: GET /api/messages/{id}."""
    event = sample_event("conversations-message")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/api/messages/{message_id}"
    event["pathParameters"] = {"message_id": str(message_id)}
    response = invoke("ConversationsFunction", event)
    assert response["statusCode"] == 200, response
    return response_json(response)


def take_receipts(queues, url: str) -> dict[str, dict[str, Any]]:
    """The receipts the mocks scheduled, by the provider message id they are about (the queue emptied)."""
    scheduled: dict[str, dict[str, Any]] = {}
    for message in queues.receive_all(url):
        queues.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        body = json.loads(message["Body"])
        receipt = body["receipt"]
        key = receipt[0]["xillio_id"] if isinstance(receipt, list) else receipt["messaging_provider_id"]
        scheduled[key] = body
    return scheduled


def arrived(at: Receiver, secret: str, seen: int) -> list[dict[str, Any]]:
    """The bodies delivered since the first `seen` requests, each verified with the standardwebhooks package."""
    return [verified(request, secret) for request in at.received[seen:]]


def test_each_message_event_carries_the_document_the_api_returns_at_that_status(
    invoke,
    webhooks_env: EventQueues,  # noqa: F811 - the fixture imported above
    receiver: Receiver,  # noqa: F811
    queues,
    configure,
):
    receipts_url = queues.client.get_queue_url(QueueName="ProviderReceiptQueue")["QueueUrl"]
    # The third SMS is refused by the provider (a 4xx is final): failed at once.
    configure(PROVIDER_RECEIPT_QUEUE_URL=receipts_url, MOCK_RECEIPT_DELAY_SECONDS=0, MOCK_SMS_FAULTS="ok,ok,400")
    endpoint = register(invoke, receiver.url(), SUBSCRIBED)
    secret = endpoint["secret"]

    # 1. Sends: sent, sent, failed, and an email sent.
    delivered_sms = send(invoke, to="+18045550001")
    undelivered_sms = send(invoke, to="+18045550002")
    failed_sms = send(invoke, to="+18045550003")
    email = send(invoke, "send_message-email", to="someone@example.com")
    assert [m["status"] for m in (delivered_sms, undelivered_sms, failed_sms, email)] == [
        "sent",
        "sent",
        "failed",
        "sent",
    ]
    webhooks_env.drain()
    expected = {
        ("message.sent", delivered_sms["id"]): get_message(invoke, delivered_sms["id"]),
        ("message.sent", undelivered_sms["id"]): get_message(invoke, undelivered_sms["id"]),
        ("message.failed", failed_sms["id"]): get_message(invoke, failed_sms["id"]),
        ("message.sent", email["id"]): get_message(invoke, email["id"]),
    }
    bodies = arrived(receiver, secret, 0)
    assert {(body["type"], body["data"]["id"]): body["data"] for body in bodies} == expected
    assert len(bodies) == len(expected)
    seen = len(receiver.received)

    # 2. Receipts through the status webhooks' handlers: delivered (SMS and email) and undelivered.
    scheduled = take_receipts(queues, receipts_url)
    assert sorted(scheduled) == sorted(m["provider_message_id"] for m in (delivered_sms, undelivered_sms, email))
    undelivered = scheduled[undelivered_sms["provider_message_id"]]
    undelivered["receipt"] = {**undelivered["receipt"], "status": "undelivered", "error_code": "30006"}
    for body in scheduled.values():
        response = deliver(invoke, body)
        assert response["statusCode"] == 200, response
    webhooks_env.drain()
    documents = {m["id"]: get_message(invoke, m["id"]) for m in (delivered_sms, undelivered_sms, email)}
    assert [documents[m["id"]]["status"] for m in (delivered_sms, undelivered_sms, email)] == [
        "delivered",
        "undelivered",
        "delivered",
    ]
    assert documents[undelivered_sms["id"]]["status_detail"] == "30006"
    bodies = arrived(receiver, secret, seen)
    assert {(body["type"], body["data"]["id"]): body["data"] for body in bodies} == {
        ("message.delivered", delivered_sms["id"]): documents[delivered_sms["id"]],
        ("message.undelivered", undelivered_sms["id"]): documents[undelivered_sms["id"]],
        ("message.delivered", email["id"]): documents[email["id"]],
    }
    assert len(bodies) == 3
    seen = len(receiver.received)

    # 3. An inbound message (message.received, conversation.created): not subscribed, never pushed.
    receive_sms(invoke, "SM-inbound", sender="+18045559999")
    webhooks_env.drain()
    assert receiver.received[seen:] == []
    assert all(verified(request, secret)["type"] in SUBSCRIBED for request in receiver.received)
