"""Data access: every SQL statement the service runs lives here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from messaging.db.schema import conversations, idempotency_keys, messages
from messaging.grouping import participant_pair

PREVIEW_LENGTH = 140


@dataclass(frozen=True)
class NewMessage:
    direction: str
    type: str
    from_address: str
    to_address: str
    body: str
    attachments: list[str]
    timestamp: datetime
    status: str
    provider: str
    provider_message_id: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    created: bool


def _compact(sql: str) -> str:
    """One line: the driver scans every statement character by character on each execution."""
    return " ".join(sql.split())


# One statement: reserve the message id, upsert the conversation with its summary already folded in
# (the upsert locks the row, so one pair's messages are serialized and concurrent first messages make one
# conversation), then insert the message. A repeated provider message id inserts nothing and returns the
# original row; the caller then rolls back, undoing the summary change (the deferred foreign key from
# conversations.last_message_id would refuse the commit anyway).
#
# The summary's last message is the last in the messages list's own order, (timestamp, id), so the
# conversation and the last item of its list always agree. Comparing timestamps alone is not enough: the id
# comes from nextval before the upsert waits for the row lock, so of two messages with one timestamp the
# later lock holder may carry the smaller id.
_NEWER_THAN_LAST = (
    "(EXCLUDED.last_message_at, EXCLUDED.last_message_id) > (c.last_message_at, COALESCE(c.last_message_id, 0))"
)
_STORE_MESSAGE = text(
    _compact(
        f"""
        WITH new_message AS MATERIALIZED (
            SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id
        ), conversation AS (
            INSERT INTO conversations AS c (
                participant_a, participant_b, message_count, last_message_at, last_message_id, last_message_preview
            )
            SELECT CAST(:participant_a AS text), CAST(:participant_b AS text), 1, CAST(:timestamp AS timestamptz),
                   new_message.id, left(CAST(:body AS text), {PREVIEW_LENGTH})
            FROM new_message
            ON CONFLICT (participant_a, participant_b) DO UPDATE SET
                message_count = c.message_count + 1,
                last_message_at = GREATEST(c.last_message_at, EXCLUDED.last_message_at),
                last_message_id = CASE WHEN {_NEWER_THAN_LAST}
                                       THEN EXCLUDED.last_message_id ELSE c.last_message_id END,
                last_message_preview = CASE WHEN {_NEWER_THAN_LAST}
                                            THEN EXCLUDED.last_message_preview ELSE c.last_message_preview END
            RETURNING c.id
        ), inserted AS (
            INSERT INTO messages (
                id, conversation_id, direction, type, from_address, to_address, body, attachments,
                message_timestamp, status, provider, provider_message_id, next_attempt_at
            )
            SELECT new_message.id, conversation.id, CAST(:direction AS text), CAST(:type AS text),
                   CAST(:from_address AS text), CAST(:to_address AS text), CAST(:body AS text),
                   CAST(:attachments AS jsonb), CAST(:timestamp AS timestamptz), CAST(:status AS text),
                   CAST(:provider AS text), CAST(:provider_message_id AS text), CAST(:next_attempt_at AS timestamptz)
            FROM new_message, conversation
            ON CONFLICT (provider, provider_message_id) DO NOTHING
            RETURNING id, conversation_id
        )
        SELECT id, conversation_id, true AS created FROM inserted
        UNION ALL
        SELECT id, conversation_id, false AS created FROM messages
        WHERE provider = CAST(:provider AS text) AND provider_message_id = CAST(:provider_message_id AS text)
          AND NOT EXISTS (SELECT 1 FROM inserted)
        """
    )
).bindparams(bindparam("attachments", type_=JSONB))


def store_message(connection: Connection, message: NewMessage) -> StoredMessage:
    """Find or create the conversation of the pair, insert the message and update the conversation's
    summary: one statement. `created` is False for a repeated provider message id; the caller must then
    roll back."""
    pair = participant_pair(message.from_address, message.to_address)
    parameters = {
        "participant_a": pair.first,
        "participant_b": pair.second,
        "direction": message.direction,
        "type": message.type,
        "from_address": message.from_address,
        "to_address": message.to_address,
        "body": message.body,
        "attachments": message.attachments,
        "timestamp": message.timestamp,
        "status": message.status,
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "next_attempt_at": message.next_attempt_at,
    }
    row = connection.execute(_STORE_MESSAGE, parameters).first()
    if row is None:
        # A twin with this provider id committed after this statement's snapshot was taken.
        row = connection.execute(
            select(messages.c.id, messages.c.conversation_id).where(
                messages.c.provider == message.provider,
                messages.c.provider_message_id == message.provider_message_id,
            )
        ).one()
        return StoredMessage(id=row.id, conversation_id=row.conversation_id, created=False)
    return StoredMessage(id=row.id, conversation_id=row.conversation_id, created=row.created)


def get_message(connection: Connection, message_id: int) -> RowMapping | None:
    return connection.execute(select(messages).where(messages.c.id == message_id)).mappings().first()


def get_conversation(connection: Connection, conversation_id: int) -> RowMapping | None:
    return connection.execute(select(conversations).where(conversations.c.id == conversation_id)).mappings().first()


def list_conversations(connection: Connection, limit: int, before: tuple[datetime, int] | None) -> list[RowMapping]:
    """Most recent activity first; keyset on (last_message_at, id) served by ix_conversations_last_activity."""
    query = select(conversations).order_by(conversations.c.last_message_at.desc(), conversations.c.id.desc())
    if before is not None:
        query = query.where(
            text("(conversations.last_message_at, conversations.id) < (:cursor_at, :cursor_id)").bindparams(
                cursor_at=before[0], cursor_id=before[1]
            )
        )
    return list(connection.execute(query.limit(limit)).mappings())


def list_messages(
    connection: Connection, conversation_id: int, limit: int, after: tuple[datetime, int] | None
) -> list[RowMapping]:
    """Chronological; keyset on (message_timestamp, id) served by ix_messages_conversation_timeline."""
    query = (
        select(messages)
        .where(messages.c.conversation_id == conversation_id)
        .order_by(messages.c.message_timestamp, messages.c.id)
    )
    if after is not None:
        query = query.where(
            text("(messages.message_timestamp, messages.id) > (:cursor_at, :cursor_id)").bindparams(
                cursor_at=after[0], cursor_id=after[1]
            )
        )
    return list(connection.execute(query.limit(limit)).mappings())


def conversation_exists(connection: Connection, conversation_id: int) -> bool:
    return (
        connection.execute(select(conversations.c.id).where(conversations.c.id == conversation_id)).first() is not None
    )


def ping(connection: Connection) -> None:
    connection.exec_driver_sql("SELECT 1")


def update_message(
    connection: Connection, message_id: int, expected_statuses: tuple[str, ...], **values: Any
) -> RowMapping | None:
    """Move a message forward only from one of the expected statuses (a status never moves backwards)."""
    statement = (
        update(messages)
        .where(messages.c.id == message_id, messages.c.status.in_(expected_statuses))
        .values(updated_at=text("now()"), **values)
        .returning(*messages.c)
    )
    return connection.execute(statement).mappings().first()


_CLAIM_DUE_SEND = text(
    _compact(
        """
    UPDATE messages SET next_attempt_at = now() + make_interval(secs => :lease_seconds), updated_at = now()
    WHERE id = :message_id AND status IN ('queued', 'retrying')
      AND (next_attempt_at IS NULL OR next_attempt_at <= now() + make_interval(secs => :tolerance_seconds))
    RETURNING *
    """
    )
)

_CLAIM_OVERDUE_SENDS = text(
    _compact(
        """
    UPDATE messages SET next_attempt_at = now() + make_interval(secs => :lease_seconds), updated_at = now()
    WHERE id IN (
        SELECT id FROM messages
        WHERE status IN ('queued', 'retrying')
          AND next_attempt_at < now() - make_interval(secs => :grace_seconds)
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
    )
)


def claim_due_send(
    connection: Connection, message_id: int, lease_seconds: float, tolerance_seconds: float = 1.0
) -> RowMapping | None:
    """Take a queued/retrying message whose attempt is due, leasing it so no other worker attempts it now."""
    return (
        connection.execute(
            _CLAIM_DUE_SEND,
            {"message_id": message_id, "lease_seconds": lease_seconds, "tolerance_seconds": tolerance_seconds},
        )
        .mappings()
        .first()
    )


def claim_overdue_sends(connection: Connection, grace_seconds: float, lease_seconds: float, limit: int) -> list[int]:
    """Lease queued/retrying messages whose attempt is overdue (their retry was lost or never enqueued)."""
    rows = connection.execute(
        _CLAIM_OVERDUE_SENDS, {"grace_seconds": grace_seconds, "lease_seconds": lease_seconds, "limit": limit}
    )
    return [row.id for row in rows]


def claim_idempotency_key(
    connection: Connection, route: str, key: str, request_hash: str, ttl_seconds: int
) -> RowMapping | None:
    """Insert the key (expired twins are replaced). None means a live twin exists: read it with find_idempotency_key.

    A concurrent twin blocks on the primary key until this transaction ends, so only one request per key
    ever creates a message.
    """
    connection.execute(
        idempotency_keys.delete().where(
            idempotency_keys.c.route == route,
            idempotency_keys.c.key == key,
            idempotency_keys.c.expires_at < func.now(),
        )
    )
    statement = (
        pg_insert(idempotency_keys)
        .values(
            route=route,
            key=key,
            request_hash=request_hash,
            expires_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, ttl_seconds),
        )
        .on_conflict_do_nothing(index_elements=["route", "key"])
        .returning(*idempotency_keys.c)
    )
    return connection.execute(statement).mappings().first()


def find_idempotency_key(connection: Connection, route: str, key: str) -> RowMapping | None:
    return (
        connection.execute(
            select(idempotency_keys).where(idempotency_keys.c.route == route, idempotency_keys.c.key == key)
        )
        .mappings()
        .first()
    )


def update_idempotency_key(connection: Connection, route: str, key: str, **values: Any) -> None:
    connection.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.route == route, idempotency_keys.c.key == key)
        .values(**values)
    )


_PURGE_EXPIRED_KEYS = text(
    _compact(
        """
    DELETE FROM idempotency_keys WHERE (route, key) IN (
        SELECT route, key FROM idempotency_keys WHERE expires_at < now() LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    """
    )
)


def purge_expired_idempotency_keys(connection: Connection, limit: int = 1000) -> int:
    return connection.execute(_PURGE_EXPIRED_KEYS, {"limit": limit}).rowcount
