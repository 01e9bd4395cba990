"""The HTTP contract over the local runner: grouping, duplicates, pagination, errors, documentation."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import sample_body
from tests.e2e.client import call

pytestmark = pytest.mark.e2e


def post(runner_url, path, event, **changes):
    return call(runner_url, "POST", path, {**sample_body(event), **changes})


def test_inbound_sms_mms_and_email_are_stored_and_grouped(runner_url, runner_db):
    sms = post(runner_url, "/api/webhooks/sms", "inbound_sms-sms")
    mms = post(runner_url, "/api/webhooks/sms", "inbound_sms-mms")
    email = post(runner_url, "/api/webhooks/email", "inbound_email-email")
    assert (sms.status, mms.status, email.status) == (200, 200, 200)
    assert sms.json()["conversation_id"] == mms.json()["conversation_id"]
    assert email.json()["conversation_id"] != sms.json()["conversation_id"]
    stored = call(runner_url, "GET", f"/api/messages/{email.json()['id']}").json()
    assert (stored["from"], stored["to"]) == ("contact@gmail.com", "user@usehatchapp.com")
    assert stored["body"] == sample_body("inbound_email-email")["body"]
    conversation = call(runner_url, "GET", f"/api/conversations/{sms.json()['conversation_id']}").json()
    assert conversation["participants"] == ["+12016661234", "+18045551234"]
    assert conversation["message_count"] == 2


def test_both_directions_share_a_conversation(runner_url, runner_db):
    first = post(runner_url, "/api/webhooks/sms", "inbound_sms-sms").json()
    reply = post(
        runner_url,
        "/api/webhooks/sms",
        "inbound_sms-sms",
        **{"from": "+12016661234", "to": "+18045551234", "messaging_provider_id": "reply-1"},
    ).json()
    sent = post(runner_url, "/api/messages/sms", "send_message-sms").json()
    assert first["conversation_id"] == reply["conversation_id"] == sent["conversation_id"]


def test_duplicate_webhook_returns_the_same_ids_and_writes_nothing(runner_url, runner_db):
    first = post(runner_url, "/api/webhooks/sms", "inbound_sms-sms")
    counts = runner_db.counts()
    again = post(runner_url, "/api/webhooks/sms", "inbound_sms-sms")
    assert again.status == 200
    assert (again.json()["id"], again.json()["conversation_id"]) == (
        first.json()["id"],
        first.json()["conversation_id"],
    )
    assert again.json()["duplicate"] is True
    assert runner_db.counts() == counts


@pytest.mark.parametrize("path", ["/api/conversations/999", "/api/conversations/999/messages", "/api/messages/999"])
def test_unknown_ids_are_404(runner_url, runner_db, path):
    response = call(runner_url, "GET", path)
    assert response.status == 404
    assert response.json()["error"]["code"] == "not_found"


def test_pagination_walks_every_message_once_while_new_ones_arrive(runner_url, runner_db):
    for index in range(45):
        post(
            runner_url,
            "/api/webhooks/sms",
            "inbound_sms-sms",
            messaging_provider_id=f"m-{index}",
            timestamp=f"2024-11-01T14:{index:02d}:00Z",
        )
    existing = {f"m-{index}" for index in range(45)}
    stop = threading.Event()

    def keep_posting():
        index = 0
        while not stop.is_set() and index < 200:
            post(runner_url, "/api/webhooks/sms", "inbound_sms-sms", messaging_provider_id=f"new-{index}")
            index += 1

    writer = threading.Thread(target=keep_posting)
    writer.start()
    seen = []
    cursor = None
    try:
        while True:
            query = "limit=7" + (f"&cursor={cursor}" if cursor else "")
            page = call(runner_url, "GET", f"/api/conversations/1/messages?{query}")
            assert page.status == 200, page.text
            seen.extend(message["provider_message_id"] for message in page.json()["items"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        writer.join()
    assert len(seen) == len(set(seen)), "a message was returned twice"
    assert existing <= set(seen), "a message that existed before the walk was skipped"


def test_conversation_list_pages_most_recent_first(runner_url, runner_db):
    for index in range(5):
        post(
            runner_url,
            "/api/webhooks/sms",
            "inbound_sms-sms",
            to=f"+1415555{index:04d}",
            messaging_provider_id=f"c-{index}",
            timestamp=f"2024-11-0{index + 1}T10:00:00Z",
        )
    first = call(runner_url, "GET", "/api/conversations?limit=2").json()
    second = call(runner_url, "GET", f"/api/conversations?limit=2&cursor={first['next_cursor']}").json()
    third = call(runner_url, "GET", f"/api/conversations?limit=2&cursor={second['next_cursor']}").json()
    order = [item["last_message_at"] for page in (first, second, third) for item in page["items"]]
    assert order == sorted(order, reverse=True)
    assert len(order) == 5
    assert third["next_cursor"] is None


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (json.dumps(sample_body("inbound_sms-sms")).encode(), {"Content-Type": "text/plain"}, 415),
        (json.dumps({"body": "x" * 300_000}).encode(), {"Content-Type": "application/json"}, 413),
        (
            json.dumps({**sample_body("inbound_sms-sms"), "from": "12"}).encode(),
            {"Content-Type": "application/json"},
            422,
        ),
        (
            json.dumps({**sample_body("inbound_sms-sms"), "attachments": ["ftp://x/y"], "type": "mms"}).encode(),
            {"Content-Type": "application/json"},
            422,
        ),
    ],
)
def test_malformed_input_gets_a_clear_4xx_and_writes_nothing(runner_url, runner_db, body, headers, status):
    response = call(runner_url, "POST", "/api/webhooks/sms", body, headers)
    assert response.status == status, response.text
    assert response.json()["error"]["message"]
    assert sum(runner_db.counts().values()) == 0


def test_openapi_document_describes_every_route(runner_url, runner_db, application):
    document = call(runner_url, "GET", "/openapi.json").json()
    for route in application.routes:
        assert route.path in document["paths"], route.path
        assert route.method.lower() in document["paths"][route.path]
    assert "SendSms" in document["components"]["schemas"]
    swagger = call(runner_url, "GET", "/swagger")
    assert swagger.status == 200
    assert "swagger-ui" in swagger.text


def test_unknown_route_and_method_get_json_errors(runner_url, runner_db):
    missing = call(runner_url, "GET", "/api/nothing-here")
    assert missing.status == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = call(runner_url, "DELETE", "/api/conversations")
    assert wrong_method.status == 405


@pytest.mark.parametrize(
    ("path", "event", "changes", "headers"),
    [
        ("/api/webhooks/sms", "inbound_sms-sms", {}, {}),
        ("/api/webhooks/sms", "inbound_sms-sms", {"messaging_provider_id": None}, {}),
        ("/api/messages/sms", "send_message-sms", {}, {"Idempotency-Key": "burst-over-http"}),
    ],
    ids=["identical-webhooks", "first-messages-of-a-new-pair", "sends-with-one-idempotency-key"],
)
def test_fifty_concurrent_requests_over_http(runner_url, runner_db, path, event, changes, headers):
    def one(index):
        body = {**sample_body(event), **changes}
        if changes.get("messaging_provider_id", "") is None:
            body["messaging_provider_id"] = f"burst-{index}"
        return call(runner_url, "POST", path, body, headers)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(one, range(50)))
    assert all(response.status in (200, 202, 409) for response in responses), [r.text for r in responses]
    assert runner_db.scalar("SELECT count(*) FROM conversations") == 1
    expected_messages = 50 if changes else 1
    assert runner_db.scalar("SELECT count(*) FROM messages") == expected_messages
    assert runner_db.scalar("SELECT message_count FROM conversations") == expected_messages
