"""Customer webhooks in-process: the endpoints API, the outbox published after commit, signed deliveries to a
real local HTTP receiver, retries under the same webhook-id, giving up, disabling, the sweep's relay."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from tests.conftest import response_json, sample_event
from tests.integration.conftest import sqs_event
from tests.integration.test_compliance import NUMBER, SUBSCRIBER, text_in
from tests.integration.test_compliance import api as suppressions_api


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1. `behaviour(request, nth)` answers a status code, "hang" (never
    answer), "drip" (trickle bytes forever) or ("redirect", location); `nth` counts requests per webhook-id."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    behaviour: Callable[[Received, int], Any] = lambda _request, _nth: 204
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def at(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("content-length", "0"))
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            owner = state["receiver"]
            with lock:
                owner.received.append(request)
                nth = sum(1 for r in owner.received if r.headers.get("webhook-id") == request.headers.get("webhook-id"))
            answer = owner.behaviour(request, nth)
            if answer == "hang":
                owner.release.wait(30)
                return
            if answer == "drip":
                self.send_response(200)
                self.send_header("content-length", "1000")
                self.end_headers()
                while not owner.release.wait(0.2):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                return
            if isinstance(answer, tuple):
                self.send_response(302)
                self.send_header("location", answer[1])
                self.send_header("content-length", "0")
                self.end_headers()
                return
            body = b'{"ok": false, "detail": "' + b"x" * 5000 + b'"}' if answer >= 300 else b""
            self.send_response(answer)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["receiver"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["receiver"]
    state["receiver"].release.set()
    server.shutdown()
    server.server_close()


@dataclass
class EventQueues:
    client: Any
    url: str
    dlq_url: str
    drain: Callable[..., int]


@pytest.fixture
def webhooks_env(configure, queues, application, admin_engine) -> Iterator[EventQueues]:
    """EventQueue and EventDLQ in moto as template.yaml shapes them, fast retries, local targets allowed,
    and EventDispatchFunction driven from the queue as Lambda's event source mapping does."""
    from infra.local_runner import template
    from infra.local_runner.sqs import EventSourceMapping, create_queues

    with admin_engine.begin() as connection:
        connection.execute(text("TRUNCATE webhook_endpoints RESTART IDENTITY CASCADE"))
    urls = create_queues(queues.client, application)
    configure(
        EVENT_QUEUE_URL=urls["EventQueue"],
        EVENT_DLQ_URL=urls["EventDLQ"],
        EVENT_RETRY_BASE_SECONDS=0,
        EVENT_RETRY_MAX_SECONDS=0,
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
        WEBHOOK_TIMEOUT_SECONDS=1,
        SWEEP_GRACE_SECONDS=0,
    )
    function = application.functions["EventDispatchFunction"]
    source = next(source for source in application.sqs_sources if source.function == "EventDispatchFunction")
    mapping = EventSourceMapping(
        queues.client,
        urls["EventQueue"],
        template.load_handler(function),
        source,
        function,
        visibility_timeout=application.queues["EventQueue"].visibility_timeout,
    )

    def drain(max_rounds: int = 200) -> int:
        handled = 0
        for _ in range(max_rounds):
            batch = mapping.poll_once()
            handled += batch
            if batch == 0:
                return handled
        raise AssertionError("the event queue did not drain")

    yield EventQueues(queues.client, urls["EventQueue"], urls["EventDLQ"], drain)


def api(invoke, method: str, path: str, body: Any = None, **path_parameters: str) -> tuple[int, Any]:
    routes = {
        "/api/webhook-endpoints": "/api/webhook-endpoints",
        "endpoint": "/api/webhook-endpoints/{endpoint_id}",
        "deliveries": "/api/webhook-endpoints/{endpoint_id}/deliveries",
        "retry": "/api/webhook-deliveries/{delivery_id}/retry",
    }
    route = routes[path]
    raw_path = route.format(**path_parameters)
    event = sample_event("webhook_endpoints-list")
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = raw_path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = ""
    event.pop("queryStringParameters", None)
    event["pathParameters"] = path_parameters or None
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"] = {**event["headers"], "content-type": "application/json"}
    response = invoke("WebhookEndpointsFunction", event)
    return response["statusCode"], (response_json(response) if response.get("body") else None)


def register(invoke, url: str, events: list[str]) -> dict[str, Any]:
    status, document = api(invoke, "POST", "/api/webhook-endpoints", {"url": url, "events": events})
    assert status == 201, document
    return document


def receive_sms(invoke, provider_id: str = "SM-1", sender: str = "+18045551234") -> dict[str, Any]:
    body = {
        "from": sender,
        "to": "+12016661234",
        "type": "sms",
        "messaging_provider_id": provider_id,
        "body": "hello",
        "attachments": None,
        "timestamp": "2026-11-01T14:00:00Z",
    }
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", payload=body))
    assert response["statusCode"] == 200, response
    return response_json(response)


def write_event(event_type: str, message_id: int, conversation_id: int, status: str | None) -> int:
    """An event written by a unit of work, as the lifecycle's transitions write theirs."""
    from messaging.db.engine import transaction
    from messaging.db.events import record_event

    with transaction() as connection:
        return record_event(
            connection,
            type=event_type,
            source="webhook",
            message_id=message_id,
            conversation_id=conversation_id,
            status=status,
        )


def lifecycle_event_id(db, event_type: str, message_id: int | None = None, conversation_id: int | None = None) -> int:
    """The id of the history row the lifecycle wrote (the inbound path writes message.received, and
    conversation.created for a new conversation, in its one statement)."""
    return db.scalar(
        "SELECT id FROM message_events WHERE type = :type"
        " AND (message_id = :message_id OR conversation_id = :conversation_id) ORDER BY id LIMIT 1",
        type=event_type,
        message_id=message_id,
        conversation_id=conversation_id,
    )


def verified(request: Received, secret: str) -> dict[str, Any]:
    return Webhook(secret).verify(request.body, request.headers)


# ---------------------------------------------------------------- the endpoints API


def test_register_shows_the_secret_once_and_validates_every_field(invoke, webhooks_env):
    created = register(invoke, "http://127.0.0.1:9/hook", ["message.received", "message.delivered"])
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    assert created["events"] == ["message.delivered", "message.received"]
    status, listed = api(invoke, "GET", "/api/webhook-endpoints")
    assert status == 200 and [item["id"] for item in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]
    status, one = api(invoke, "GET", "endpoint", endpoint_id=str(created["id"]))
    assert status == 200 and "secret" not in one

    for body, named in [
        ({"url": "http://127.0.0.1/h", "events": ["message.teleported"]}, "events"),
        ({"url": "http://127.0.0.1/h", "events": ["message.queued"]}, "events"),  # history only
        ({"url": "http://127.0.0.1/h", "events": []}, "events"),
        ({"url": "ftp://example.com/h", "events": ["message.sent"]}, "url"),
        ({"url": "/relative", "events": ["message.sent"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1/h", "events": ["message.sent"]}, "url"),
        ({"url": "http://127.0.0.1/h", "events": ["message.sent"], "secret": "mine"}, "secret"),
    ]:
        status, error = api(invoke, "POST", "/api/webhook-endpoints", body)
        assert status == 422, (body, error)
        assert error["error"]["field"] == named, (body, error)
    assert [item["id"] for item in api(invoke, "GET", "/api/webhook-endpoints")[1]["items"]] == [created["id"]]


def test_https_and_public_addresses_are_required_unless_private_targets_are_allowed(invoke, webhooks_env, configure):
    configure(WEBHOOK_ALLOW_PRIVATE_TARGETS=None)
    for url in ["http://93.184.216.34/hook", "https://127.0.0.1/hook", "https://169.254.169.254/latest/meta-data"]:
        status, error = api(invoke, "POST", "/api/webhook-endpoints", {"url": url, "events": ["message.sent"]})
        assert status == 422 and error["error"]["field"] == "url", (url, error)
    created = register(invoke, "https://93.184.216.34/hook", ["message.sent"])
    status, error = api(invoke, "PATCH", "endpoint", {"url": "https://10.0.0.8/x"}, endpoint_id=str(created["id"]))
    assert status == 422 and error["error"]["field"] == "url"


def test_patch_delete_and_unknown_ids(invoke, webhooks_env):
    created = register(invoke, "http://127.0.0.1:9/hook", ["message.sent"])
    endpoint_id = str(created["id"])
    status, changed = api(
        invoke, "PATCH", "endpoint", {"events": ["message.failed"], "enabled": False}, endpoint_id=endpoint_id
    )
    assert status == 200 and changed["events"] == ["message.failed"] and changed["enabled"] is False
    status, error = api(invoke, "PATCH", "endpoint", {"enabled": None}, endpoint_id=endpoint_id)
    assert status == 422 and error["error"]["field"] == "enabled"
    assert api(invoke, "DELETE", "endpoint", endpoint_id=endpoint_id)[0] == 204
    assert api(invoke, "GET", "endpoint", endpoint_id=endpoint_id)[0] == 404
    assert api(invoke, "DELETE", "endpoint", endpoint_id=endpoint_id)[0] == 404
    assert api(invoke, "GET", "deliveries", endpoint_id=endpoint_id)[0] == 404
    assert api(invoke, "POST", "retry", delivery_id="12345")[0] == 404


# ---------------------------------------------------------------- delivery


def test_an_event_is_published_after_commit_and_delivered_signed_to_subscribers_only(
    invoke, webhooks_env, receiver, db
):
    subscriber = register(invoke, receiver.url("/a"), ["message.received"])
    other = register(invoke, receiver.url("/b"), ["message.delivered"])
    stored = receive_sms(invoke)
    event_id = lifecycle_event_id(db, "message.received", message_id=stored["id"])

    assert webhooks_env.drain() >= 1
    assert receiver.at("/b") == []
    [request] = receiver.at("/a")
    body = verified(request, subscriber["secret"])
    assert request.headers["webhook-id"] == f"evt_{event_id}"
    assert body["type"] == "message.received"
    assert body["data"]["id"] == stored["id"] and body["data"]["status"] == "received"
    assert body["data"]["from"] == "+18045551234"
    with pytest.raises(Exception, match="signature"):
        Webhook(other["secret"]).verify(request.body, request.headers)
    assert db.scalar("SELECT relayed_at IS NOT NULL FROM message_events WHERE id = :id", id=event_id)
    status, page = api(invoke, "GET", "deliveries", endpoint_id=str(subscriber["id"]))
    assert status == 200
    [delivery] = page["items"]
    assert delivery["status"] == "succeeded" and delivery["event_id"] == event_id and delivery["attempts"] == 1
    [attempt] = delivery["attempt_log"]
    assert attempt["outcome"] == "succeeded" and attempt["status_code"] == 204


def test_a_rolled_back_transaction_publishes_nothing(invoke, webhooks_env, receiver):
    from messaging.db.engine import transaction
    from messaging.db.events import record_event

    register(invoke, receiver.url(), ["message.received"])
    stored = receive_sms(invoke)
    webhooks_env.drain()  # the inbound message's own events, published after its commit
    receiver.received.clear()
    with pytest.raises(RuntimeError), transaction() as connection:
        record_event(connection, type="message.received", source="webhook", message_id=stored["id"])
        raise RuntimeError("the unit of work failed after writing its event")
    assert (
        webhooks_env.client.get_queue_attributes(
            QueueUrl=webhooks_env.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )
    assert webhooks_env.drain() == 0
    assert receiver.received == []


def test_failed_attempts_are_retried_with_the_same_webhook_id_and_the_same_body(invoke, webhooks_env, receiver):
    endpoint = register(invoke, receiver.url(), ["message.sent"])
    receiver.behaviour = lambda _request, nth: 500 if nth <= 2 else 200
    stored = receive_sms(invoke)
    write_event("message.sent", stored["id"], stored["conversation_id"], "sent")

    webhooks_env.drain()
    first, second, third = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    assert first.body == second.body == third.body
    for request in receiver.received:
        # The document as the event announced it (the stored message says `received`): a snapshot.
        assert verified(request, endpoint["secret"])["data"]["status"] == "sent"
    status, page = api(invoke, "GET", "deliveries", endpoint_id=str(endpoint["id"]))
    [delivery] = page["items"]
    log = delivery["attempt_log"]
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
    assert [item["outcome"] for item in log] == ["succeeded", "retrying", "retrying"]
    assert [item["attempt"] for item in log] == [3, 2, 1]
    assert log[1]["status_code"] == 500 and log[1]["next_attempt_at"] is not None
    assert len(log[1]["response_excerpt"]) == 1024  # read up to the cap, never whole


def test_a_delivery_failing_past_its_window_is_dead_lettered_and_disables_the_endpoint(
    invoke, webhooks_env, receiver, configure, queues
):
    configure(EVENT_RETRY_WINDOW_SECONDS=0, EVENT_ENDPOINT_DISABLE_AFTER=2)
    endpoint = register(invoke, receiver.url(), ["message.received"])
    receiver.behaviour = lambda _request, _nth: 503
    receive_sms(invoke, "SM-1")
    receive_sms(invoke, "SM-2")
    webhooks_env.drain()

    status, shown = api(invoke, "GET", "endpoint", endpoint_id=str(endpoint["id"]))
    assert shown["enabled"] is False
    assert "2 consecutive failed deliveries" in shown["disabled_reason"] and "HTTP 503" in shown["disabled_reason"]
    assert len(queues.receive_all(webhooks_env.dlq_url)) == 2
    page = api(invoke, "GET", "deliveries", endpoint_id=str(endpoint["id"]))[1]
    assert [item["status"] for item in page["items"]] == ["failed", "failed"]
    assert [item["attempt_log"][0]["outcome"] for item in page["items"]] == ["failed", "failed"]

    receive_sms(invoke, "SM-3")
    webhooks_env.drain()
    assert len(receiver.received) == 2  # a disabled endpoint gets nothing

    delivery_id = str(page["items"][0]["id"])
    assert api(invoke, "POST", "retry", delivery_id=delivery_id)[0] == 409
    status, enabled = api(invoke, "PATCH", "endpoint", {"enabled": True}, endpoint_id=str(endpoint["id"]))
    assert enabled["enabled"] is True and enabled["disabled_reason"] is None
    receiver.behaviour = lambda _request, _nth: 200
    status, retried = api(invoke, "POST", "retry", delivery_id=delivery_id)
    assert status == 202 and retried["status"] == "pending"
    webhooks_env.drain()
    assert receiver.received[-1].headers["webhook-id"] in {r.headers["webhook-id"] for r in receiver.received[:2]}
    page = api(invoke, "GET", "deliveries", endpoint_id=str(endpoint["id"]))[1]
    [retried_delivery] = [item for item in page["items"] if str(item["id"]) == delivery_id]
    assert retried_delivery["status"] == "succeeded" and retried_delivery["attempt_log"][0]["outcome"] == "succeeded"


def test_a_manual_retry_of_a_delivery_whose_attempt_is_in_flight_is_a_409_with_retry_after(
    invoke, webhooks_env, receiver, configure, db
):
    """Making a leased delivery due would let a second worker attempt it beside the first: refused until the
    attempt ends. A delivery merely waiting for its next attempt (backoff) is retried now, as before."""
    import contextvars

    from messaging.services import webhook_dispatch

    configure(EVENT_RETRY_BASE_SECONDS=600, EVENT_RETRY_MAX_SECONDS=600, WEBHOOK_TIMEOUT_SECONDS=30)
    register(invoke, receiver.url(), ["message.received"])
    arrived = threading.Event()
    receiver.behaviour = lambda _request, _nth: arrived.set() or "hang"
    configure(EVENT_QUEUE_URL=None)  # the test attempts the event itself, below
    stored = receive_sms(invoke)
    event_id = lifecycle_event_id(db, "message.received", message_id=stored["id"])
    attempt = threading.Thread(target=contextvars.copy_context().run, args=(webhook_dispatch.fan_out, event_id))
    attempt.start()
    try:
        while not arrived.is_set() and attempt.is_alive():
            arrived.wait(0.05)
        assert receiver.received, "the attempt never reached the receiver"
        delivery_id = db.scalar("SELECT id FROM webhook_deliveries")

        response = _retry(invoke, delivery_id)
        assert response["statusCode"] == 409, response
        assert response_json(response)["error"]["code"] == "delivery_in_flight"
        assert 1 <= int(response["headers"]["Retry-After"]) <= 30 + 5  # what the lease has left
        assert db.scalar("SELECT next_attempt_at > now() FROM webhook_deliveries")  # the lease is untouched
    finally:
        receiver.release.set()
        attempt.join(60)
    assert not attempt.is_alive()
    [delivery] = db.rows(
        "SELECT status, attempts, next_attempt_at > now() + interval '1 second' AS later FROM webhook_deliveries"
    )
    assert (delivery["status"], delivery["attempts"], delivery["later"]) == ("pending", 1, True)  # backoff

    response = _retry(invoke, delivery_id)
    assert response["statusCode"] == 202, response
    assert db.scalar("SELECT next_attempt_at <= now() FROM webhook_deliveries")


def _retry(invoke, delivery_id: int) -> dict[str, Any]:
    event = sample_event("webhook_endpoints-list")
    route = "/api/webhook-deliveries/{delivery_id}/retry"
    event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {route}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/api/webhook-deliveries/{delivery_id}/retry"
    event["requestContext"]["http"]["method"] = "POST"
    event["rawQueryString"] = ""
    event.pop("queryStringParameters", None)
    event["pathParameters"] = {"delivery_id": str(delivery_id)}
    return invoke("WebhookEndpointsFunction", event)


def test_the_sweep_relays_events_the_queue_never_got_and_overdue_deliveries(
    invoke, webhooks_env, receiver, configure, db
):
    endpoint = register(invoke, receiver.url(), ["conversation.created"])
    configure(EVENT_QUEUE_URL=None)  # the enqueue after commit cannot happen
    stored = receive_sms(invoke)
    event_id = lifecycle_event_id(db, "conversation.created", conversation_id=stored["conversation_id"])
    configure(EVENT_QUEUE_URL=webhooks_env.url)
    assert webhooks_env.drain() == 0 and receiver.received == []

    swept = invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))
    # conversation.created only: nobody subscribes to message.received, so its row was recorded relayed
    # as it was written (migration 0009), and neither the queue nor the sweep ever carry it.
    assert swept["relayed_events"] == 1
    webhooks_env.drain()
    [request] = receiver.received
    body = verified(request, endpoint["secret"])
    assert body["type"] == "conversation.created" and body["data"]["id"] == stored["conversation_id"]
    assert body["data"]["participants"] == ["+12016661234", "+18045551234"]

    # A worker died holding a delivery (its lease expired, its queue record lost): the sweep finds it.
    db.scalar(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now() - interval '1 minute' "
        "WHERE event_id = :id RETURNING id",
        id=event_id,
    )
    assert invoke("RetrySweepFunction", sample_event("retry_sweep-scheduled"))["requeued_deliveries"] == 1
    webhooks_env.drain()
    assert [r.headers["webhook-id"] for r in receiver.received] == [f"evt_{event_id}"] * 2


def test_a_receiver_that_never_answers_costs_one_timeout_and_delays_no_other_endpoint(
    invoke, webhooks_env, receiver, db
):
    register(invoke, receiver.url("/hang"), ["message.received"])
    register(invoke, receiver.url("/drip"), ["message.received"])
    register(invoke, receiver.url("/fine"), ["message.received"])
    receiver.behaviour = lambda request, _nth: {"/hang": "hang", "/drip": "drip"}.get(request.path, 200)
    stored = receive_sms(invoke)

    from messaging.services import webhook_dispatch

    report = webhook_dispatch.fan_out(lifecycle_event_id(db, "message.received", message_id=stored["id"]))
    assert report.attempted == 3 and report.succeeded == 1
    assert len(receiver.at("/fine")) == 1
    errors = {
        path: _deliveries(invoke, endpoint_id)[0]["last_error"] for path, endpoint_id in [("/hang", 1), ("/drip", 2)]
    }
    assert errors == {"/hang": "timed out", "/drip": "timed out"}


def _deliveries(invoke, endpoint_id: int) -> list[dict[str, Any]]:
    status, page = api(invoke, "GET", "deliveries", endpoint_id=str(endpoint_id))
    assert status == 200
    return page["items"]


def test_redirects_are_not_followed(invoke, webhooks_env, receiver, db):
    register(invoke, receiver.url("/moved"), ["message.received"])
    receiver.behaviour = lambda request, _nth: (
        ("redirect", receiver.url("/target")) if request.path == "/moved" else 200
    )
    stored = receive_sms(invoke)
    from messaging.services import webhook_dispatch

    webhook_dispatch.fan_out(lifecycle_event_id(db, "message.received", message_id=stored["id"]))
    assert [request.path for request in receiver.received] == ["/moved"]
    page = api(invoke, "GET", "deliveries", endpoint_id="1")[1]
    assert page["items"][0]["last_error"] == "HTTP 302: redirects are not followed"


def test_a_delivery_is_refused_when_the_name_now_resolves_to_a_private_address(
    invoke, webhooks_env, receiver, configure, monkeypatch
):
    """DNS rebinding: the name was public at registration, and points inside at delivery time."""
    from messaging import webhook_targets

    configure(WEBHOOK_ALLOW_PRIVATE_TARGETS=None, EVENT_RETRY_WINDOW_SECONDS=0)
    monkeypatch.setattr(webhook_targets, "resolver", lambda _host, _port: ["93.184.216.34"])
    host, port = receiver.server.server_address[:2]
    register(invoke, f"https://hooks.customer.example:{port}/hook", ["message.received"])
    monkeypatch.setattr(webhook_targets, "resolver", lambda _host, _port: [host])
    receive_sms(invoke)
    webhooks_env.drain()
    assert receiver.received == []
    page = api(invoke, "GET", "deliveries", endpoint_id="1")[1]
    assert page["items"][0]["last_error"].startswith(
        "refused: the host 'hooks.customer.example' resolves to a non-public"
    )


def test_a_name_server_that_never_answers_is_a_422_at_registration_and_a_failed_attempt_at_delivery(
    invoke, webhooks_env, receiver, configure, monkeypatch, db
):
    """Resolution has a deadline (the connect timeout): never the API function's timeout, never a stuck worker."""
    from messaging import webhook_targets

    configure(WEBHOOK_ALLOW_PRIVATE_TARGETS=None, WEBHOOK_CONNECT_TIMEOUT_SECONDS=0.1, EVENT_RETRY_WINDOW_SECONDS=0)
    release = threading.Event()
    monkeypatch.setattr(webhook_targets, "resolver", lambda _host, _port: release.wait(30) and ["93.184.216.34"])
    try:
        status, error = api(
            invoke,
            "POST",
            "/api/webhook-endpoints",
            {"url": "https://slow.example/hook", "events": ["message.received"]},
        )
        assert status == 422, error
        assert error["error"]["field"] == "url" and "did not resolve within 0.1 s" in error["error"]["message"]
        assert db.scalar("SELECT count(*) FROM webhook_endpoints") == 0

        # Registered while its name resolved; at delivery its name server hangs.
        monkeypatch.setattr(webhook_targets, "resolver", lambda _host, _port: ["93.184.216.34"])
        register(invoke, "https://slow.example/hook", ["message.received"])
        monkeypatch.setattr(webhook_targets, "resolver", lambda _host, _port: release.wait(30) and ["93.184.216.34"])
        receive_sms(invoke)
        webhooks_env.drain()
    finally:
        release.set()
    [delivery] = _deliveries(invoke, 1)
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == "timed out: the host 'slow.example' did not resolve within 0.1 s"
    assert receiver.received == []


def test_deliveries_page_newest_first_with_a_stable_cursor(invoke, webhooks_env, receiver):
    endpoint = register(invoke, receiver.url(), ["message.received"])
    for index in range(5):
        receive_sms(invoke, f"SM-{index}")
        webhooks_env.drain()
    seen: list[int] = []
    cursor = None
    while True:
        path_parameters = {"endpoint_id": str(endpoint["id"])}
        event_query = f"limit=2{'&cursor=' + cursor if cursor else ''}"
        status, page = _get_with_query(invoke, event_query, **path_parameters)
        assert status == 200
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 5


def _get_with_query(invoke, query: str, endpoint_id: str) -> tuple[int, Any]:
    event = sample_event("webhook_endpoints-deliveries")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/api/webhook-endpoints/{endpoint_id}/deliveries"
    event["pathParameters"] = {"endpoint_id": endpoint_id}
    event["rawQueryString"] = query
    event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    response = invoke("WebhookEndpointsFunction", event)
    return response["statusCode"], response_json(response)


# ---------------------------------------------------------------- recipient.* events


def _recipient_events(receiver: Receiver, endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """Every request the endpoint got, verified, in the order the events were written (records of a batch
    are delivered side by side: arrival order is not guaranteed)."""
    ordered = sorted(receiver.received, key=lambda request: int(request.headers["webhook-id"].removeprefix("evt_")))
    return [verified(request, endpoint["secret"]) for request in ordered]


def test_an_operators_suppression_and_its_lifting_are_pushed_with_the_suppression_document(
    invoke, webhooks_env, receiver, db
):
    endpoint = register(invoke, receiver.url(), ["recipient.opted_out", "recipient.opted_in"])
    created = suppressions_api(
        invoke, "POST", "/api/suppressions", {"address": "+18045551234", "reason": "lawyer's letter"}
    )
    assert created["statusCode"] == 201
    suppression = response_json(created)
    assert suppressions_api(invoke, "DELETE", f"/api/suppressions/{suppression['id']}")["statusCode"] == 204
    assert db.scalar("SELECT count(*) FROM suppressions") == 0  # the opt-in is rendered without the row

    webhooks_env.drain()
    opted_out, opted_in = _recipient_events(receiver, endpoint)
    assert opted_out["type"] == "recipient.opted_out" and opted_in["type"] == "recipient.opted_in"
    assert opted_out["data"] == opted_in["data"] == suppression  # the document POST returned
    assert suppression["source"] == "manual" and suppression["sender"] is None
    event_ids = [
        row["id"] for row in db.rows("SELECT id FROM message_events WHERE type LIKE 'recipient.%' ORDER BY id")
    ]
    assert sorted(request.headers["webhook-id"] for request in receiver.received) == [f"evt_{i}" for i in event_ids]
    assert db.scalar("SELECT count(*) FROM message_events WHERE relayed_at IS NULL") == 0


def test_stop_and_start_keywords_are_pushed_with_the_suppression_document(invoke, webhooks_env, receiver):
    endpoint = register(invoke, receiver.url(), ["recipient.opted_out", "recipient.opted_in"])
    text_in(invoke, " Stop. ")
    [listed] = response_json(suppressions_api(invoke, "GET", "/api/suppressions", query={"address": SUBSCRIBER}))[
        "items"
    ]
    text_in(invoke, "START")

    webhooks_env.drain()
    opted_out, opted_in = _recipient_events(receiver, endpoint)
    assert (opted_out["type"], opted_in["type"]) == ("recipient.opted_out", "recipient.opted_in")
    assert opted_out["data"] == opted_in["data"] == listed  # the document the suppressions API returns
    assert (listed["address"], listed["sender"], listed["source"]) == (SUBSCRIBER, NUMBER, "keyword")
    assert listed["reason"] == "texted Stop."


def test_an_event_missing_its_subject_fails_its_record_loudly_instead_of_vanishing(invoke, webhooks_env, receiver, db):
    """A writer's defect (a recipient event without its suppression) is never dropped silently: the record
    fails (SQS redelivers it, then dead-letters it) and the event stays waiting to be relayed."""
    from messaging.services import webhook_dispatch

    register(invoke, receiver.url(), ["recipient.opted_out"])
    event_id = db.scalar(
        "INSERT INTO message_events (type, source) VALUES ('recipient.opted_out', 'manual') RETURNING id"
    )
    with pytest.raises(webhook_dispatch.UnrenderableEvent, match="without its suppression"):
        webhook_dispatch.fan_out(event_id)
    assert db.scalar("SELECT relayed_at IS NULL FROM message_events WHERE id = :id", id=event_id)
    assert receiver.received == []


# ---------------------------------------------------------------- EventDispatchFunction


def dispatch_batch(invoke, bodies: list[dict[str, int] | str]) -> dict[str, Any]:
    """Invoke EventDispatchFunction with one SQS batch of these record bodies (ids test-0, test-1, ...)."""
    records = [{"body": body if isinstance(body, str) else json.dumps(body)} for body in bodies]
    return invoke("EventDispatchFunction", sqs_event(records, "arn:aws:sqs:us-east-1:123456789012:EventQueue"))


def test_a_record_that_fails_is_reported_in_batch_item_failures_and_the_others_are_not(
    invoke, webhooks_env, receiver, db
):
    register(invoke, receiver.url(), ["message.received"])
    stored = receive_sms(invoke)
    event_id = lifecycle_event_id(db, "message.received", message_id=stored["id"])
    response = dispatch_batch(invoke, [{"event_id": event_id}, '{"neither": 1}', {"delivery_id": 0}])
    assert response == {"batchItemFailures": [{"itemIdentifier": "test-1"}, {"itemIdentifier": "test-2"}]}
    assert [request.headers["webhook-id"] for request in receiver.received] == [f"evt_{event_id}"]


def test_a_success_resets_the_endpoints_count_of_consecutive_failures(invoke, webhooks_env, receiver, configure, db):
    configure(EVENT_RETRY_WINDOW_SECONDS=0, EVENT_ENDPOINT_DISABLE_AFTER=3)
    endpoint = register(invoke, receiver.url(), ["message.received"])
    answers = iter([503, 503, 204, 503, 503])
    receiver.behaviour = lambda _request, _nth: next(answers)

    def failures_after_one_more_event(index: int) -> int:
        receive_sms(invoke, f"SM-{index}", sender=f"+1804555{index:04d}")
        webhooks_env.drain()
        return db.scalar("SELECT consecutive_failures FROM webhook_endpoints WHERE id = :id", id=endpoint["id"])

    assert [failures_after_one_more_event(index) for index in range(5)] == [1, 2, 0, 1, 2]
    assert api(invoke, "GET", "endpoint", endpoint_id=str(endpoint["id"]))[1]["enabled"] is True


def test_the_default_retry_window_keeps_a_failing_delivery_for_a_day(invoke, webhooks_env, receiver, configure, db):
    """EVENT_RETRY_WINDOW_SECONDS unset: the function's configuration retries for 24 hours."""
    configure(EVENT_RETRY_WINDOW_SECONDS=None, EVENT_RETRY_BASE_SECONDS=None, EVENT_RETRY_MAX_SECONDS=None)
    register(invoke, receiver.url(), ["message.received"])
    receiver.behaviour = lambda _request, _nth: 503
    stored = receive_sms(invoke)
    assert dispatch_batch(
        invoke, [{"event_id": lifecycle_event_id(db, "message.received", message_id=stored["id"])}]
    ) == {"batchItemFailures": []}
    [delivery] = db.rows(
        "SELECT status, EXTRACT(EPOCH FROM retry_until - created_at) AS window,"
        " EXTRACT(EPOCH FROM next_attempt_at - now()) AS next_in FROM webhook_deliveries"
    )
    assert delivery["status"] == "pending"
    assert abs(float(delivery["window"]) - 24 * 3600) < 60
    assert 0 < float(delivery["next_in"]) <= 5 * 1.25  # EVENT_RETRY_BASE_SECONDS (5) with its jitter


def test_a_hanging_endpoint_delays_no_other_record_of_the_batch(invoke, webhooks_env, receiver, db):
    """Two records whose endpoint never answers, then one for another endpoint, in one batch: the third is
    attempted and recorded while the first two still wait for their timeout (no record waits for a slot
    another record holds across its HTTP attempt)."""
    hanging = register(invoke, receiver.url("/hang"), ["message.received"])
    fast = register(invoke, receiver.url("/fast"), ["conversation.created"])
    receiver.behaviour = lambda request, _nth: "hang" if request.path == "/hang" else 204
    first = receive_sms(invoke, "SM-1", sender="+18045550001")
    second = receive_sms(invoke, "SM-2", sender="+18045550002")
    records = [
        {"event_id": lifecycle_event_id(db, "message.received", message_id=first["id"])},
        {"event_id": lifecycle_event_id(db, "message.received", message_id=second["id"])},
        {"event_id": lifecycle_event_id(db, "conversation.created", conversation_id=first["conversation_id"])},
    ]
    assert dispatch_batch(invoke, records) == {"batchItemFailures": []}

    attempts = db.rows("SELECT endpoint_id, outcome, error FROM webhook_attempts ORDER BY id")
    assert [(row["endpoint_id"], row["outcome"]) for row in attempts][0] == (fast["id"], "succeeded")
    assert [(row["endpoint_id"], row["error"]) for row in attempts[1:]] == [(hanging["id"], "timed out")] * 2


# ---------------------------------------------------------------- secrets


def test_the_signing_secret_never_reaches_the_logs(
    invoke, webhooks_env, receiver, configure, monkeypatch, capfd, caplog
):
    """Every log line of registering, failing attempts, retries, giving up, disabling and a database error while
    recording an attempt, at DEBUG, from Powertools' logger (JSON on stdout) and any other logger: no secret."""
    import base64
    import io
    import logging

    from sqlalchemy.exc import OperationalError

    from messaging.db import webhooks as webhooks_db
    from messaging.observability import SERVICE, logger

    service_logger = logging.getLogger(SERVICE)  # the standard logger behind Powertools' Logger
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logger.registered_formatter)  # the very JSON Powertools writes, exceptions included
    service_logger.addHandler(handler)
    monkeypatch.setattr(service_logger, "level", logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    configure(EVENT_ENDPOINT_DISABLE_AFTER=1)
    try:
        endpoint = register(invoke, receiver.url(), ["message.received", "conversation.created"])
        # Two failed attempts, then accepted (retries logged under the same webhook-id).
        receiver.behaviour = lambda _request, nth: 500 if nth <= 2 else 204
        receive_sms(invoke, "SM-1", sender="+18045550001")
        webhooks_env.drain()

        # Failing for good: dead-lettered and the endpoint disabled, with the reason logged.
        configure(EVENT_RETRY_WINDOW_SECONDS=0)
        receiver.behaviour = lambda _request, _nth: 503
        receive_sms(invoke, "SM-2", sender="+18045550002")
        webhooks_env.drain()
        assert api(invoke, "GET", "endpoint", endpoint_id=str(endpoint["id"]))[1]["enabled"] is False

        # The database fails while an attempt is recorded: the record fails, logged with its traceback.
        assert api(invoke, "PATCH", "endpoint", {"enabled": True}, endpoint_id=str(endpoint["id"]))[0] == 200
        real_record_attempt = webhooks_db.record_attempt

        def failing_record_attempt(connection, delivery_id, **values):
            raise OperationalError("UPDATE webhook_deliveries ...", values, Exception("server closed the connection"))

        monkeypatch.setattr(webhooks_db, "record_attempt", failing_record_attempt)
        receive_sms(invoke, "SM-3", sender="+18045550003")
        webhooks_env.drain()
        monkeypatch.setattr(webhooks_db, "record_attempt", real_record_attempt)
    finally:
        service_logger.removeHandler(handler)

    captured = capfd.readouterr()
    logged = "\n".join([lines.getvalue(), captured.out, captured.err, caplog.text])
    assert "webhook attempt failed; retrying" in logged and "webhook endpoint disabled" in logged
    assert "event record failed" in logged and "server closed the connection" in logged
    secret = endpoint["secret"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    assert "whsec_" not in logged
    for form in (secret.removeprefix("whsec_"), base64.urlsafe_b64encode(key).decode(), key.hex(), repr(key)[2:-1]):
        assert form not in logged
