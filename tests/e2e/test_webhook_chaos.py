"""Chaos run of customer webhooks over the local runner, on the events the service itself writes: inbound SMS
(message.received, conversation.created) and sends (message.sent; message.delivered or message.undelivered
by the mock provider's receipts, which the runner posts to its own status webhook; message.failed for sends
the mock refuses). A receiver fails 40% of first attempts (some by timing out), and the runner is killed -9
mid-run. Every event an endpoint subscribes to arrives at least once, signed; retries keep their webhook-id
and body; no delivery is failed; and no endpoint gets an event it does not subscribe to."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from infra.local_runner import postgres
from tests.conftest import _server_url
from tests.e2e.client import call
from tests.e2e.conftest import ROOT, RUNNER_ENVIRONMENT, RunnerDb, free_port

CHAOS_ENVIRONMENT = {
    "EVENT_RETRY_BASE_SECONDS": "0.2",
    "EVENT_RETRY_MAX_SECONDS": "1",
    "WEBHOOK_TIMEOUT_SECONDS": "1",
    "WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1",
    "SWEEP_INTERVAL_SECONDS": "1",
    "SWEEP_GRACE_SECONDS": "2",
    # Receipts of both outcomes; every email send refused by the provider (a 4xx: failed at once).
    "MOCK_SMS_RECEIPTS": "delivered=0.7,undelivered=0.3",
    "MOCK_EMAIL_FAULTS": "400=1",
    "MOCK_PROVIDER_SEED": "20261125",
    "POWERTOOLS_LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "WARNING"),
    "LOCAL_RUNNER_LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "WARNING"),
}
SUBSCRIPTIONS = {
    "/a": ["message.received", "conversation.created"],
    "/b": ["message.sent", "message.delivered"],
    "/c": ["message.received", "message.delivered", "message.undelivered", "conversation.created", "message.failed"],
}
# Outbound statuses no receipt or send will move any further.
SETTLED = ("delivered", "undelivered", "failed")


class ChaosReceiver:
    """Fails 30% of first attempts with a 500 and times out on 10% more (answers after 3 s; the runner
    gives up after 1 s); every later attempt of the same webhook-id at the same path succeeds."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.rng = random.Random(20261125)  # noqa: S311 - reproducible chaos, not security
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                with receiver.lock:
                    first = not any(
                        path == self.path and seen.get("webhook-id") == headers.get("webhook-id")
                        for path, seen, _ in receiver.requests
                    )
                    receiver.requests.append((self.path, headers, body))
                    roll = receiver.rng.random() if first else 1.0
                if roll < 0.1:
                    time.sleep(3)
                status = 500 if roll < 0.4 else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_runner(database_url: str, port: int, log_name: str) -> subprocess.Popen[bytes]:
    # Not the test process's stand-ins (tests/conftest.py), as tests/e2e/conftest.py's Runner: the runner's own
    # API_BASE_URL is where its mock providers' receipts come back, and it has its own SQS.
    environment = {
        **{
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MOCK_", "SEND_RETRY", "EVENT_")) and key not in ("API_BASE_URL", "SQS_ENDPOINT_URL")
        },
        **RUNNER_ENVIRONMENT,
        **CHAOS_ENVIRONMENT,
        "DATABASE_URL": database_url,
        "PORT": str(port),
    }
    log_path = ROOT / ".local" / log_name
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "infra.local_runner"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: kill -9 takes every worker with it
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the runner exited: {log_path.read_text()[-3000:]}"
        try:
            if call(f"http://127.0.0.1:{port}", "GET", "/health", timeout=2).status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    kill_9(process)
    raise AssertionError(f"the runner did not become healthy: {log_path.read_text()[-3000:]}")


def kill_9(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def inbound(url: str, index: int) -> None:
    body = {
        "from": f"+1804555{1000 + index % 7:04d}",
        "to": "+12016661234",
        "type": "sms",
        "messaging_provider_id": f"chaos-{index}",
        "body": f"message {index}",
        "attachments": None,
        "timestamp": "2026-11-01T14:00:00Z",
    }
    response = call(url, "POST", "/api/webhooks/sms", body)
    assert response.status == 200, response.text


def send(url: str, index: int) -> int:
    """An SMS (sent, then a receipt: delivered or undelivered) or, one in three, an email (refused: failed)."""
    if index % 3 == 2:
        body: dict[str, Any] = {"from": "user@usehatchapp.com", "to": f"contact{index}@example.com", "type": "email"}
        body.update(attachments=[])
    else:
        body = {"from": "+12016661234", "to": f"+1804555{2000 + index:04d}", "type": "sms", "attachments": None}
    body.update(body=f"outbound {index}", timestamp="2026-11-01T14:00:00Z")
    response = call(url, "POST", f"/api/messages/{'email' if body['type'] == 'email' else 'sms'}", body)
    assert response.status == 202, response.text
    message = response.json()
    assert message["status"] == ("failed" if body["type"] == "email" else "sent"), message
    return int(message["id"])


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def test_every_event_arrives_signed_at_least_once_through_failures_and_a_kill_9():
    server_url = _server_url()
    database = f"e2e_chaos_{os.getpid()}"
    database_url = postgres.recreate_database(server_url, database)
    receiver = ChaosReceiver()
    db = RunnerDb(database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_runner(database_url, port, f"{database}-1.log")
    try:
        secrets: dict[str, str] = {}
        for path, events in SUBSCRIPTIONS.items():
            created = call(url, "POST", "/api/webhook-endpoints", {"url": receiver.url(path), "events": events})
            assert created.status == 201, created.text
            secrets[path] = created.json()["secret"]

        for index in range(20):
            inbound(url, index)
            if index % 2 == 0:
                send(url, index)
        assert wait_until(lambda: len(receiver.requests) >= 10, 60), "nothing was being delivered"

        # Mid-run: queued records, leased deliveries, in-flight attempts and the receipts the mocks still owe
        # (a message whose receipt dies here stays `sent`: it simply has no later event) die with it.
        kill_9(process)
        process = start_runner(database_url, port, f"{database}-2.log")
        later = []
        for index in range(20, 30):
            inbound(url, index)
            later.append(send(url, index))

        # Every receipt the restarted runner owes has been applied: the events are all written.
        assert wait_until(
            lambda: (
                db.scalar(
                    "SELECT count(*) FROM messages"
                    " WHERE id = ANY(CAST(:ids AS bigint[])) AND status <> ALL(CAST(:settled AS text[]))",
                    ids=later,
                    settled=list(SETTLED),
                )
                == 0
            ),
            60,
        ), "receipts of the sends after the restart never arrived"
        events = db.rows("SELECT id, type FROM message_events ORDER BY id")
        types = {f"evt_{event['id']}": event["type"] for event in events}
        assert {"message.delivered", "message.undelivered", "message.failed", "message.sent"} <= set(types.values())
        expected = {
            (f"evt_{event['id']}", path)
            for event in events
            for path, subscribed in SUBSCRIPTIONS.items()
            if event["type"] in subscribed
        }

        def everything_arrived() -> bool:
            with receiver.lock:
                return expected <= {(headers["webhook-id"], path) for path, headers, _ in receiver.requests}

        wait_until(everything_arrived, 120, interval=0.5)
        statuses = {
            row["status"]: row["count"]
            for row in db.rows("SELECT status, count(*) AS count FROM webhook_deliveries GROUP BY status")
        }
        types = {f"evt_{event['id']}": event["type"] for event in db.rows("SELECT id, type FROM message_events")}
    finally:
        kill_9(process)
        receiver.close()
        db.engine.dispose()
        postgres.drop_database(server_url, database)

    with receiver.lock:
        requests = list(receiver.requests)
    arrived = {(headers["webhook-id"], path) for path, headers, _ in requests}
    assert expected - arrived == set(), f"{len(expected - arrived)} of {len(expected)} events never arrived"
    unsubscribed = {(event, path) for event, path in arrived if types.get(event) not in SUBSCRIPTIONS[path]}
    assert unsubscribed == set(), "an endpoint got an event it does not subscribe to"

    bodies: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    for path, headers, body in requests:
        document = Webhook(secrets[path]).verify(body, headers)  # raises unless the signature verifies
        assert document["type"] == types[headers["webhook-id"]]
        bodies[(headers["webhook-id"], path)].add(body)
    retried = [key for key in bodies if sum(1 for p, h, _ in requests if (h["webhook-id"], p) == key) > 1]
    assert retried, "the chaos receiver failed no first attempt"
    # A retry carries the same webhook-id (the key above) and the very same body.
    assert all(len(bodies[key]) == 1 for key in retried)
    assert statuses.get("failed", 0) == 0, statuses
