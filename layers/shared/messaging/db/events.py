"""The contract between code that writes history rows and the relay that publishes them (the outbox).

Every repository function that inserts `message_events` rows hands the new rows' ids to `remember_written`
on the connection it used; after the commit, `messaging.db.engine.transaction` publishes them to EventQueue
(best effort: the sweep relays whatever this misses), so feature code never has to remember to publish
(see WAVE2 and DESIGN.md §1, §4). A rolled-back transaction forgets them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, text
from sqlalchemy.exc import SQLAlchemyError

from messaging.domain import OutboxEvent, Suppression

WRITTEN_EVENT_IDS = "written_event_ids"

# What an insert into message_events returns for the publisher: the new row's id while it awaits the
# dispatcher, or null when no enabled endpoint subscribed to its type as it was written. Such a row is
# recorded relayed by the insert itself (migration 0009's trigger): the dispatcher would create no delivery
# for it, so neither EventQueue nor the sweep need see it, and a webhook pays no queue call for it.
AWAITING_RELAY = "CASE WHEN relayed_at IS NULL THEN id END"


def history_rows(*, detail: str, source: str, status: str = "status", event_type: str | None = None) -> str:
    """The CTE `events` of a statement that moves messages: one history row per row of its CTE `moved` (which
    returns the message's id, conversation_id, attempts, previous_status, and status unless `status` is
    given), returning each new row's id and AWAITING_RELAY. The arguments are SQL expressions: the row's
    detail, its source, its status, and its type (`'message.' || <status>` unless given)."""
    event_type = event_type or f"'message.' || {status}"
    return f"""
        events AS (
            INSERT INTO message_events (
                type, message_id, conversation_id, status, previous_status, attempt, detail, source
            )
            SELECT {event_type}, id, conversation_id, {status}, previous_status, attempts, {detail}, {source}
            FROM moved
            RETURNING id, {AWAITING_RELAY} AS awaiting_relay
        )"""


def remember_written(connection: Connection, ids: Iterable[int]) -> None:
    """Note history rows this connection's transaction inserted (ids of `message_events`)."""
    written = [int(event_id) for event_id in ids if event_id is not None]
    if written:
        connection.info.setdefault(WRITTEN_EVENT_IDS, []).extend(written)


def written(connection: Connection) -> list[int]:
    """The ids noted so far on this connection (in insertion order)."""
    return list(connection.info.get(WRITTEN_EVENT_IDS, []))


def start_unit_of_work(connection: Connection) -> list[int]:
    """A fresh list for this transaction (connection.info outlives it: it belongs to the pooled connection)."""
    written: list[int] = []
    connection.info[WRITTEN_EVENT_IDS] = written
    return written


def forget_written(connection: Connection) -> None:
    """On rollback: the rows are gone, so are their ids (cleared in place: the unit of work holds the list)."""
    try:
        written = connection.info.get(WRITTEN_EVENT_IDS)
    except SQLAlchemyError:
        return  # an invalidated connection: its transaction is failing, so nothing gets published anyway
    if written:
        written.clear()


def suppression_snapshot(suppression: Suppression) -> dict[str, Any]:
    """A suppression as a recipient.* event keeps it (message_events.suppression): the event outlives it."""
    return {
        "id": suppression.id,
        "address": suppression.address,
        "sender": suppression.sender,
        "source": suppression.source,
        "reason": suppression.reason,
        "created_at": suppression.created_at.isoformat(),
    }


def _suppression_of(snapshot: dict[str, Any] | None) -> Suppression | None:
    if snapshot is None:
        return None
    return Suppression(**{**snapshot, "created_at": datetime.fromisoformat(snapshot["created_at"])})


def _event(row: Row[Any]) -> OutboxEvent:
    return OutboxEvent(
        id=row.id,
        type=row.type,
        message_id=row.message_id,
        conversation_id=row.conversation_id,
        status=row.status,
        occurred_at=row.occurred_at,
        suppression=_suppression_of(row.suppression),
    )


_RECORD_EVENT = text(
    "INSERT INTO message_events (type, message_id, conversation_id, status, previous_status, detail, source) "
    "VALUES (:type, :message_id, :conversation_id, :status, :previous_status, :detail, :source) "
    f"RETURNING id, {AWAITING_RELAY} AS awaiting_relay"
)


def record_event(
    connection: Connection,
    *,
    type: str,
    source: str,
    message_id: int | None = None,
    conversation_id: int | None = None,
    status: str | None = None,
    previous_status: str | None = None,
    detail: str | None = None,
) -> int:
    """Write one event on its own (events that belong to a status change are folded into that statement)."""
    row = connection.execute(
        _RECORD_EVENT,
        {
            "type": type,
            "message_id": message_id,
            "conversation_id": conversation_id,
            "status": status,
            "previous_status": previous_status,
            "detail": detail,
            "source": source,
        },
    ).one()
    remember_written(connection, [row.awaiting_relay])
    return int(row.id)


# The dispatcher received the event: it has been relayed, whoever enqueued it. Set in the transaction
# that creates the event's deliveries, so "relayed" always means "its deliveries exist".
_TAKE_EVENT = text(
    "UPDATE message_events SET relayed_at = coalesce(relayed_at, now()) WHERE id = :event_id "
    "RETURNING id, type, message_id, conversation_id, status, occurred_at, suppression"
)


def take_event(connection: Connection, event_id: int) -> OutboxEvent | None:
    """None: no such event (it went with its message or conversation: the foreign keys cascade)."""
    row = connection.execute(_TAKE_EVENT, {"event_id": event_id}).first()
    return None if row is None else _event(row)


_FIND_UNRELAYED = text(
    "SELECT id FROM message_events WHERE relayed_at IS NULL"
    " AND occurred_at < now() - make_interval(secs => :grace_seconds) ORDER BY id LIMIT :limit"
)


def find_unrelayed_events(connection: Connection, grace_seconds: float, limit: int) -> list[int]:
    """Events the dispatcher has not received yet, though they were written a while ago (the enqueue after
    commit failed, the process died first, or the queue lost the record). They stay unrelayed until the
    dispatcher takes them (`take_event`, in the same transaction as their deliveries), so whatever
    happens to a queue record the event is offered again: at least once, never lost."""
    rows = connection.execute(_FIND_UNRELAYED, {"grace_seconds": grace_seconds, "limit": limit})
    return [row.id for row in rows]
