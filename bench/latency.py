"""Warm latency of each route, in-process, against a bare single-row insert-and-commit through the same
driver (pg8000 via SQLAlchemy Core) on the same database, measured interleaved in the same run."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text

from bench.common import Figure, Report, handler, median, percentile, scratch_database
from bench.common import event as sample

_ids = itertools.count(1)


def bare_insert(url: str) -> Callable[[], None]:
    from messaging.db.engine import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(url), pool_size=1)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS bench_bare (value text NOT NULL)"))
    statement = text("INSERT INTO bench_bare (value) VALUES (:value)")

    def insert() -> None:
        with engine.begin() as connection:
            connection.execute(statement, {"value": "x"})

    return insert


Action = tuple[Callable[[], Any], Callable[[Any], Any]]
"""What one timed request is: a request builder (not timed) and the call to time."""


def routes() -> dict[str, Action]:
    inbound_sms, inbound_email = handler("InboundSmsFunction"), handler("InboundEmailFunction")
    send, read = handler("SendMessageFunction"), handler("ConversationsFunction")
    return {
        "POST /api/webhooks/sms": (
            lambda: sample("inbound_sms-sms", messaging_provider_id=f"s{next(_ids)}"),
            inbound_sms,
        ),
        "POST /api/webhooks/email": (lambda: sample("inbound_email-email", xillio_id=f"e{next(_ids)}"), inbound_email),
        "POST /api/messages/sms": (lambda: sample("send_message-sms"), send),
        "POST /api/messages/email": (lambda: sample("send_message-email"), send),
        "GET /api/conversations": (lambda: sample("conversations-list"), read),
        "GET /api/conversations/1/messages": (lambda: sample("conversations-messages"), read),
        "GET /api/messages/1": (lambda: sample("conversations-message"), read),
    }


def measure(report: Report, requests: int = 400) -> float:
    """Returns the bare insert-and-commit median in milliseconds (the HTTP benchmark's baseline too)."""
    with scratch_database("latency") as url:
        insert = bare_insert(url)
        # The event is built outside the timed call (it is the client's work, not the function's).
        actions: dict[str, Action] = {"bare insert+commit": (lambda: None, lambda _: insert()), **routes()}
        for build, call in actions.values():
            for _ in range(20):
                call(build())
        samples: dict[str, list[float]] = {name: [] for name in actions}
        chunk = 20
        for _ in range(requests // chunk):
            for name, (build, call) in actions.items():
                for _ in range(chunk):
                    request = build()
                    started = time.perf_counter()
                    call(request)
                    samples[name].append((time.perf_counter() - started) * 1000)
        bare = median(samples.pop("bare insert+commit"))
        report.add(Figure("latency", "bare insert+commit p50 (baseline)", bare, "ms"))
        for name, values in samples.items():
            p50, p99 = median(values), percentile(values, 0.99)
            is_webhook = name.startswith("POST /api/webhooks")
            report.add(
                Figure(
                    "latency",
                    f"{name} p50",
                    p50,
                    "ms",
                    bare,
                    "<=1.5x" if is_webhook else "",
                    p50 <= 1.5 * bare if is_webhook else None,
                )
            )
            report.add(Figure("latency", f"{name} p99", p99, "ms", bare))
        return bare
