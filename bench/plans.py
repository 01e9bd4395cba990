"""Capturing the service's own SQL and EXPLAINing it: the hot queries must use index scans, no sort."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def captured_statements() -> Iterator[list[tuple[str, Any]]]:
    """(statement, parameters) of everything the service's engine executes inside the block."""
    from messaging.db.engine import get_engine

    engine = get_engine()
    captured: list[tuple[str, Any]] = []

    def capture(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield captured
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def explain(action: Callable[[], Any], *, seqscan: bool = True) -> list[dict[str, Any]]:
    """Run `action`, then EXPLAIN ANALYZE each query it sent (SELECT, WITH, UPDATE; in a transaction that is
    rolled back); returns one summary per statement."""
    from messaging.db.engine import get_engine

    with captured_statements() as statements:
        action()
    summaries = []
    raw = get_engine().raw_connection()
    try:
        cursor = raw.cursor()
        if not seqscan:
            # On the tests' small tables every plan costs next to nothing and the planner's pick among
            # equivalents wavers; with sequential and bitmap scans off it shows the ordered index scan it
            # would use at scale (bench/scale.py measures that at 1M messages with nothing turned off).
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_bitmapscan = off")
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE")):
                continue
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            document = cursor.fetchone()[0]
            plan = (json.loads(document) if isinstance(document, str) else document)[0]
            nodes = list(_nodes(plan["Plan"]))
            summaries.append(
                {
                    "statement": " ".join(statement.split())[:160],
                    "node_types": [node["Node Type"] for node in nodes],
                    "indexes": sorted({node["Index Name"] for node in nodes if "Index Name" in node}),
                    "execution_ms": plan["Execution Time"],
                    "planning_ms": plan.get("Planning Time"),
                }
            )
        cursor.execute("RESET enable_seqscan")
    finally:
        raw.rollback()
        raw.close()
    return summaries


def uses_indexes_only(summary: dict[str, Any]) -> bool:
    kinds = set(summary["node_types"])
    return "Sort" not in kinds and "Seq Scan" not in kinds and bool(summary["indexes"])
