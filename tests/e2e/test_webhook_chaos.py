"""Chaos run of customer webhooks over the local runner: a receiver that fails 40% of first attempts (some by
timing out), and a kill -9 of the runner mid-run. Every expected event arrives at least once, signed,
retries keep their webhook-id, and no endpoint gets an event it does not subscribe to."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
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
    "POWERTOOLS_LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "WARNING"),
    "LOCAL_RUNNER_LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "WARNING"),
}
SUBSCRIPTIONS = {
    "/a": ["message.received", "conversation.created"],
    "/b": ["message.delivered"],
    "/c": ["message.received", "message.delivered", "conversation.created", "message.failed"],
}


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
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("MOCK_", "SEND_RETRY", "EVENT_"))},
        **RUNNER_ENVIRONMENT,
        **CHAOS_ENVIRONMENT,
        "DATABASE_URL": database_url,
        "PORT": str(port),
    }
    environment.pop("SQS_ENDPOINT_URL", None)
    log = (ROOT / ".local" / log_name).open("wb")
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
        assert process.poll() is None, "the runner exited"
        try:
            if call(f"http://127.0.0.1:{port}", "GET", "/health", timeout=2).status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the runner did not become healthy")


def kill_9(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def write_events(db: RunnerDb, first_message: int, last_message: int) -> None:
    """What the lifecycle writes (message.received, conversation.created, message.delivered), as rows of
    the outbox nobody published: only the sweep can relay them. (The delivered events carry no status:
    these messages are inbound, and the status vocabulary of the lifecycle work is not assumed here.)"""
    with db.engine.begin() as connection:
        from sqlalchemy import text

        connection.execute(
            text(
                "INSERT INTO message_events (type, message_id, conversation_id, status, source) "
                "SELECT 'message.received', id, conversation_id, 'received', 'webhook' FROM messages "
                "WHERE id BETWEEN :first AND :last ORDER BY id"
            ),
            {"first": first_message, "last": last_message},
        )
        connection.execute(
            text(
                "INSERT INTO message_events (type, message_id, conversation_id, status, source) "
                "SELECT 'message.delivered', id, conversation_id, NULL, 'receipt' FROM messages "
                "WHERE id BETWEEN :first AND :last AND mod(id, 3) = 0 ORDER BY id"
            ),
            {"first": first_message, "last": last_message},
        )
        connection.execute(
            text(
                "INSERT INTO message_events (type, conversation_id, source) "
                "SELECT 'conversation.created', c.id, 'webhook' FROM conversations c "
                "WHERE NOT EXISTS (SELECT 1 FROM message_events e "
                "                  WHERE e.type = 'conversation.created' AND e.conversation_id = c.id)"
            )
        )


def inbound(url: str, index: int) -> dict[str, Any]:
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
    return response.json()


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
        write_events(db, 1, 20)
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(receiver.requests) >= 10, "nothing was being delivered"

        kill_9(process)  # mid-run: queued records, leased deliveries and in-flight attempts die with it
        process = start_runner(database_url, port, f"{database}-2.log")
        for index in range(20, 30):
            inbound(url, index)
        write_events(db, 21, 30)

        with db.engine.connect() as connection:
            from sqlalchemy import text

            events = list(connection.execute(text("SELECT id, type FROM message_events ORDER BY id")))
        expected = {
            (f"evt_{event.id}", path)
            for event in events
            for path, subscribed in SUBSCRIPTIONS.items()
            if event.type in subscribed
        }
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with receiver.lock:
                arrived = {(headers["webhook-id"], path) for path, headers, _ in receiver.requests}
            if expected <= arrived:
                break
            time.sleep(0.5)
    finally:
        kill_9(process)
        receiver.close()

    with receiver.lock:
        requests = list(receiver.requests)
    arrived = {(headers["webhook-id"], path) for path, headers, _ in requests}
    assert expected - arrived == set(), f"{len(expected - arrived)} of {len(expected)} events never arrived"
    assert arrived <= expected, "an endpoint got an event it does not subscribe to"

    bodies: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    types = {f"evt_{event.id}": event.type for event in events}
    for path, headers, body in requests:
        document = Webhook(secrets[path]).verify(body, headers)  # raises unless the signature verifies
        assert document["type"] == types[headers["webhook-id"]]
        assert document["type"] in SUBSCRIPTIONS[path]
        bodies[(headers["webhook-id"], path)].add(body)
    retried = [key for key in bodies if sum(1 for p, h, _ in requests if (h["webhook-id"], p) == key) > 1]
    assert retried, "the chaos receiver failed no first attempt"
    # A retry carries the same webhook-id (the key above) and the very same body.
    assert all(len(bodies[key]) == 1 for key in retried)
    with db.engine.connect() as connection:
        from sqlalchemy import text

        statuses = dict(
            connection.execute(text("SELECT status, count(*) FROM webhook_deliveries GROUP BY status")).all()
        )
    db.engine.dispose()
    postgres.drop_database(server_url, database)
    assert statuses.get("failed", 0) == 0, statuses
