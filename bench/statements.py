"""Work per request: SQL statements each request sends, counted with SQLAlchemy's cursor events."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from bench.common import Figure, Report, handler, scratch_database
from bench.common import event as sample

_ids = itertools.count(1)


@contextmanager
def counting() -> Iterator[list[str]]:
    """Statements sent through the service's engine (the commit counted as one)."""
    from messaging.db.engine import get_engine

    engine = get_engine()
    statements: list[str] = []

    def on_execute(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    def on_commit(connection: Any) -> None:
        statements.append("COMMIT")

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def count(action: Callable[[], Any]) -> list[str]:
    with counting() as statements:
        action()
    return statements


def requests() -> dict[str, Callable[[], dict[str, Any]]]:
    inbound_sms, send, read = (
        handler("InboundSmsFunction"),
        handler("SendMessageFunction"),
        handler("ConversationsFunction"),
    )
    return {
        "inbound webhook (new conversation)": lambda: inbound_sms(
            sample("inbound_sms-sms", messaging_provider_id=f"n-{next(_ids)}", to=f"+1415555{next(_ids) % 10000:04d}")
        ),
        "inbound webhook (existing conversation)": lambda: inbound_sms(
            sample("inbound_sms-sms", messaging_provider_id=f"e-{next(_ids)}")
        ),
        "send (happy path)": lambda: send(sample("send_message-sms")),
        "page: conversation messages": lambda: read(sample("conversations-messages")),
        "page: conversation list": lambda: read(sample("conversations-list")),
        "read: one message": lambda: read(sample("conversations-message")),
        "read: a message's history": lambda: read(sample("conversations-message-events")),
        "delivery receipt (id not recorded yet: held)": lambda: inbound_sms(
            sample("inbound_sms-status", messaging_provider_id=f"mock-sms-held-{next(_ids)}")
        ),
        "delivery receipt (applied)": _applied_receipt(send, inbound_sms),
    }


def _applied_receipt(
    send: Callable[[dict[str, Any]], dict[str, Any]], inbound_sms: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    """A receipt for a message just sent (the send happens first, outside the count of the receipt)."""
    import json

    def prepared() -> Callable[[], dict[str, Any]]:
        provider_message_id = json.loads(send(sample("send_message-sms"))["body"])["provider_message_id"]
        return lambda: inbound_sms(sample("inbound_sms-status", messaging_provider_id=provider_message_id))

    class Receipt:
        def __call__(self) -> dict[str, Any]:
            return self.ready()

        def prepare(self) -> None:
            self.ready = prepared()

    return Receipt()


def measure(report: Report) -> None:
    with scratch_database("statements"):
        actions = requests()
        for action in actions.values():
            if hasattr(action, "prepare"):
                action.prepare()
            action()  # warm: the engine and the pool exist, as in a warm Lambda
        targets = {
            "inbound webhook (new conversation)": 2,
            "inbound webhook (existing conversation)": 2,
            "page: conversation messages": 2,
            "page: conversation list": 2,
            "read: one message": 1,
            "read: a message's history": 2,
            # The history adds no round trip to a send: its rows are folded into the existing statements
            # (store; the mock provider's ledger; the outcome).
            "send (happy path)": 3,
            "delivery receipt (id not recorded yet: held)": 1,
            "delivery receipt (applied)": 1,
        }
        for name, action in actions.items():
            if hasattr(action, "prepare"):
                action.prepare()
            statements = count(action)
            queries = [statement for statement in statements if statement != "COMMIT"]
            target = targets.get(name)
            report.add(
                Figure(
                    "statements",
                    name,
                    float(len(queries)),
                    "",
                    None,
                    f"<={target}+C" if target else "",
                    len(queries) <= target if target else None,
                    " ".join(statements),
                )
            )
