"""Flat at scale: page reads on a database of 1,000,000 messages over 100,000 conversations against the
same reads on a 1,000-message database, and the plans of the hot queries."""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import unquote

from sqlalchemy import create_engine, text

from bench.common import Figure, Report, handler, median, scratch_database, timed, use_database
from bench.common import event as sample
from bench.plans import explain, uses_indexes_only
from messaging.pagination import encode_cursor

_LOAD = [
    # Conversations first: their last_message_id points at messages inserted below (the key is deferred).
    # Every conversation holds SMS, one in 10 an MMS too; one in 4 is archived.
    """
    INSERT INTO conversations (id, participant_a, participant_b, message_count, last_message_at,
                               last_message_id, last_message_preview, created_at, has_sms, has_mms, archived)
    SELECT c, '+1415' || lpad(c::text, 7, '0'), '+1646' || lpad(c::text, 7, '0'),
           CASE WHEN c = 1 THEN {per} + {deep} ELSE {per} END,
           timestamptz '2024-01-01' + c * interval '1 minute' + (CASE WHEN c = 1 THEN {per} + {deep} ELSE {per} END)
               * interval '1 millisecond',
           CASE WHEN c = 1 THEN {conversations} * {per} + {deep} ELSE c * {per} END,
           'message ' || c, now(), true, c % 10 = 0, c % 4 = 0
    FROM generate_series(1, {conversations}) AS c
    """,
    # Every body says "message"; one message in 10,000 mentions an invoice (a rare word to search for).
    """
    INSERT INTO messages (id, conversation_id, direction, type, from_address, to_address, body, attachments,
                          message_timestamp, status, provider, provider_message_id, search_vector)
    SELECT id, c, 'inbound', CASE WHEN k = 1 AND c % 10 = 0 THEN 'mms' ELSE 'sms' END, a, b, body, '[]'::jsonb,
           at, 'received', 'mock-sms', 'gen-' || id, to_tsvector('simple', body)
    FROM (
        SELECT (c - 1) * {per} + k AS id, c, k, '+1415' || lpad(c::text, 7, '0') AS a,
               '+1646' || lpad(c::text, 7, '0') AS b,
               timestamptz '2024-01-01' + c * interval '1 minute' + k * interval '1 millisecond' AS at,
               'message ' || c || CASE WHEN ((c - 1) * {per} + k) % 10000 = 0 THEN ' invoice' ELSE '' END AS body
        FROM generate_series(1, {conversations}) AS c, generate_series(1, {per}) AS k
    ) AS generated
    """,
    # Conversation 1 is long, for deep cursor pages.
    """
    INSERT INTO messages (id, conversation_id, direction, type, from_address, to_address, body, attachments,
                          message_timestamp, status, provider, provider_message_id, search_vector)
    SELECT {conversations} * {per} + k, 1, 'outbound', 'sms', '+16460000001', '+14150000001',
           'reply ' || k, '[]'::jsonb,
           timestamptz '2024-01-01' + interval '1 minute' + ({per} + k) * interval '1 millisecond',
           'sent', 'mock-sms', NULL, to_tsvector('simple', 'reply ' || k)
    FROM generate_series(1, {deep}) AS k
    """,
    "SELECT setval(pg_get_serial_sequence('messages', 'id'), (SELECT max(id) FROM messages))",
    "SELECT setval(pg_get_serial_sequence('conversations', 'id'), (SELECT max(id) FROM conversations))",
]


def load(database_url: str, conversations: int, per_conversation: int, deep: int) -> float:
    """Generate the rows in the database itself (generate_series): no client round trip per row."""
    from messaging.db.engine import sqlalchemy_url

    loader = create_engine(sqlalchemy_url(database_url), connect_args={"timeout": 900})
    sizes = {"conversations": int(conversations), "per": int(per_conversation), "deep": int(deep)}
    started = time.perf_counter()
    try:
        with loader.begin() as connection:
            for statement in _LOAD:
                connection.execute(text(statement.format(**sizes)))
        with loader.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE conversations"))
            connection.execute(text("VACUUM ANALYZE messages"))
    finally:
        loader.dispose()
    return time.perf_counter() - started


def _with_query(name: str, query: str) -> dict[str, Any]:
    document = sample(name)
    document["rawQueryString"] = query
    pairs = (pair.split("=", 1) for pair in query.split("&"))
    document["queryStringParameters"] = {key: unquote(value) for key, value in pairs}
    return document


def _reads(conversations: int, per_conversation: int, deep: int) -> dict[str, Any]:
    read = handler("ConversationsFunction")
    deep_position = _message_cursor_in_conversation_1(int(deep * 0.9))
    list_position = _conversation_cursor(conversations // 2)

    with_query = _with_query
    return {
        "messages: first page": lambda: read(with_query("conversations-messages", "limit=50")),
        "messages: deep cursor page": lambda: read(
            with_query("conversations-messages", f"limit=50&cursor={deep_position}")
        ),
        # 20 a page: the small database has 50 conversations, and a deep page must still be a full one.
        "conversations: first page": lambda: read(with_query("conversations-list", "limit=20")),
        "conversations: deep cursor page": lambda: read(
            with_query("conversations-list", f"limit=20&cursor={list_position}")
        ),
        **_filtered_reads(read, with_query, conversations),
    }


def _filtered_reads(read: Any, with_query: Any, conversations: int) -> dict[str, Any]:
    """The filters of issue 14, first and deep pages (a deep page starts halfway down its list)."""
    unarchived = _position(
        "SELECT last_message_at AS at, id FROM conversations WHERE NOT archived "
        "ORDER BY last_message_at DESC, id DESC OFFSET :index LIMIT 1",
        conversations * 3 // 10,
    )
    sms = _position(
        "SELECT last_message_at AS at, id FROM conversations WHERE has_sms "
        "ORDER BY last_message_at DESC, id DESC OFFSET :index LIMIT 1",
        conversations // 2,
    )
    halfway = _position(
        "SELECT message_timestamp AS at, id FROM messages ORDER BY message_timestamp, id OFFSET :index LIMIT 1",
        conversations * 5,
    )
    received = _position(
        "SELECT message_timestamp AS at, id FROM messages WHERE status = 'received' "
        "ORDER BY message_timestamp, id OFFSET :index LIMIT 1",
        conversations * 4,
    )
    pages: dict[str, tuple[str, str]] = {
        "conversations by participant": ("conversations-list", "limit=20&participant=%2B14150000001"),
        # The small database holds 5 conversations with an MMS: pages of 5, full on both.
        "conversations by channel (mms)": ("conversations-list", "limit=5&channel=mms"),
        "conversations by channel (sms)": ("conversations-list", "limit=20&channel=sms"),
        "conversations by channel (sms): deep": ("conversations-list", f"limit=20&channel=sms&cursor={sms}"),
        "conversations not archived": ("conversations-list", "limit=20&archived=false"),
        "conversations not archived: deep": ("conversations-list", f"limit=20&archived=false&cursor={unarchived}"),
        "all messages": ("conversations-find-messages", "limit=50"),
        "all messages: deep": ("conversations-find-messages", f"limit=50&cursor={halfway}"),
        "messages received": ("conversations-find-messages", "limit=50&status=received"),
        "messages received: deep": ("conversations-find-messages", f"limit=50&status=received&cursor={received}"),
        "messages inbound sms": ("conversations-find-messages", "limit=50&direction=inbound&type=sms"),
        "messages inbound sms: deep": (
            "conversations-find-messages",
            f"limit=50&direction=inbound&type=sms&cursor={received}",
        ),
        "messages of type sms (both directions)": ("conversations-find-messages", "limit=50&type=sms"),
        "messages since/until": (
            "conversations-find-messages",
            "limit=50&since=2024-01-01T00:10:00Z&until=2025-01-01T00:00:00Z",
        ),
    }
    return {
        label: (lambda name=name, query=query: read(with_query(name, query))) for label, (name, query) in pages.items()
    }


def _search_reads(read: Any, with_query: Any) -> dict[str, Any]:
    """Full-text search: a rare word (1 message in 10,000) and a word in every message."""
    return {
        f"search q={word}": (lambda word=word: read(with_query("conversations-find-messages", f"limit=50&q={word}")))
        for word in ("invoice", "message", "message%20-invoice")
    }


def _position(sql: str, index: int) -> str:
    from messaging.db.engine import get_engine

    with get_engine().connect() as connection:
        row = connection.execute(text(sql), {"index": index}).one()
    return encode_cursor(row.at, row.id)


def _message_cursor_in_conversation_1(index: int) -> str:
    from messaging.db.engine import get_engine

    with get_engine().connect() as connection:
        row = connection.execute(
            text(
                "SELECT message_timestamp AS at, id FROM messages WHERE conversation_id = 1 "
                "ORDER BY message_timestamp, id OFFSET :index LIMIT 1"
            ),
            {"index": index},
        ).one()
    return encode_cursor(row.at, row.id)


def _conversation_cursor(index: int) -> str:
    from messaging.db.engine import get_engine

    with get_engine().connect() as connection:
        row = connection.execute(
            text(
                "SELECT last_message_at, id FROM conversations ORDER BY last_message_at DESC, id DESC OFFSET :i LIMIT 1"
            ),
            {"i": index},
        ).one()
    return encode_cursor(row.last_message_at, row.id)


def _page_size(label: str, response: dict[str, Any], empty_allowed: bool) -> int:
    items = json.loads(response["body"]).get("items") if response.get("statusCode") == 200 else None
    if items is None or (not items and not empty_allowed):
        raise RuntimeError(f"{label}: expected a page of items, got {response.get('statusCode')}: {response['body']}")
    return len(items)


ROUNDS = 10  # the two databases are timed in turns, so that both see the same moments of a noisy machine


def _prepare(url: str, conversations: int, per: int, deep: int) -> dict[str, Any]:
    use_database(url)
    seconds = load(url, conversations, per, deep)
    reads = _reads(conversations, per, deep)
    searches = _search_reads(handler("ConversationsFunction"), _with_query)
    actions = {**reads, **searches}
    # A refused request (a stale cursor, say) would time nothing; a rare word may match nothing.
    sizes = {label: _page_size(label, action(), empty_allowed=label in searches) for label, action in actions.items()}
    return {
        "url": url,
        "load_seconds": seconds,
        "reads": reads,
        "searches": searches,
        "actions": actions,
        "sizes": sizes,
    }


def _timed_in_turns(databases: dict[str, dict[str, Any]], repeat: int) -> dict[str, dict[str, list[float]]]:
    """Milliseconds of every read on every database, `repeat` each: read by read, the databases take turns
    (ROUNDS chunks each), so both are timed at the same moments of a shared, noisy machine."""
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in databases}
    labels = next(iter(databases.values()))["actions"]
    for _ in range(ROUNDS):
        for label in labels:
            for name, database in databases.items():
                use_database(database["url"])  # a fresh engine: its connection warms up below, untimed
                action = database["actions"][label]
                for _ in range(10):
                    action()
                timings = timed(action, max(1, repeat // ROUNDS))
                samples[name].setdefault(label, []).extend(seconds * 1000 for seconds in timings)
    return samples


def measure(report: Report, repeat: int = 200) -> None:
    scale = int(os.environ.get("BENCH_SCALE", "1000000"))
    large_conversations = max(1, scale // 10)
    with scratch_database("large") as large_url, scratch_database("small") as small_url:
        databases = {
            "large": _prepare(large_url, large_conversations, 10, 20_000),
            "small": _prepare(small_url, 50, 10, 500),  # 1,000 messages, one long conversation
        }
        unequal = {
            label: (size, databases["small"]["sizes"][label])
            for label, size in databases["large"]["sizes"].items()
            if label in databases["large"]["reads"] and size != databases["small"]["sizes"][label]
        }
        if unequal:  # a page of 20 against a page of 5 would compare page sizes, not database sizes
            raise RuntimeError(f"pages of different sizes (large, small): {unequal}")
        samples = _timed_in_turns(databases, repeat)
        use_database(large_url)
        large = databases["large"]
        plans = {label: explain(action) for label, action in large["reads"].items()}
        search_plans = {label: explain(action) for label, action in large["searches"].items()}
    latency = {
        name: {label: median(values) for label, values in by_label.items()} for name, by_label in samples.items()
    }
    large_ms, small_ms = latency["large"], latency["small"]
    messages = large_conversations * 10 + 20_000
    report.add(
        Figure(
            "scale", f"load {messages:,} messages / {large_conversations:,} conversations", large["load_seconds"], "s"
        )
    )
    report.details["plans_large"] = plans
    for label in large["reads"]:
        report.add(
            Figure(
                "scale",
                f"{label}: large vs small",
                large_ms[label],
                "ms",
                small_ms[label],
                "<=1.3x",
                large_ms[label] <= 1.3 * small_ms[label],
            )
        )
    # Full-text search is reported, not compared: its cost follows how many messages hold the words.
    for label in large["searches"]:
        plan = "; ".join(
            ",".join(summary["node_types"]) + " via " + ",".join(summary["indexes"]) for summary in search_plans[label]
        )
        report.add(Figure("search", f"{label} at {messages:,} messages", large_ms[label], "ms", note=plan))
    for label, summaries in plans.items():
        ok = all(uses_indexes_only(summary) for summary in summaries)
        nodes = "; ".join(
            ",".join(summary["node_types"]) + " via " + ",".join(summary["indexes"]) for summary in summaries
        )
        report.add(Figure("plans", f"{label}: index scans, no sort", float(ok), "", None, "1", ok, nodes))
