"""A short soak: a realistic mix at a fixed arrival rate through `python -m infra.local_runner`, then a check
that nothing answered 2xx was lost or stored twice.

The mix (weights in MIX): signed inbound SMS/MMS and email webhooks, SMS/MMS and email sends to mock
providers that fail some calls (429, 500, timeouts: retried through SQS) and later post their own signed
receipts, SMS receipts and email events the harness posts itself for provider ids its sends were answered
with, and page reads (conversations, a conversation's messages, a search). Unique provider ids per
webhook; email sends go to unique recipients (a bounce or spam report suppresses its recipient, which
would turn later sends to it into 422s).

Open loop: request i is due at start + i / rate whatever the answers before it; a request waits for one of
CONNECTIONS keep-alive connections, and its latency counts from its due time, so a slow server shows up
in the percentiles instead of slowing the offered load (no coordinated omission).

After the load, a drain (at most BENCH_SOAK_DRAIN_SECONDS) polls the API until no accepted send is
`queued` or `retrying`. Then, from the database: every webhook answered 2xx stored exactly once (by
provider id), every send answered 2xx stored exactly once and settled (sent, delivered, undelivered,
failed after its retries) or still pending with a next attempt; nothing delivered to the mock provider
twice. `lost` and `doubled` are figures whose target is 0.

The runner runs with the mocks' faults and receipts below, fast retries and a 2 s sweep so retries settle
within the drain, webhook secrets set (every webhook is signed, the mocks' receipts too), and is pinned
to core 0 as in the http phase (`http_load.start_runner`): the load client has the other core. Before the
timed load, a warm-up starts every execution environment (cold starts on that core during the load would
otherwise dominate the percentiles). The default rate is what that core sustains comfortably: this mix costs
the runner about 35 ms of CPU a request (the most of it in the runner's own process: the HTTP front, the
queue pollers and the embedded SQS), so 60/s saturates it and latencies grow for as long as the load lasts.

Knobs: BENCH_SOAK_SECONDS (load duration, default 60; 0 skips the phase in `bench.run`), BENCH_SOAK_RATE
(requests per second offered, default 20), BENCH_SOAK_CONNECTIONS (default 16), BENCH_SOAK_DRAIN_SECONDS
(default 60). Alone: `python -m bench.soak`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from bench.common import Figure, Report, configure_environment, percentile, scratch_database
from bench.common import event as sample
from bench.http_load import connect, free_port, read_reply, request, start_runner

SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "60"))
RATE = float(os.environ.get("BENCH_SOAK_RATE", "20"))
CONNECTIONS = int(os.environ.get("BENCH_SOAK_CONNECTIONS", "16"))
DRAIN_SECONDS = float(os.environ.get("BENCH_SOAK_DRAIN_SECONDS", "60"))
REQUEST_TIMEOUT_SECONDS = 30.0
SEED = 7
WARM_UP_PAUSE_SECONDS = 3.0

SMS_SECRET = "soak-sms-secret"  # noqa: S105 - a scratch runner's webhook secrets
EMAIL_SECRET = "soak-email-secret"  # noqa: S105

RUNNER_ENVIRONMENT = {
    "MOCK_SMS_FAULTS": "429=0.1,500=0.05,timeout=0.02",
    "MOCK_EMAIL_FAULTS": "429=0.1,500=0.05",
    "MOCK_SMS_RECEIPTS": "delivered=0.9,undelivered=0.1",
    "MOCK_EMAIL_RECEIPTS": "delivered=0.9,bounce=0.05,spamreport=0.05",
    "MOCK_RECEIPT_DELAY_SECONDS": "0.5",
    "MOCK_RETRY_AFTER_SECONDS": "0.5",
    "MOCK_PROVIDER_SEED": str(SEED),
    "RETRY_BASE_SECONDS": "0.2",
    "RETRY_MAX_SECONDS": "2",
    "SWEEP_INTERVAL_SECONDS": "2",
    "SWEEP_GRACE_SECONDS": "5",
    "SMS_WEBHOOK_SECRETS": SMS_SECRET,
    "EMAIL_WEBHOOK_SECRETS": EMAIL_SECRET,
}

# Route and weight: about a third inbound webhooks, a quarter sends, a sixth receipts, a quarter reads.
MIX = {
    "webhook sms": 20,
    "webhook email": 10,
    "send sms": 15,
    "send email": 10,
    "receipt sms": 8,
    "events email": 4,
    "page conversations": 12,
    "page messages": 12,
    "search messages": 9,
}
WORDS = ("invoice", "meeting", "delivery", "thanks", "tomorrow", "question", "update", "schedule")
SETTLED = {"sent", "delivered", "undelivered", "failed"}
PENDING = {"queued", "retrying"}


@dataclass
class Outcome:
    route: str
    status: int  # 0: no answer (connection error or timeout)
    latency_ms: float


@dataclass
class Harness:
    """Builds each request from what earlier answers told it, and remembers what was accepted."""

    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    serial: int = 0
    inbound_accepted: dict[str, str] = field(default_factory=dict)  # provider id -> route
    sends_accepted: dict[int, str] = field(default_factory=dict)  # message id -> body
    sms_provider_ids: list[str] = field(default_factory=list)
    email_provider_ids: list[str] = field(default_factory=list)
    conversation_ids: list[int] = field(default_factory=list)

    def build(self, route: str) -> tuple[bytes, Any]:
        """The request for `route`, and what to remember if it is answered 2xx."""
        self.serial += 1
        n, word = self.serial, self.rng.choice(WORDS)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        contact = f"+1804555{1000 + n % 500:04d}"
        if route == "webhook sms":
            kind = "mms" if n % 5 == 0 else "sms"
            body = _body(
                "inbound_sms-mms" if kind == "mms" else "inbound_sms-sms",
                **{"from": contact, "messaging_provider_id": f"soak-sms-{n}", "body": f"{word} inbound {n}"},
                timestamp=now,
            )
            return _signed("/api/webhooks/sms", body, SMS_SECRET), f"soak-sms-{n}"
        if route == "webhook email":
            body = _body(
                "inbound_email-email",
                **{
                    "from": f"contact{n % 500}@example.com",
                    "xillio_id": f"soak-email-{n}",
                    "body": f"<p>{word} {n}</p>",
                },
                timestamp=now,
            )
            return _signed("/api/webhooks/email", body, EMAIL_SECRET), f"soak-email-{n}"
        if route == "send sms":
            kind = "mms" if n % 5 == 0 else "sms"
            changes: dict[str, Any] = {"to": contact, "type": kind, "body": f"{word} soak send {n}", "timestamp": now}
            if kind == "mms":
                changes["attachments"] = ["https://example.com/image.jpg"]
            return request("POST", "/api/messages/sms", _body("send_message-sms", **changes)), None
        if route == "send email":
            body = _body("send_message-email", to=f"soak{n}@example.com", body=f"{word} soak send {n}", timestamp=now)
            return request("POST", "/api/messages/email", body), None
        if route == "receipt sms":
            # A provider id the harness's sends were answered with (none yet: one no message claims; it is held).
            provider_id = self.rng.choice(self.sms_provider_ids) if self.sms_provider_ids else f"mock-sms-soak-{n}"
            body = _body("inbound_sms-status", messaging_provider_id=provider_id, status="delivered", timestamp=now)
            return _signed("/api/webhooks/sms/status", body, SMS_SECRET), None
        if route == "events email":
            provider_id = self.rng.choice(self.email_provider_ids) if self.email_provider_ids else f"mock-email-{n}"
            events = [{"event_id": f"soak-evt-{n}", "xillio_id": provider_id, "event": "delivered", "timestamp": now}]
            return _signed("/api/webhooks/email/events", json.dumps(events).encode(), EMAIL_SECRET), None
        if route == "page conversations":
            return request("GET", "/api/conversations?limit=50"), None
        if route == "page messages":
            conversation = self.rng.choice(self.conversation_ids) if self.conversation_ids else 1
            return request("GET", f"/api/conversations/{conversation}/messages?limit=50"), None
        if route == "search messages":
            return request("GET", f"/api/messages?q={word}&limit=50"), None
        raise ValueError(route)

    def accepted(self, route: str, remember: Any, document: Any) -> None:
        if route.startswith("webhook"):
            self.inbound_accepted[remember] = route
            self.conversation_ids.append(int(document["conversation_id"]))
        elif route.startswith("send"):
            self.sends_accepted[int(document["id"])] = document["body"]
            self.conversation_ids.append(int(document["conversation_id"]))
            if document.get("provider_message_id"):
                ids = self.email_provider_ids if route == "send email" else self.sms_provider_ids
                ids.append(document["provider_message_id"])


@cache
def _sample_body(name: str) -> dict[str, Any]:
    return dict(json.loads(sample(name)["body"]))


def _body(name: str, **changes: Any) -> bytes:
    return json.dumps({**_sample_body(name), **changes}).encode()


def _signed(path: str, body: bytes, secret: str) -> bytes:
    """A POST of `body` with the provider's signature headers (messaging.signatures)."""
    from messaging.signatures import signature_headers

    head, separator, payload = request("POST", path, body).partition(b"\r\n\r\n")
    extra = "".join(f"{name}: {value}\r\n" for name, value in signature_headers(secret, body).items())
    return head + b"\r\n" + extra.encode().rstrip(b"\r\n") + separator + payload


class Pool:
    """CONNECTIONS keep-alive connections; a request waits for a free one (that wait is part of its latency)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(CONNECTIONS):
            self.free.put_nowait(await connect(self.port))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        connection = await self.free.get()
        try:
            if connection is None:
                connection = await connect(self.port)
            reader, writer = connection
            writer.write(request)
            reply = await asyncio.wait_for(read_reply(reader), REQUEST_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            if connection is not None:
                connection[1].close()
            self.free.put_nowait(None)  # reconnect on next use
            raise
        self.free.put_nowait(connection)
        return reply

    def close(self) -> None:
        while not self.free.empty():
            connection = self.free.get_nowait()
            if connection is not None:
                connection[1].close()


async def _warm_up(port: int, harness: Harness, rounds: int = 2) -> None:
    """Route by route, CONNECTIONS requests at once, `rounds` times: the runner starts every execution
    environment (a worker process each, half a second of CPU to start) the load may need, before it is timed;
    the sends' retries, receipts and events start the queue consumers'. Then a pause for those to finish."""
    pool = Pool(port)
    await pool.open()

    async def one(route: str) -> None:
        request, remember = harness.build(route)
        try:
            status, body = await pool.exchange(request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return
        if 200 <= status < 300 and route.startswith(("webhook", "send")):
            harness.accepted(route, remember, json.loads(body))

    for _ in range(rounds):
        for route in MIX:
            await asyncio.gather(*(one(route) for _ in range(CONNECTIONS)))
    pool.close()
    await asyncio.sleep(WARM_UP_PAUSE_SECONDS)


async def _offer(port: int, harness: Harness, seconds: float, rate: float) -> tuple[list[Outcome], float]:
    """The open-loop load: every request at its due time; returns the outcomes and the seconds until the last."""
    pool = Pool(port)
    await pool.open()
    loop = asyncio.get_running_loop()
    routes, weights = list(MIX), list(MIX.values())
    schedule = random.Random(SEED + 1)
    outcomes: list[Outcome] = []

    async def fire(route: str, due: float) -> None:
        request, remember = harness.build(route)
        try:
            status, body = await pool.exchange(request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            outcomes.append(Outcome(route, 0, (loop.time() - due) * 1000))
            return
        outcomes.append(Outcome(route, status, (loop.time() - due) * 1000))
        if 200 <= status < 300 and route.startswith(("webhook", "send")):
            harness.accepted(route, remember, json.loads(body))

    start = loop.time() + 0.1
    tasks = []
    for index in range(round(seconds * rate)):
        due = start + index / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(schedule.choices(routes, weights)[0], due)))
    await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_SECONDS + 5)
    elapsed = loop.time() - start
    pool.close()
    return outcomes, elapsed


async def _drain(port: int, deadline: float) -> bool:
    """Poll the API until no outbound message is queued or retrying (True) or the deadline passes (False)."""
    pool = Pool(port)
    pool.free.put_nowait(None)
    try:
        while True:
            pending = 0
            for status in PENDING:
                code, body = await pool.exchange(
                    request("GET", f"/api/messages?direction=outbound&status={status}&limit=1")
                )
                pending += code != 200 or bool(json.loads(body)["items"])
            if not pending:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(1)
    finally:
        pool.close()


@dataclass
class Check:
    lost: int = 0
    doubled: int = 0
    settled: int = 0
    pending: int = 0
    retried: int = 0  # sends that took more than one attempt (the faults at work)
    statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def _check(harness: Harness) -> Check:
    """What the database holds of everything answered 2xx."""
    from sqlalchemy import text

    from messaging.db.engine import get_engine

    check = Check()
    with get_engine().connect() as connection:
        inbound: dict[str, int] = {
            provider_id: count
            for provider_id, count in connection.execute(
                text(
                    "SELECT provider_message_id, count(*) FROM messages WHERE direction = 'inbound' "
                    "AND provider_message_id = ANY(:ids) GROUP BY provider_message_id"
                ),
                {"ids": list(harness.inbound_accepted)},
            )
        }
        sends = {
            row.id: row
            for row in connection.execute(
                text("SELECT id, body, status, attempts, next_attempt_at FROM messages WHERE id = ANY(:ids)"),
                {"ids": list(harness.sends_accepted)},
            )
        }
        bodies = list(harness.sends_accepted.values())
        stored_twice = connection.execute(
            text(
                "SELECT count(*) - count(DISTINCT body) FROM messages WHERE direction = 'outbound' "
                "AND body = ANY(:bodies)"
            ),
            {"bodies": bodies},
        ).scalar_one()
        delivered_twice = connection.execute(
            text("SELECT count(*) - count(DISTINCT body) FROM mock_provider_deliveries WHERE body = ANY(:bodies)"),
            {"bodies": bodies},
        ).scalar_one()
    for provider_id in harness.inbound_accepted:
        count = inbound.get(provider_id, 0)
        if count == 0:
            check.lost += 1
            check.problems.append(f"webhook {provider_id} answered 2xx, not stored")
        check.doubled += max(0, count - 1)
    for message_id, body in harness.sends_accepted.items():
        row = sends.get(message_id)
        if row is None or row.body != body:
            check.lost += 1
            check.problems.append(f"send {message_id} answered 2xx, not stored")
            continue
        check.statuses[row.status] += 1
        check.retried += row.attempts > 1
        if row.status in SETTLED:
            check.settled += 1
        elif row.status in PENDING and row.next_attempt_at is not None:
            check.pending += 1
        else:
            check.lost += 1  # stranded: pending with no next attempt
            check.problems.append(f"send {message_id} is {row.status} with no next attempt")
    check.doubled += int(stored_twice) + int(delivered_twice)
    if stored_twice or delivered_twice:
        check.problems.append(f"sends stored twice: {stored_twice}; delivered to the provider twice: {delivered_twice}")
    return check


@contextmanager
def _runner_environment() -> Iterator[None]:
    """RUNNER_ENVIRONMENT in os.environ while the runner starts (`start_runner` passes os.environ on), and no
    SQS endpoint: the runner starts an embedded SQS of its own."""
    names = [*RUNNER_ENVIRONMENT, "SQS_ENDPOINT_URL"]
    saved = {name: os.environ.get(name) for name in names}
    os.environ.pop("SQS_ENDPOINT_URL", None)
    os.environ.update(RUNNER_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure(report: Report, seconds: float = SECONDS, rate: float = RATE) -> None:
    harness = Harness()
    with scratch_database("soak") as database_url:
        port = free_port()
        with _runner_environment():
            runner = start_runner(database_url, port)
        try:
            asyncio.run(_warm_up(port, harness))  # its webhooks and sends are checked too, not timed
            outcomes, elapsed = asyncio.run(_offer(port, harness, seconds, rate))
            drain_started = time.monotonic()
            drained = asyncio.run(_drain(port, drain_started + DRAIN_SECONDS))
            drain_seconds = time.monotonic() - drain_started
            check = _check(harness)
        finally:
            runner.terminate()
            runner.wait(timeout=30)
    _report(report, outcomes, elapsed, seconds, rate, check, drained, drain_seconds)


def _report(
    report: Report,
    outcomes: list[Outcome],
    elapsed: float,
    seconds: float,
    rate: float,
    check: Check,
    drained: bool,
    drain_seconds: float,
) -> None:
    answered = [outcome for outcome in outcomes if outcome.status]
    achieved = len(answered) / elapsed
    offered = round(seconds * rate) / seconds
    report.add(Figure("soak", "offered rate (fixed arrivals, baseline)", offered, "/s"))
    report.add(
        Figure(
            "soak",
            f"achieved rate ({CONNECTIONS} connections, {seconds:.0f} s)",
            achieved,
            "/s",
            offered,
            ">=0.95x",
            achieved >= 0.95 * offered,
            f"{len(answered)} of {len(outcomes)} answered in {elapsed:.1f} s",
        )
    )
    routes: dict[str, Any] = {}
    for route in MIX:
        mine = [outcome for outcome in outcomes if outcome.route == route]
        if not mine:
            continue
        latencies = [outcome.latency_ms for outcome in mine]
        errors = Counter(outcome.status for outcome in mine if not 200 <= outcome.status < 300)
        route_rate, p50, p99 = len(mine) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99)
        non_2xx = {str(status): count for status, count in sorted(errors.items())}
        routes[route] = {"requests": len(mine), "rate": route_rate, "p50_ms": p50, "p99_ms": p99, "non_2xx": non_2xx}
        note = f"errors={sum(errors.values())} {non_2xx}"
        report.add(Figure("soak", f"{route}: rate", route_rate, "/s", note=note))
        report.add(Figure("soak", f"{route}: p50", p50, "ms"))
        report.add(Figure("soak", f"{route}: p99", p99, "ms"))
    refused = Counter(outcome.status for outcome in outcomes if not 200 <= outcome.status < 300)
    report.add(
        Figure(
            "soak",
            "non-2xx answers (0: no answer)",
            sum(refused.values()),
            "",
            note=", ".join(f"{status}: {count}" for status, count in sorted(refused.items())),
        )
    )
    report.add(Figure("soak", "lost (answered 2xx, missing or stranded)", check.lost, "", None, "=0", check.lost == 0))
    report.add(Figure("soak", "doubled (stored or delivered twice)", check.doubled, "", None, "=0", check.doubled == 0))
    sends = sum(check.statuses.values())
    report.add(
        Figure(
            "soak",
            "accepted sends settled after the drain",
            100 * check.settled / sends if sends else 100.0,
            "%",
            note=f"{check.pending} pending with a next attempt; drained={drained} in {drain_seconds:.1f} s",
        )
    )
    report.details["soak"] = {
        "seconds": seconds,
        "offered_rate": offered,
        "connections": CONNECTIONS,
        "runner_environment": RUNNER_ENVIRONMENT,
        "routes": routes,
        "non_2xx": {str(status): count for status, count in sorted(refused.items())},
        "send_statuses": dict(check.statuses),
        "sends_retried": check.retried,
        "drained": drained,
        "drain_seconds": round(drain_seconds, 1),
        "problems": check.problems[:20],
    }


def main() -> int:
    configure_environment()
    report = Report()
    measure(report)
    print(report.table())
    print(json.dumps(report.details["soak"], indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
