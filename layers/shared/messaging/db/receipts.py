"""Provider delivery receipts: recorded once, applied to their message, or held until the message is known.

A receipt names a provider message id, and usually the client reference our send gave the provider (our
message id, echoed back). It finds its message by the provider id first; when no message carries that id
yet and a reference is given, by the reference: an outbound message of that provider with no provider id
recorded (a send whose answer was lost: an attempt that timed out, or a `failed` verdict the provider
contradicts). The receipt then records the provider id, moves the message forward
(`queued`/`retrying`/`sent`/`failed` -> `delivered`/`undelivered`) and writes the history row, all in one
statement. When neither finds a message (no reference, or the provider called back before our own `sent`
update committed), the receipt is stored as held (`applied_at` NULL); recording the provider id on the
message applies it (see `repository.mark_sent`), and the sweep applies any held receipt whose message
appeared while the receipt itself was being written. An email receipt keeps the provider's name of the
event, so applying a held bounce or spam report suppresses as a live one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from messaging.db.events import history_rows, remember_written
from messaging.db.statements import compact, status_list
from messaging.domain import PENDING_STATUSES
from messaging.enums import MessageStatus

# The statuses a receipt may move a message from. `failed` is there on purpose: only a provider's receipt
# may correct our verdict that it never accepted a message, and the correction is an event like any other.
RECEIPT_MAY_MOVE = status_list((*PENDING_STATUSES, MessageStatus.SENT, MessageStatus.FAILED))


@dataclass(frozen=True)
class ReceiptOutcome:
    """`duplicate`: already recorded; `held`: no message carries the provider id yet; `applied`: the message
    moved; `ignored`: its message was already final (an out-of-order or second verdict)."""

    outcome: str
    message_id: int | None = None
    previous_status: str | None = None
    to_address: str | None = None  # the message's recipient (a bounce suppresses it): no second read


@dataclass(frozen=True)
class AppliedEmailEvent:
    """A held email provider event (bounce, spamreport, ...), applied now to the message it names."""

    provider_event: str
    detail: str | None


def applied_email_events(
    provider_events: list[str] | None, details: list[str | None] | None
) -> list[AppliedEmailEvent]:
    """The held email events a statement applied, from its two parallel arrays."""
    return [
        AppliedEmailEvent(event, detail) for event, detail in zip(provider_events or [], details or [], strict=True)
    ]


# The target: by provider id, else by client reference; never another provider's message, an inbound one,
# or one that carries a different provider id.
_RECORD_RECEIPT = text(
    compact(
        f"""
        WITH known AS (
            SELECT id FROM messages
            WHERE provider = CAST(:provider AS text) AND provider_message_id = CAST(:provider_message_id AS text)
        ), target AS (
            SELECT id, status, to_address FROM messages
            WHERE id = COALESCE((SELECT id FROM known), CAST(:client_reference AS bigint))
              AND provider = CAST(:provider AS text) AND direction = 'outbound'
              AND (provider_message_id IS NULL OR provider_message_id = CAST(:provider_message_id AS text))
            FOR UPDATE
        ), receipt AS (
            INSERT INTO provider_receipts (
                provider, dedup_key, provider_message_id, status, detail, reported_at, provider_event, message_id,
                applied_at
            )
            SELECT CAST(:provider AS text), CAST(:dedup_key AS text), CAST(:provider_message_id AS text),
                   CAST(:status AS text), CAST(:detail AS text), CAST(:reported_at AS timestamptz),
                   CAST(:provider_event AS text),
                   (SELECT id FROM target), CASE WHEN EXISTS (SELECT 1 FROM target) THEN now() END
            ON CONFLICT (provider, dedup_key) DO NOTHING
            RETURNING id
        ), moved AS (
            UPDATE messages AS m
            SET status = CAST(:status AS text), status_detail = CAST(:detail AS text), next_attempt_at = NULL,
                provider_message_id = CAST(:provider_message_id AS text), updated_at = now()
            FROM target, receipt
            WHERE m.id = target.id AND target.status IN {RECEIPT_MAY_MOVE}
            RETURNING m.id, m.conversation_id, m.attempts, target.status AS previous_status
        ), {history_rows(status="CAST(:status AS text)", detail="CAST(:detail AS text)", source="'receipt'")}
        SELECT (SELECT id FROM receipt) AS receipt_id, (SELECT id FROM target) AS message_id,
               (SELECT to_address FROM target) AS to_address,
               (SELECT previous_status FROM moved) AS previous_status, (SELECT id FROM events) AS event_id,
               (SELECT awaiting_relay FROM events) AS awaiting_relay
        """
    )
)


def record_receipt(
    connection: Connection,
    *,
    provider: str,
    dedup_key: str,
    provider_message_id: str,
    status: str,
    detail: str | None,
    reported_at: datetime,
    provider_event: str | None = None,
    client_reference: int | None = None,
) -> ReceiptOutcome:
    """Record one receipt and apply it to its message when there is one: one statement. `provider_event`: an
    email event's own name, kept on a held receipt for when it is applied. `client_reference`: the message id
    our send gave the provider, as the receipt echoes it (None when it does not)."""
    row = connection.execute(
        _RECORD_RECEIPT,
        {
            "provider": provider,
            "dedup_key": dedup_key,
            "provider_message_id": provider_message_id,
            "status": status,
            "detail": detail,
            "reported_at": reported_at,
            "provider_event": provider_event,
            "client_reference": client_reference,
        },
    ).one()
    remember_written(connection, [row.awaiting_relay])
    if row.receipt_id is None:
        return ReceiptOutcome("duplicate", row.message_id, to_address=row.to_address)
    if row.message_id is None:
        return ReceiptOutcome("held")
    if row.event_id is None:
        return ReceiptOutcome("ignored", row.message_id, to_address=row.to_address)
    return ReceiptOutcome("applied", row.message_id, row.previous_status, row.to_address)


# A held receipt whose provider id a message now carries: the race in which the receipt and our `sent`
# update were written at the same time, each unable to see the other's uncommitted row.
_APPLY_ONE_HELD = text(
    compact(
        f"""
        WITH receipt AS (
            SELECT r.id, r.status, r.detail, r.provider_event, m.id AS message_id, m.to_address,
                   m.status AS message_status
            FROM provider_receipts AS r
            JOIN messages AS m ON m.provider = r.provider AND m.provider_message_id = r.provider_message_id
                              AND m.direction = 'outbound'
            WHERE r.applied_at IS NULL
            ORDER BY r.id
            LIMIT 1
            FOR UPDATE OF r, m SKIP LOCKED
        ), claimed AS (
            UPDATE provider_receipts AS r SET applied_at = now(), message_id = receipt.message_id
            FROM receipt WHERE r.id = receipt.id
            RETURNING r.id
        ), moved AS (
            UPDATE messages AS m
            SET status = receipt.status, status_detail = receipt.detail, next_attempt_at = NULL, updated_at = now()
            FROM receipt
            WHERE m.id = receipt.message_id AND receipt.message_status IN {RECEIPT_MAY_MOVE}
            RETURNING m.id, m.conversation_id, m.attempts, m.status, m.status_detail,
                      receipt.message_status AS previous_status
        ), {history_rows(detail="status_detail", source="'receipt'")}
        SELECT (SELECT id FROM claimed) AS receipt_id, (SELECT id FROM events) AS event_id,
               (SELECT awaiting_relay FROM events) AS awaiting_relay, (SELECT message_id FROM receipt) AS message_id,
               (SELECT to_address FROM receipt) AS to_address, (SELECT provider_event FROM receipt) AS provider_event,
               (SELECT detail FROM receipt) AS detail
        """
    )
)


@dataclass(frozen=True)
class AppliedHeldReceipt:
    """A held receipt just applied: its message, whose recipient an email event may suppress."""

    message_id: int
    to_address: str
    email_events: list[AppliedEmailEvent]


def apply_one_held_receipt(connection: Connection) -> AppliedHeldReceipt | None:
    """Apply the oldest held receipt whose message is now known. None when there is none."""
    row = connection.execute(_APPLY_ONE_HELD).one()
    remember_written(connection, [row.awaiting_relay])
    if row.receipt_id is None:
        return None
    events = [] if row.provider_event is None else [AppliedEmailEvent(row.provider_event, row.detail)]
    return AppliedHeldReceipt(row.message_id, row.to_address, events)


_PURGE_STALE_HELD = text(
    compact(
        """
        DELETE FROM provider_receipts WHERE id IN (
            SELECT id FROM provider_receipts
            WHERE applied_at IS NULL AND received_at < now() - make_interval(secs => :older_than_seconds)
            LIMIT :limit FOR UPDATE SKIP LOCKED
        )
        """
    )
)


def purge_stale_held_receipts(connection: Connection, older_than_seconds: float, limit: int = 1000) -> int:
    """Forget held receipts no message ever claimed (ids we never sent, kept long enough to rule out a race)."""
    return connection.execute(_PURGE_STALE_HELD, {"older_than_seconds": older_than_seconds, "limit": limit}).rowcount
