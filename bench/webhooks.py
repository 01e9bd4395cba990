"""Customer webhooks: dispatch throughput (signed deliveries recorded per second) to a local receiver,
against bare unsigned POSTs to the same receiver over fresh connections, measured in the same run."""

from __future__ import annotations

import http.client
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.common import Figure, Report, handler, scratch_database
from bench.common import event as sample

EVENTS = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "200"))
ENDPOINTS = 3


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def measure(report: Report) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    try:
        with scratch_database("webhooks"):
            _measure(report, port)
    finally:
        os.environ.pop("WEBHOOK_ALLOW_PRIVATE_TARGETS", None)
        server.shutdown()
        server.server_close()


def _measure(report: Report, port: int) -> None:
    from messaging import runtime
    from messaging.db.engine import transaction
    from messaging.db.events import find_unrelayed_events
    from messaging.services import webhook_dispatch
    from messaging.services.webhook_endpoints import create_endpoint
    from messaging.webhook_models import WebhookEndpointIn

    runtime.reset()
    inbound = handler("InboundSmsFunction")
    for index in range(ENDPOINTS):
        create_endpoint(WebhookEndpointIn(url=f"http://127.0.0.1:{port}/e{index}", events=["message.received"]))
    for index in range(EVENTS):
        inbound(sample("inbound_sms-sms", messaging_provider_id=f"wh-{index}"))
    # The inbound path wrote message.received (and conversation.created once) for each: the events to fan out.
    with transaction() as connection:
        event_ids = find_unrelayed_events(connection, grace_seconds=0, limit=10 * EVENTS)

    started = time.perf_counter()
    delivered = sum(webhook_dispatch.fan_out(event_id).succeeded for event_id in event_ids)
    dispatch_seconds = time.perf_counter() - started
    assert delivered == EVENTS * ENDPOINTS, delivered

    body = b'{"type":"message.received","timestamp":"2026-11-25T00:00:00Z","data":{}}'
    started = time.perf_counter()
    for _ in range(EVENTS * ENDPOINTS):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("POST", "/bare", body=body, headers={"content-type": "application/json"})
        connection.getresponse().read()
        connection.close()
    bare_seconds = time.perf_counter() - started

    per_second = delivered / dispatch_seconds
    bare_per_second = EVENTS * ENDPOINTS / bare_seconds
    report.add(
        Figure(
            "webhooks",
            f"dispatch: deliveries/s ({ENDPOINTS} endpoints per event)",
            per_second,
            "/s",
            baseline=bare_per_second,
            note="one warm worker in-process: fan-out transaction, signed POSTs side by side, one recorded "
            "attempt each; baseline: bare POSTs to the same receiver",
        )
    )
    report.details["webhooks"] = {
        "events": EVENTS,
        "endpoints": ENDPOINTS,
        "deliveries_per_second": round(per_second, 1),
        "bare_posts_per_second": round(bare_per_second, 1),
    }
