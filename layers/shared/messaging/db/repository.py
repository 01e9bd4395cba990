"""Data access: every SQL statement the service runs lives here. Rows go in and out as domain objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from messaging.db.schema import PENDING_CONDITION, conversations, idempotency_keys, messages
from messaging.domain import (
    PENDING_STATUSES,
    Conversation,
    IdempotencyRecord,
    Message,
    NewMessage,
    StoredMessage,
)
from messaging.enums import MessageStatus
from messaging.grouping import participant_pair

PREVIEW_LENGTH = 140


def _message(row: Row[Any]) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        direction=row.direction,
        type=row.type,
        from_address=row.from_address,
        to_address=row.to_address,
        body=row.body,
        attachments=tuple(row.attachments),
        timestamp=row.message_timestamp,
        status=row.status,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        encoding=row.encoding,
        segments=row.segments,
    )


def _conversation(row: Row[Any]) -> Conversation:
    return Conversation(
        id=row.id,
        participants=(row.participant_a, row.participant_b),
        message_count=row.message_count,
        last_message_at=row.last_message_at,
        last_message_id=row.last_message_id,
        last_message_preview=row.last_message_preview,
        created_at=row.created_at,
    )


def _idempotency_record(row: Row[Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        route=row.route,
        key=row.key,
        request_hash=row.request_hash,
        message_id=row.message_id,
        response_status=row.response_status,
        response_body=row.response_body,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _first_message(rows: Any) -> Message | None:
    row = rows.first()
    return None if row is None else _message(row)


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
                message_timestamp, status, provider, provider_message_id, next_attempt_at,
                encoding, segments
            )
            SELECT new_message.id, conversation.id, CAST(:direction AS text), CAST(:type AS text),
                   CAST(:from_address AS text), CAST(:to_address AS text), CAST(:body AS text),
                   CAST(:attachments AS jsonb), CAST(:timestamp AS timestamptz), CAST(:status AS text),
                   CAST(:provider AS text), CAST(:provider_message_id AS text), CAST(:next_attempt_at AS timestamptz),
                   CAST(:encoding AS text), CAST(:segments AS integer)
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
        "encoding": message.encoding,
        "segments": message.segments,
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


def get_message(connection: Connection, message_id: int) -> Message | None:
    return _first_message(connection.execute(select(messages).where(messages.c.id == message_id)))


def get_conversation(connection: Connection, conversation_id: int) -> Conversation | None:
    row = connection.execute(select(conversations).where(conversations.c.id == conversation_id)).first()
    return None if row is None else _conversation(row)


def list_conversations(connection: Connection, limit: int, before: tuple[datetime, int] | None) -> list[Conversation]:
    """Most recent activity first; keyset on (last_message_at, id) served by ix_conversations_last_activity."""
    query = select(conversations).order_by(conversations.c.last_message_at.desc(), conversations.c.id.desc())
    if before is not None:
        query = query.where(
            text("(conversations.last_message_at, conversations.id) < (:cursor_at, :cursor_id)").bindparams(
                cursor_at=before[0], cursor_id=before[1]
            )
        )
    return [_conversation(row) for row in connection.execute(query.limit(limit))]


def list_messages(
    connection: Connection, conversation_id: int, limit: int, after: tuple[datetime, int] | None
) -> list[Message]:
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
    return [_message(row) for row in connection.execute(query.limit(limit))]


def conversation_exists(connection: Connection, conversation_id: int) -> bool:
    return (
        connection.execute(select(conversations.c.id).where(conversations.c.id == conversation_id)).first() is not None
    )


def ping(connection: Connection) -> None:
    connection.exec_driver_sql("SELECT 1")


# The outcomes of a provider attempt. Each counts the attempt and applies only to a pending send, so a
# status never moves backwards; None means the message was no longer pending (another worker settled it).


def mark_sent(connection: Connection, message_id: int, provider_message_id: str) -> Message | None:
    """The provider accepted the send."""
    return _record_attempt(
        connection,
        message_id,
        status=MessageStatus.SENT.value,
        provider_message_id=provider_message_id,
        next_attempt_at=None,
        last_error=None,
    )


def schedule_retry(connection: Connection, message_id: int, delay_seconds: float, error: str) -> Message | None:
    """The attempt failed but may succeed later: due again `delay_seconds` from now (the database's clock)."""
    return _record_attempt(
        connection,
        message_id,
        status=MessageStatus.RETRYING.value,
        next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, delay_seconds),
        last_error=error,
    )


def mark_failed(connection: Connection, message_id: int, error: str) -> Message | None:
    """The provider never accepted the send, and no attempt is left."""
    return _record_attempt(
        connection, message_id, status=MessageStatus.FAILED.value, next_attempt_at=None, last_error=error
    )


def _record_attempt(connection: Connection, message_id: int, **values: Any) -> Message | None:
    statement = (
        update(messages)
        .where(messages.c.id == message_id, messages.c.status.in_([status.value for status in PENDING_STATUSES]))
        .values(attempts=messages.c.attempts + 1, updated_at=text("now()"), **values)
        .returning(*messages.c)
    )
    return _first_message(connection.execute(statement))


_CLAIM_DUE_SEND = text(
    _compact(
        f"""
    UPDATE messages SET next_attempt_at = now() + make_interval(secs => :lease_seconds), updated_at = now()
    WHERE id = :message_id AND {PENDING_CONDITION}
      AND (next_attempt_at IS NULL OR next_attempt_at <= now() + make_interval(secs => :tolerance_seconds))
    RETURNING *
    """
    )
)

_CLAIM_OVERDUE_SENDS = text(
    _compact(
        f"""
    UPDATE messages SET next_attempt_at = now() + make_interval(secs => :lease_seconds), updated_at = now()
    WHERE id IN (
        SELECT id FROM messages
        WHERE {PENDING_CONDITION}
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
) -> Message | None:
    """Take a pending message whose attempt is due, leasing it so no other worker attempts it now."""
    return _first_message(
        connection.execute(
            _CLAIM_DUE_SEND,
            {"message_id": message_id, "lease_seconds": lease_seconds, "tolerance_seconds": tolerance_seconds},
        )
    )


def claim_overdue_sends(connection: Connection, grace_seconds: float, lease_seconds: float, limit: int) -> list[int]:
    """Lease pending messages whose attempt is overdue (their retry was lost or never enqueued)."""
    rows = connection.execute(
        _CLAIM_OVERDUE_SENDS, {"grace_seconds": grace_seconds, "lease_seconds": lease_seconds, "limit": limit}
    )
    return [row.id for row in rows]


def claim_idempotency_key(
    connection: Connection, route: str, key: str, request_hash: str, ttl_seconds: int
) -> IdempotencyRecord | None:
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
    row = connection.execute(statement).first()
    return None if row is None else _idempotency_record(row)


def find_idempotency_key(connection: Connection, route: str, key: str) -> IdempotencyRecord | None:
    row = connection.execute(
        select(idempotency_keys).where(idempotency_keys.c.route == route, idempotency_keys.c.key == key)
    ).first()
    return None if row is None else _idempotency_record(row)


def link_idempotency_key(connection: Connection, route: str, key: str, message_id: int) -> None:
    """The key's request created this message."""
    _update_idempotency_key(connection, route, key, message_id=message_id)


def remember_idempotent_response(
    connection: Connection, route: str, key: str, status_code: int, body: dict[str, Any]
) -> None:
    """The answer a twin request with this key replays."""
    _update_idempotency_key(connection, route, key, response_status=status_code, response_body=body)


def _update_idempotency_key(connection: Connection, route: str, key: str, **values: Any) -> None:
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
