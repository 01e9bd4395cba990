"""Suppressions, the locks that make "check, then store or send" race-free, and per-sender send slots.

The lock protocol (README "Keywords and suppressions"): whoever adds a suppression for an address holds
an exclusive transaction-scoped advisory lock on the address until it commits; every send holds the
shared lock on its recipient while it checks and stores, and again while it checks and hands the message
to the provider. So a suppression that has committed is seen by every later check, and it cannot commit
while a send that passed its check is still on its way to the provider.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, literal_column, select, text

from messaging.db.events import AWAITING_RELAY, remember_written, suppression_snapshot
from messaging.db.schema import message_events, sender_slots, suppressions
from messaging.db.statements import compact
from messaging.domain import Suppression

# The advisory-lock namespace of recipient addresses (the first key of the two-key form).
_ADDRESS_LOCK_SPACE = 1_396_920_147  # "SUPS"


def _suppression(row: Row[Any]) -> Suppression:
    return Suppression(
        id=row.id,
        address=row.address,
        sender=row.sender,
        source=row.source,
        reason=row.reason,
        created_at=row.created_at,
    )


def lock_address(connection: Connection, address: str, *, exclusive: bool) -> None:
    """Take the address's lock until the transaction ends. A separate statement from the check that follows:
    under READ COMMITTED a statement sees what committed before it started, so a check folded into the
    locking statement could miss a suppression that committed while it waited for the lock."""
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    connection.execute(
        text(f"SELECT {function}(:space, hashtext(:address))"), {"space": _ADDRESS_LOCK_SPACE, "address": address}
    )


_BLOCKING = text(
    compact(
        """
    SELECT * FROM suppressions
    WHERE address = :address AND (sender IS NULL OR sender = :sender)
      AND NOT EXISTS (
          SELECT 1 FROM suppressions AS confirmed
          WHERE confirmed.address = :address AND confirmed.confirmation_message_id = CAST(:message_id AS bigint)
      )
    ORDER BY id LIMIT 1
    """
    )
)


def blocking_suppression(
    connection: Connection, address: str, sender: str, message_id: int | None = None
) -> Suppression | None:
    """The suppression that forbids `sender` to send to `address`, if any. A message that is the
    confirmation of an opt-out (its id recorded on the suppression) is never blocked."""
    row = connection.execute(_BLOCKING, {"address": address, "sender": sender, "message_id": message_id}).first()
    return None if row is None else _suppression(row)


_ADD = text(
    compact(
        """
    INSERT INTO suppressions AS s (address, sender, source, reason, confirmation_message_id)
    VALUES (:address, :sender, :source, :reason, CAST(:confirmation_message_id AS bigint))
    ON CONFLICT (address, sender) DO UPDATE
        SET confirmation_message_id = COALESCE(EXCLUDED.confirmation_message_id, s.confirmation_message_id)
    RETURNING *, (xmax = 0) AS created
    """
    )
)


def add_suppression(
    connection: Connection,
    address: str,
    sender: str | None,
    source: str,
    reason: str | None,
    confirmation_message_id: int | None = None,
) -> tuple[Suppression, bool]:
    """Suppress; an existing entry for (address, sender) is kept as it is (only a newer STOP confirmation
    is recorded on it). Returns the entry and whether it is new."""
    row = connection.execute(
        _ADD,
        {
            "address": address,
            "sender": sender,
            "source": source,
            "reason": reason,
            "confirmation_message_id": confirmation_message_id,
        },
    ).one()
    return _suppression(row), bool(row.created)


def lift_for_sender(connection: Connection, address: str, sender: str) -> Suppression | None:
    """Remove the (address, sender) entry, whatever its source; recipient-wide entries stay."""
    row = connection.execute(
        delete(suppressions)
        .where(suppressions.c.address == address, suppressions.c.sender == sender)
        .returning(*suppressions.c)
    ).first()
    return None if row is None else _suppression(row)


def delete_suppression(connection: Connection, suppression_id: int) -> Suppression | None:
    row = connection.execute(
        delete(suppressions).where(suppressions.c.id == suppression_id).returning(*suppressions.c)
    ).first()
    return None if row is None else _suppression(row)


def get_suppression(connection: Connection, suppression_id: int) -> Suppression | None:
    row = connection.execute(select(suppressions).where(suppressions.c.id == suppression_id)).first()
    return None if row is None else _suppression(row)


def list_suppressions(
    connection: Connection, address: str | None, limit: int, before_id: int | None
) -> list[Suppression]:
    """Newest first by id; keyset on id. Not created_at: that is its transaction's start, so an entry whose
    transaction began before a page was read but committed after could sort behind a cursor already handed
    out and never be listed. An id is drawn at the insert itself, which narrows that window to the insert's
    own commit (and the index on (address, id) serves the address filter in this order)."""
    query = select(suppressions).order_by(suppressions.c.id.desc())
    if address is not None:
        query = query.where(suppressions.c.address == address)
    if before_id is not None:
        query = query.where(suppressions.c.id < before_id)
    return [_suppression(row) for row in connection.execute(query.limit(limit))]


def record_suppression_event(
    connection: Connection,
    event_type: str,
    suppression: Suppression,
    source: str,
    *,
    message_id: int | None = None,
    conversation_id: int | None = None,
) -> int:
    """A recipient.opted_out / opted_in row of the history (and outbox), in the caller's transaction. It keeps
    the suppression as it is now: the event's `data`, rendered after an opt-in has deleted the row."""
    detail = suppression.address if suppression.sender is None else f"{suppression.address} from {suppression.sender}"
    row = connection.execute(
        message_events.insert()
        .values(
            type=event_type,
            message_id=message_id,
            conversation_id=conversation_id,
            detail=detail,
            source=source,
            suppression_id=suppression.id,
            suppression=suppression_snapshot(suppression),
        )
        .returning(message_events.c.id, literal_column(AWAITING_RELAY).label("awaiting_relay"))
    ).one()
    remember_written(connection, [row.awaiting_relay])
    return int(row.id)


# A new send's slot: the sender's next free planned instant, never closer than 1/rate to the latest hand-off
# (a late retry may have gone after the planned slots). A slot that is already due is handed off at once by
# the caller (the first attempt), so it is recorded as the latest hand-off in the same statement.
_RESERVE_SLOT = text(
    compact(
        """
    WITH clock AS (SELECT clock_timestamp() AS now)
    INSERT INTO sender_slots AS s (sender, next_free_at, handed_off_at)
    SELECT :sender, clock.now + make_interval(secs => :spacing), clock.now FROM clock
    ON CONFLICT (sender) DO UPDATE
        SET next_free_at = GREATEST(
                s.next_free_at, EXCLUDED.handed_off_at, s.handed_off_at + make_interval(secs => :spacing)
            ) + make_interval(secs => :spacing),
            handed_off_at = CASE
                WHEN GREATEST(s.next_free_at, s.handed_off_at + make_interval(secs => :spacing))
                     <= EXCLUDED.handed_off_at
                THEN EXCLUDED.handed_off_at ELSE s.handed_off_at END
    RETURNING s.next_free_at - make_interval(secs => :spacing) AS slot, (SELECT now FROM clock) AS now
    """
    )
)


def reserve_sender_slot(connection: Connection, sender: str, spacing_seconds: float) -> tuple[datetime, datetime]:
    """The next free instant of `sender`'s timeline, taken: (that slot, the database's time now). The row
    lock serializes one sender's sends until commit; other senders have timelines of their own."""
    row = connection.execute(_RESERVE_SLOT, {"sender": sender, "spacing": spacing_seconds}).one()
    return row.slot, row.now


_LOCK_HANDOFFS = text(
    compact(
        """
    INSERT INTO sender_slots (sender, next_free_at) VALUES (:sender, clock_timestamp())
    ON CONFLICT (sender) DO UPDATE SET sender = EXCLUDED.sender
    RETURNING handed_off_at, clock_timestamp() AS now
    """
    )
)


def lock_handoffs(connection: Connection, sender: str) -> tuple[datetime | None, datetime]:
    """Lock `sender`'s timeline until commit: (its latest hand-off, the database's time now). The upsert
    locks the row whether or not it existed (a sender throttled only since its message was stored)."""
    row = connection.execute(_LOCK_HANDOFFS, {"sender": sender}).one()
    return row.handed_off_at, row.now


def record_handoff(connection: Connection, sender: str, at: datetime) -> None:
    connection.execute(sender_slots.update().where(sender_slots.c.sender == sender).values(handed_off_at=at))


def set_confirmation(connection: Connection, suppression_id: int, message_id: int) -> None:
    connection.execute(
        suppressions.update().where(suppressions.c.id == suppression_id).values(confirmation_message_id=message_id)
    )
