"""`make seed`: demo data for the console: conversations over SMS, MMS and email, messages in every status.

Every row is written by the service itself, through the same API requests a client would make:
- `python -m infra.seed` (what `make seed` does) sends them in-process through the local runner's gateway,
  to the database `make run` uses (DATABASE_URL, else the embedded one), with the mock providers scripted so
  that sends end `sent`, `failed` (a 400 from the provider) and `retrying` (a 429 asking for 90 s). A running
  `make run` picks the retrying ones up with its sweep after that, so the console shows them turn `sent` live.
  Whether `make run` is running or not makes no difference.
- `python -m infra.seed --url http://127.0.0.1:8080` sends them over HTTP to a running server instead: the
  statuses are then whatever that server's providers answer (start it with `FAULTS` below to get them all).
Idempotent: inbound messages carry fixed provider ids and sends fixed Idempotency-Keys, so a second run adds
nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import HTTPError

OUR_PHONE = "+12025550100"
OUR_EMAIL = "support@example.com"

# Outcomes of the outbound sends below, in order, per provider (SMS and MMS share the SMS provider).
FAULTS = {
    "MOCK_SMS_FAULTS": "ok,ok,400,429",
    "MOCK_EMAIL_FAULTS": "ok,400,429",
    "MOCK_RETRY_AFTER_SECONDS": "90",
}

INBOUND_EMAIL_HTML = (
    "<html><body><p style='font-family:Georgia,serif'>Hello support,</p>"
    "<p>The invoice for <b>March</b> shows the wrong VAT number. Could you fix it?</p>"
    "<script>document.body.innerHTML = 'this script never runs in the console';</script>"
    "<p style='color:#666'>— Alice</p></body></html>"
)


@dataclass
class Step:
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    expect: str = ""  # the status the step should leave its message in (in-process, scripted providers)


def _inbound_sms(sender: str, body: str, provider_id: str, at: datetime, attachments: list[str] | None = None) -> Step:
    payload = {
        "from": sender,
        "to": OUR_PHONE,
        "type": "mms" if attachments else "sms",
        "messaging_provider_id": provider_id,
        "body": body,
        "attachments": attachments,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
    }
    return Step("/api/webhooks/sms", payload, expect="received")


def _send_sms(key: str, to: str, body: str, expect: str, attachments: list[str] | None = None) -> Step:
    payload = {"from": OUR_PHONE, "to": to, "type": "mms" if attachments else "sms", "body": body}
    payload["attachments"] = attachments
    return Step("/api/messages/sms", payload, {"Idempotency-Key": key}, expect)


def _send_email(key: str, to: str, body: str, expect: str, attachments: list[str] | None = None) -> Step:
    payload = {"from": OUR_EMAIL, "to": to, "body": body, "attachments": attachments or []}
    return Step("/api/messages/email", payload, {"Idempotency-Key": key}, expect)


def demo_steps(now: datetime | None = None) -> list[Step]:
    """The demo conversations, oldest first; sends in the order FAULTS scripts their outcomes."""
    now = now or datetime.now(UTC)
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731 - a local shorthand
    return [
        _inbound_sms("+14155550123", "Hi! Has my order #1042 shipped yet?", "seed-sms-1", ago(50)),
        _send_sms("seed-send-1", "+14155550123", "Yes: it left the warehouse this morning.", "sent"),
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
        _inbound_sms("+14155550188", "Thanks, looks lovely!", "seed-sms-2", ago(30)),
        _send_sms("seed-send-3", "+14155550199", "Your appointment is confirmed for Tuesday at 10:00.", "failed"),
        _send_sms("seed-send-4", "+14155550177", "Reminder: your table for 4 is booked at 19:30.", "retrying"),
        Step(
            "/api/webhooks/email",
            {
                "from": "[alice@example.org](mailto:alice@example.org)",
                "to": OUR_EMAIL,
                "xillio_id": "seed-email-1",
                "body": INBOUND_EMAIL_HTML,
                "attachments": ["https://example.com/files/invoice-march.pdf"],
                "timestamp": ago(20).isoformat().replace("+00:00", "Z"),
            },
            expect="received",
        ),
        _send_email(
            "seed-send-5",
            "alice@example.org",
            "<p>Hi Alice, sorry about that: the corrected invoice is attached.</p>",
            "sent",
            ["https://example.com/files/invoice-march-corrected.pdf"],
        ),
        _send_email("seed-send-6", "bob@example.net", "<p>Your password was changed.</p>", "failed"),
        _send_email("seed-send-7", "carol@example.com", "<p>Your weekly report is ready.</p>", "retrying"),
    ]


def over_http(base_url: str, step: Step) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - a URL the developer gives
        base_url.rstrip("/") + step.path,
        data=json.dumps(step.body).encode(),
        headers={"Content-Type": "application/json", **step.headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _in_process() -> tuple[Any, Any]:
    """The local runner's gateway over `make run`'s database, with the providers scripted by FAULTS."""
    for name, value in FAULTS.items():
        os.environ[name] = value
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # the summary below says what happened
    from infra.local_runner import template
    from infra.local_runner.environment import prepare
    from infra.local_runner.server import Gateway

    application = template.load()
    environment = prepare(application)
    gateway = Gateway(application)

    def send(step: Step) -> tuple[int, dict[str, Any]]:
        headers = {"content-type": "application/json", **{name.lower(): value for name, value in step.headers.items()}}
        status, _, payload = gateway.handle("POST", step.path, headers, json.dumps(step.body).encode(), "127.0.0.1")
        return status, json.loads(payload)

    return send, environment


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="send over HTTP to this running server instead of in-process")
    options = parser.parse_args(arguments)
    logging.basicConfig(level=logging.WARNING)
    environment = None
    if options.url:
        url = options.url

        def send(step: Step) -> tuple[int, dict[str, Any]]:
            return over_http(url, step)
    else:
        send, environment = _in_process()
    failures = 0
    try:
        for step in demo_steps():
            status, document = send(step)
            if status >= 300:
                failures += 1
                print(f"{step.path}: {status} {document}", file=sys.stderr)
                continue
            state = document.get("status") or ("duplicate" if document.get("duplicate") else "received")
            print(f"{step.path:22} conversation {document['conversation_id']:>3}  message {document['id']:>3}  {state}")
    finally:
        if environment is not None:
            environment.close()
    print("open the console: make run, then http://127.0.0.1:8080/console")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
