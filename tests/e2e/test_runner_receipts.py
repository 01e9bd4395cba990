"""Delivery receipts through the local runner, with no setting: a send goes queued -> sent -> delivered."""

import time

import pytest

from tests.conftest import sample_body
from tests.e2e.client import call

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("path", "event"), [("/api/messages/sms", "send_message-sms"), ("/api/messages/email", "send_message-email")]
)
def test_a_send_is_delivered_by_the_mock_providers_receipt(runner_url, runner_db, path, event):
    """No setting (receipts `delivered=1`, MOCK_RECEIPT_DELAY_SECONDS left at 1 s): the mock puts its receipt
    on ProviderReceiptQueue, the runner drives MockReceiptFunction, which POSTs it to the status webhook."""
    sent = call(runner_url, "POST", path, sample_body(event))
    assert sent.status == 202, sent.text
    message = sent.json()
    assert message["status"] == "sent"
    deadline = time.monotonic() + 60
    history: list[tuple[str, str | None, str, str]] = []
    while time.monotonic() < deadline:
        items = call(runner_url, "GET", f"/api/messages/{message['id']}/events").json()["items"]
        history = [(item["type"], item["previous_status"], item["status"], item["source"]) for item in items]
        if history[-1][2] == "delivered":
            break
        time.sleep(0.2)
    assert history == [
        ("message.queued", None, "queued", "api"),
        ("message.sent", "queued", "sent", "api"),
        ("message.delivered", "sent", "delivered", "receipt"),
    ]
    assert call(runner_url, "GET", f"/api/messages/{message['id']}").json()["status"] == "delivered"
