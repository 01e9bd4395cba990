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


def routes() -> dict[str, Callable[[], Any]]:
    inbound_sms, inbound_email = handler("InboundSmsFunction"), handler("InboundEmailFunction")
    send, read = handler("SendMessageFunction"), handler("ConversationsFunction")
    return {
        "POST /api/webhooks/sms": lambda: inbound_sms(
            sample("inbound_sms-sms", messaging_provider_id=f"s{next(_ids)}")
        ),
        "POST /api/webhooks/email": lambda: inbound_email(sample("inbound_email-email", xillio_id=f"e{next(_ids)}")),
        "POST /api/messages/sms": lambda: send(sample("send_message-sms")),
        "POST /api/messages/email": lambda: send(sample("send_message-email")),
        "GET /api/conversations": lambda: read(sample("conversations-list")),
        "GET /api/conversations/1/messages": lambda: read(sample("conversations-messages")),
        "GET /api/messages/1": lambda: read(sample("conversations-message")),
    }


def measure(report: Report, requests: int = 400) -> float:
    """Returns the bare insert-and-commit median in milliseconds (the HTTP benchmark's baseline too)."""
    with scratch_database("latency") as url:
        insert = bare_insert(url)
        actions = routes()
        for action in [insert, *actions.values()]:
            for _ in range(20):
                action()
        samples: dict[str, list[float]] = {name: [] for name in ["bare insert+commit", *actions]}
        chunk = 20
        for _ in range(requests // chunk):
            for name, action in [("bare insert+commit", insert), *actions.items()]:
                for _ in range(chunk):
                    started = time.perf_counter()
                    action()
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
