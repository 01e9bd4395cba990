"""`make seed`: demo data for the console: conversations over SMS, MMS and email, messages in every status.

Every row is written by the service itself, through the same API requests a client and the providers make:
- `python -m infra.seed` (what `make seed` does) sends them in-process through the local runner's gateway,
  to the database `make run` uses (DATABASE_URL, else the embedded one). The mock providers are scripted
  (FAULTS) so that sends end `sent`, `failed` (a 400 from the provider) and `retrying` (a 429 asking for
  90 s); their own receipts are off, and the seed plays the providers' part instead: it POSTs the receipts
  of chosen sends to the status webhooks, so those end `delivered` or `undelivered` (an unreachable handset,
  a bounced email). Last, with per-sender throttling on (SENDER_RATE_PER_SECOND), a sender sends twice in a
  row: the second message stays `queued` for its slot 10 minutes later. A running `make run` picks the
  retrying and queued ones up with its sweep, so the console shows them turn `sent` live; whether it is
  running or not makes no difference to the seed. First of all it registers a webhook endpoint on a closed
  local port: `make run` dispatches the demo's events to it, and the Webhooks view shows the deliveries'
  refused attempts and their retries.
- `python -m infra.seed --url http://127.0.0.1:8080` sends the same requests over HTTP to a running server
  instead: the statuses are then whatever that server's providers answer (start it with `FAULTS` below to
  get most of them; throttling is the server's own setting, so nothing stays `queued` there).
Idempotent: inbound messages and receipts carry fixed provider ids and sends fixed Idempotency-Keys, so a
second run adds nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import HTTPError

OUR_PHONE = "+12025550100"
OUR_EMAIL = "support@example.com"

# Outcomes of the outbound sends below, in order, per provider (SMS and MMS share the SMS provider). The
# providers' own receipts are off: the seed posts the receipts it wants (RECEIPT steps).
FAULTS = {
    "MOCK_SMS_FAULTS": "ok,ok,400,429,ok",
    "MOCK_EMAIL_FAULTS": "ok,400,429,ok",
    "MOCK_RETRY_AFTER_SECONDS": "90",
    "MOCK_SMS_RECEIPTS": "off",
    "MOCK_EMAIL_RECEIPTS": "off",
}
# The throttled phase: one message per sender every 10 minutes (within SQS's 15-minute delay limit, so the
# send is scheduled on the retry queue rather than left to the sweep).
THROTTLE = {"SENDER_RATE_PER_SECOND": str(1 / 600)}

INBOUND_EMAIL_HTML = (
    "<html><body><p style='font-family:Georgia,serif'>Hello support,</p>"
    "<p>The invoice for <b>March</b> shows the wrong VAT number. Could you fix it?</p>"
    "<script>document.body.innerHTML = 'this script never runs in the console';</script>"
    "<p style='color:#666'>— Alice</p></body></html>"
)

# A customer's webhook endpoint that is down: nothing listens on the discard port, so once a running `make run`
# dispatches the demo's events (its EventQueue consumer and sweep: the real dispatch path), each delivery's
# attempts fail with a refused connection and are retried with backoff, and the Webhooks view shows them.
WEBHOOK_ENDPOINTS = "/api/webhook-endpoints"
DEMO_WEBHOOK_URL = "http://127.0.0.1:9/demo-webhook"

SMS_RECEIPTS = "/api/webhooks/sms/status"
EMAIL_EVENTS = "/api/webhooks/email/events"


@dataclass(frozen=True)
class Step:
    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    expect: str = ""  # the status the step leaves its message in (in-process, scripted providers)
    receipt_of: str = ""  # a provider's receipt: the Idempotency-Key of the send it reports on
    method: str = "POST"
    once_by_url: bool = False  # registered only when the list at `path` has no item with this body's url

    def for_send(self, provider_message_id: str) -> Step:
        """This receipt naming the provider's id of the send it reports on (known once that send ran)."""
        if self.path == SMS_RECEIPTS:
            return replace(self, body={**self.body, "messaging_provider_id": provider_message_id})
        return replace(self, body=[{**event, "xillio_id": provider_message_id} for event in self.body])


def _instant(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _inbound_sms(sender: str, body: str, provider_id: str, at: datetime, attachments: list[str] | None = None) -> Step:
    payload = {
        "from": sender,
        "to": OUR_PHONE,
        "type": "mms" if attachments else "sms",
        "messaging_provider_id": provider_id,
        "body": body,
        "attachments": attachments,
        "timestamp": _instant(at),
    }
    return Step("/api/webhooks/sms", payload, expect="received")


def _send_sms(key: str, to: str, body: str, expect: str, attachments: list[str] | None = None) -> Step:
    payload = {"from": OUR_PHONE, "to": to, "type": "mms" if attachments else "sms", "body": body}
    payload["attachments"] = attachments
    return Step("/api/messages/sms", payload, {"Idempotency-Key": key}, expect)


def _send_email(key: str, to: str, body: str, expect: str, attachments: list[str] | None = None) -> Step:
    payload = {"from": OUR_EMAIL, "to": to, "body": body, "attachments": attachments or []}
    return Step("/api/messages/email", payload, {"Idempotency-Key": key}, expect)


def _sms_receipt(key: str, status: str, at: datetime, error_code: str | None = None) -> Step:
    receipt = {"status": status, "timestamp": _instant(at)}
    if error_code:
        receipt["error_code"] = error_code
    return Step(SMS_RECEIPTS, receipt, expect=status, receipt_of=key)


def _email_event(key: str, event: str, at: datetime, reason: str | None = None) -> Step:
    document = {"event_id": f"{key}-{event}", "event": event, "timestamp": _instant(at)}
    if reason:
        document["reason"] = reason
    return Step(EMAIL_EVENTS, [document], expect="delivered" if event == "delivered" else "undelivered", receipt_of=key)


def demo_steps(now: datetime | None = None) -> list[Step]:
    """The demo conversations, oldest first; sends in the order FAULTS scripts their outcomes."""
    now = now or datetime.now(UTC)
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731 - a local shorthand
    return [
        # First, so that every event below is dispatched to it too.
        Step(
            WEBHOOK_ENDPOINTS,
            {"url": DEMO_WEBHOOK_URL, "events": ["message.received", "message.failed"]},
            once_by_url=True,
        ),
        _inbound_sms("+14155550123", "Hi! Has my order #1042 shipped yet?", "seed-sms-1", ago(50)),
        _send_sms("seed-send-1", "+14155550123", "Yes: it left the warehouse this morning.", "sent"),
        _sms_receipt("seed-send-1", "delivered", ago(1)),
        _inbound_sms(
            "+14155550123",
            "Great, and here is the box I got last time",
            "seed-mms-1",
            ago(40),
            ["https://example.com/media/box.jpg"],
        ),
        _send_sms(
            "seed-send-2", "+14155550188", "Your new loyalty card", "sent", ["https://example.com/media/card.png"]
        ),
        _sms_receipt("seed-send-2", "delivered", ago(1)),
        _inbound_sms("+14155550188", "Thanks, looks lovely!", "seed-sms-2", ago(30)),
        _send_sms("seed-send-3", "+14155550199", "Your appointment is confirmed for Tuesday at 10:00.", "failed"),
        _send_sms("seed-send-4", "+14155550177", "Reminder: your table for 4 is booked at 19:30.", "retrying"),
        _send_sms("seed-send-5", "+14155550166", "Your verification code is 481516.", "sent"),
        _sms_receipt("seed-send-5", "undelivered", ago(1), "30003"),  # Twilio's "unreachable handset"
        Step(
            "/api/webhooks/email",
            {
                "from": "[alice@example.org](mailto:alice@example.org)",
                "to": OUR_EMAIL,
                "xillio_id": "seed-email-1",
                "body": INBOUND_EMAIL_HTML,
                "attachments": ["https://example.com/files/invoice-march.pdf"],
                "timestamp": _instant(ago(20)),
            },
            expect="received",
        ),
        _send_email(
            "seed-send-6",
            "alice@example.org",
            "<p>Hi Alice, sorry about that: the corrected invoice is attached.</p>",
            "sent",
            ["https://example.com/files/invoice-march-corrected.pdf"],
        ),
        _email_event("seed-send-6", "delivered", ago(1)),
        _send_email("seed-send-7", "bob@example.net", "<p>Your password was changed.</p>", "failed"),
        _send_email("seed-send-8", "carol@example.com", "<p>Your weekly report is ready.</p>", "retrying"),
        # A hard bounce: `undelivered`, and the address lands on the suppression list.
        _send_email("seed-send-9", "dave@example.org", "<p>Welcome aboard, Dave!</p>", "sent"),
        _email_event("seed-send-9", "bounce", ago(1), "550 5.1.1 mailbox unavailable"),
    ]


def throttled_steps() -> list[Step]:
    """Sent with THROTTLE on, by senders with no earlier slot: each sender's first message goes now (and
    stays `sent`, no receipt yet), its second waits `queued` for the sender's next slot."""
    return [
        _send_sms("seed-send-10", "+14155550123", "Your parcel is out for delivery today.", "sent"),
        _send_sms("seed-send-11", "+14155550123", "P.S. 10% off your next order with THANKS10.", "queued"),
        _send_email("seed-send-12", "carol@example.com", "<p>Your invoice for April.</p>", "sent"),
        _send_email("seed-send-13", "carol@example.com", "<p>How did we do? Rate us.</p>", "queued"),
    ]


Send = Callable[[Step], tuple[int, Any]]


@dataclass
class Outcome:
    step: Step
    status: int
    document: Any

    @property
    def message_status(self) -> str:
        """The status the step left its message in, as the API reported it."""
        if self.step.path == WEBHOOK_ENDPOINTS:
            return "registered" if self.status == 201 else "already registered"
        if self.step.receipt_of:
            results = (
                self.document["results"]
                if isinstance(self.document, dict) and "results" in self.document
                else [self.document]
            )
            return ",".join(result["outcome"] for result in results)
        return self.document.get("status") or ("duplicate" if self.document.get("duplicate") else "received")

    def line(self) -> str:
        if self.status >= 300:
            return f"{self.step.path}: {self.status} {self.document}"
        if self.step.path == WEBHOOK_ENDPOINTS:
            return (
                f"{self.step.path:26} endpoint {self.document['id']:>3} {self.document['url']}  {self.message_status}"
            )
        if self.step.receipt_of:
            return (
                f"{self.step.path:26} receipt of {self.step.receipt_of:13} {self.step.expect:11} {self.message_status}"
            )
        return (
            f"{self.step.path:26} conversation {self.document['conversation_id']:>3}  "
            f"message {self.document['id']:>3}  {self.message_status}"
        )


def play(steps: list[Step], send: Send, sends: dict[str, Any]) -> Iterator[Outcome]:
    """Each step in turn; a receipt is given the provider's id of its send (`sends`: answers by key)."""
    for step in steps:
        if step.receipt_of:
            provider_message_id = (sends.get(step.receipt_of) or {}).get("provider_message_id")
            if not provider_message_id:
                yield Outcome(step, 409, {"error": f"{step.receipt_of} has no provider message id to report on"})
                continue
            step = step.for_send(provider_message_id)
        if step.once_by_url:
            listed = _listed(send, step.path, step.body["url"])
            if listed is not None:
                yield Outcome(step, 200, listed)
                continue
        status, document = send(step)
        if status < 300 and "Idempotency-Key" in step.headers:
            sends[step.headers["Idempotency-Key"]] = document
        yield Outcome(step, status, document)


def _listed(send: Send, path: str, url: str) -> dict[str, Any] | None:
    """The item of the list at `path` whose url is `url` (every page), or None."""
    cursor = None
    while True:
        status, page = send(Step(path + (f"?cursor={cursor}" if cursor else ""), None, method="GET"))
        if status >= 300:
            return None
        found = next((item for item in page["items"] if item["url"] == url), None)
        cursor = page.get("next_cursor")
        if found is not None or not cursor:
            return found


def over_http(base_url: str, step: Step) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - a URL the developer gives
        base_url.rstrip("/") + step.path,
        data=None if step.body is None else json.dumps(step.body).encode(),
        headers={"Content-Type": "application/json", **step.headers},
        method=step.method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def seed_over_http(base_url: str) -> Iterator[Outcome]:
    sends: dict[str, Any] = {}
    yield from play([*demo_steps(), *throttled_steps()], lambda step: over_http(base_url, step), sends)


@contextmanager
def _gateway(application: Any, environment: dict[str, str]) -> Iterator[Send]:
    """The local runner's gateway, its functions' execution environments (worker processes) started with
    `environment` in force: a new gateway is how a setting reaches them."""
    from infra.local_runner.server import Gateway

    os.environ.update(environment)
    gateway = Gateway(application)

    def send(step: Step) -> tuple[int, Any]:
        headers = {"content-type": "application/json", **{name.lower(): value for name, value in step.headers.items()}}
        body = b"" if step.body is None else json.dumps(step.body).encode()
        status, _, payload = gateway.handle(step.method, step.path, headers, body, "127.0.0.1")
        return status, json.loads(payload)

    try:
        yield send
    finally:
        gateway.stop()


def seed_in_process() -> Iterator[Outcome]:
    """The demo through the local runner's gateway over `make run`'s database, providers scripted by FAULTS."""
    os.environ.update(FAULTS)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # the summary says what happened
    from infra.local_runner import template
    from infra.local_runner.environment import prepare

    application = template.load()
    environment = prepare(application)
    sends: dict[str, Any] = {}
    try:
        with _gateway(application, {"SENDER_RATE_PER_SECOND": "0"}) as send:
            yield from play(demo_steps(), send, sends)
        with _gateway(application, THROTTLE) as send:
            yield from play(throttled_steps(), send, sends)
    finally:
        environment.close()


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="send over HTTP to this running server instead of in-process")
    options = parser.parse_args(arguments)
    logging.basicConfig(level=logging.WARNING)
    failures = 0
    for outcome in seed_over_http(options.url) if options.url else seed_in_process():
        failures += outcome.status >= 300
        print(outcome.line(), file=sys.stderr if outcome.status >= 300 else sys.stdout)
    print("open the console: make run, then http://127.0.0.1:8080/console")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
