"""Data access: every SQL statement the service runs lives here. Rows go in and out as domain objects."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from messaging.db.engine import server_sqlstate
from messaging.db.events import AWAITING_RELAY, history_rows, remember_written
from messaging.db.receipts import AppliedEmailEvent, applied_email_events
from messaging.db.schema import (
    AWAITING_RECEIPT_CONDITION,
    MAX_RECEIPT_LOOKUPS,
    PENDING_CONDITION,
    SEARCH_CONFIGURATION,
    conversations,
    idempotency_keys,
    message_events,
    messages,
)
from messaging.db.statements import compact, status_list
from messaging.domain import (
    PENDING_STATUSES,
    Conversation,
    ConversationFilters,
    IdempotencyRecord,
    Message,
    MessageEvent,
    MessageFilters,
    NewMessage,
    StoredMessage,
)
from messaging.enums import Direction, EventSource, MessageStatus, MessageType
from messaging.grouping import participant_pair
from messaging.search_text import searchable_text

# A conversation's preview is the start of the text a reader sees (an email's HTML reduced to its text, as search
# indexes it), never markup, a style sheet or a script's source.
PREVIEW_LENGTH = 140


def _as_is(value: Any) -> Any:
    return value


# What a Message is read from: every column but search_vector, the full-text index's input (as large as
# the body, never shown), which a page read would otherwise fetch and the driver decode, row by row.
_MESSAGE_COLUMNS = tuple(column for column in messages.c if column.name != "search_vector")


def _message(row: Any, instant: Callable[[Any], Any] = _as_is) -> Message:
    """A Message from a row, or from one item of a page built as JSON (instant: its timestamps' reader)."""
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        direction=row["direction"],
        type=row["type"],
        from_address=row["from_address"],
        to_address=row["to_address"],
        body=row["body"],
        attachments=tuple(row["attachments"]),
        timestamp=instant(row["message_timestamp"]),
        status=row["status"],
        provider=row["provider"],
        provider_message_id=row["provider_message_id"],
        attempts=row["attempts"],
        next_attempt_at=instant(row["next_attempt_at"]),
        last_error=row["last_error"],
        status_detail=row["status_detail"],
        created_at=instant(row["created_at"]),
        updated_at=instant(row["updated_at"]),
        encoding=row["encoding"],
        segments=row["segments"],
        resent_from=row["resent_from"],
    )


def _conversation(row: Any, instant: Callable[[Any], Any] = _as_is) -> Conversation:
    return Conversation(
        id=row["id"],
        participants=(row["participant_a"], row["participant_b"]),
        message_count=row["message_count"],
        last_message_at=instant(row["last_message_at"]),
        last_message_id=row["last_message_id"],
        last_message_preview=row["last_message_preview"],
        created_at=instant(row["created_at"]),
        archived=row["archived"],
        unread_count=row["unread_count"],
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
    return None if row is None else _message(row._mapping)


# One statement: reserve the message id, upsert the conversation with its summary already folded in
# (the upsert locks the row, so one pair's messages are serialized and concurrent first messages make one
# conversation), insert the message, and write its history: `message.received` or `message.queued`, after
# `conversation.created` when the pair's conversation is new (xmax = 0: the upsert inserted it).
# A repeated provider message id inserts nothing and returns the original row; the caller then rolls back,
# undoing the summary change (the deferred foreign key from conversations.last_message_id would refuse the
# commit anyway).
#
# The summary's last message is the last in the messages list's own order, (timestamp, id), so the
# conversation and the last item of its list always agree. Comparing timestamps alone is not enough: the id
# comes from nextval before the upsert waits for the row lock, so of two messages with one timestamp the
# later lock holder may carry the smaller id.
_NEWER_THAN_LAST = (
    "(EXCLUDED.last_message_at, EXCLUDED.last_message_id) > (c.last_message_at, COALESCE(c.last_message_id, 0))"
)
# What finding things needs on the conversation row, kept by this same statement (no later scan): the
# channels it holds, archived (a new inbound message un-archives it: someone is writing again), and the
# unread count, the inbound messages after the read horizon (a position in list order; NULL: nothing read).
_FINDING_COLUMNS = "has_sms, has_mms, has_email, unread_count"
_FINDING_VALUES = (
    "CAST(:type AS text) = 'sms', CAST(:type AS text) = 'mms', CAST(:type AS text) = 'email', "
    "CASE WHEN CAST(:direction AS text) = 'inbound' THEN 1 ELSE 0 END"
)
_FINDING_UPDATES = (
    "has_sms = c.has_sms OR EXCLUDED.has_sms, has_mms = c.has_mms OR EXCLUDED.has_mms, "
    "has_email = c.has_email OR EXCLUDED.has_email, "
    "archived = c.archived AND CAST(:direction AS text) <> 'inbound', "
    "unread_count = c.unread_count + CASE WHEN EXCLUDED.unread_count = 1 AND (c.read_through_at IS NULL OR "
    "(EXCLUDED.last_message_at, EXCLUDED.last_message_id) > (c.read_through_at, c.read_through_id)) THEN 1 ELSE 0 END"
)
# Raised (migration 0011's messaging_abort) by a store that is its own transaction when a twin committed meanwhile.
TWIN_COMMITTED_MEANWHILE = "MS001"
_SEARCH_VECTOR = f"to_tsvector('{SEARCH_CONFIGURATION}', CAST(:search_text AS text))"
_STORE_MESSAGE = text(
    compact(
        f"""
        WITH new_message AS MATERIALIZED (
            SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id
        ), conversation AS (
            INSERT INTO conversations AS c (
                participant_a, participant_b, message_count, last_message_at, last_message_id, last_message_preview,
                {_FINDING_COLUMNS}
            )
            SELECT CAST(:participant_a AS text), CAST(:participant_b AS text), 1, CAST(:timestamp AS timestamptz),
                   new_message.id, left(CAST(:search_text AS text), {PREVIEW_LENGTH}),
                   {_FINDING_VALUES}
            FROM new_message
            WHERE NOT EXISTS (
                SELECT 1 FROM messages WHERE provider = CAST(:provider AS text)
                                         AND provider_message_id = CAST(:provider_message_id AS text)
            )
            ON CONFLICT (participant_a, participant_b) DO UPDATE SET
                message_count = c.message_count + 1,
                last_message_at = GREATEST(c.last_message_at, EXCLUDED.last_message_at),
                last_message_id = CASE WHEN {_NEWER_THAN_LAST}
                                       THEN EXCLUDED.last_message_id ELSE c.last_message_id END,
                last_message_preview = CASE WHEN {_NEWER_THAN_LAST}
                                            THEN EXCLUDED.last_message_preview ELSE c.last_message_preview END,
                {_FINDING_UPDATES}
            RETURNING c.id, (c.xmax = 0) AS created
        ), inserted AS (
            INSERT INTO messages (
                id, conversation_id, direction, type, from_address, to_address, body, attachments,
                message_timestamp, status, provider, provider_message_id, next_attempt_at,
                search_vector, resent_from, encoding, segments
            )
            SELECT new_message.id, conversation.id, CAST(:direction AS text), CAST(:type AS text),
                   CAST(:from_address AS text), CAST(:to_address AS text), CAST(:body AS text),
                   CAST(:attachments AS jsonb), CAST(:timestamp AS timestamptz), CAST(:status AS text),
                   CAST(:provider AS text), CAST(:provider_message_id AS text), CAST(:next_attempt_at AS timestamptz),
                   {_SEARCH_VECTOR}, CAST(:resent_from AS bigint),
                   CAST(:encoding AS text), CAST(:segments AS integer)
            FROM new_message, conversation
            ON CONFLICT (provider, provider_message_id) DO NOTHING
            RETURNING id, conversation_id, status
        ), events AS (
            INSERT INTO message_events (type, message_id, conversation_id, status, attempt, source)
            SELECT event.type, event.message_id, inserted.conversation_id, event.status, event.attempt,
                   CAST(:event_source AS text)
            FROM inserted, conversation
            CROSS JOIN LATERAL (VALUES
                (1, 'conversation.created', NULL::bigint, NULL::text, NULL::integer),
                (2, CASE inserted.status WHEN 'received' THEN 'message.received' ELSE 'message.queued' END,
                    inserted.id, inserted.status, 0)
            ) AS event(ordinal, type, message_id, status, attempt)
            WHERE event.ordinal = 2 OR conversation.created
            ORDER BY event.ordinal
            RETURNING id, {AWAITING_RELAY} AS awaiting_relay
        )
        SELECT id, conversation_id, true AS created,
               ARRAY(SELECT awaiting_relay FROM events ORDER BY id) AS awaiting_relay
        FROM inserted
        UNION ALL
        SELECT id, conversation_id, false AS created, ARRAY[]::bigint[] AS awaiting_relay FROM messages
        WHERE provider = CAST(:provider AS text) AND provider_message_id = CAST(:provider_message_id AS text)
          AND NOT EXISTS (SELECT 1 FROM inserted)
        UNION ALL
        SELECT NULL, NULL, false, ARRAY[]::bigint[] FROM conversation
        WHERE CASE WHEN CAST(:own_transaction AS boolean) AND NOT EXISTS (SELECT 1 FROM inserted)
                   THEN messaging_abort('{TWIN_COMMITTED_MEANWHILE}', 'a twin message committed meanwhile')
                   ELSE false END
        """
    )
).bindparams(bindparam("attachments", type_=JSONB))
# The inbound webhook's whole transaction: sent without "begin", committed by PostgreSQL as it completes.
# Hence, in the statement: the conversation is not written at all for a provider id already stored (a
# provider's retry changes nothing, and there is nothing for the caller to roll back); and when the
# conversation was written but the message was not (a twin committed after this statement's snapshot),
# the last branch aborts the statement through messaging_abort, since its caller cannot roll it back.
_STORE_MESSAGE_AS_TRANSACTION = _STORE_MESSAGE.execution_options(own_transaction=True)


def store_message(connection: Connection, message: NewMessage, *, whole_transaction: bool = False) -> StoredMessage:
    """Find or create the conversation of the pair, insert the message and update the conversation's
    summary: one statement. `created` is False for a repeated provider message id; the caller must then
    roll back.

    `whole_transaction`: the store is all its transaction does (an inbound webhook), so it is sent as its
    own transaction, committed as it completes: a repeated provider message id then writes nothing at all,
    and the caller's rollback has nothing left to undo."""
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
        # Who stores a message: the provider's webhook an inbound one, a client's request an outbound one.
        "event_source": (EventSource.WEBHOOK if message.direction == Direction.INBOUND else EventSource.API).value,
        "search_text": searchable_text(message.type, message.body),
        "resent_from": message.resent_from,
    }
    parameters["own_transaction"] = whole_transaction
    try:
        row = connection.execute(
            _STORE_MESSAGE_AS_TRANSACTION if whole_transaction else _STORE_MESSAGE, parameters
        ).first()
    except DBAPIError as error:
        if server_sqlstate(error.orig) != TWIN_COMMITTED_MEANWHILE:
            raise
        row = None  # aborted, nothing written: the twin is found below
    if row is None:
        # A twin with this provider id committed after this statement's snapshot was taken.
        row = connection.execute(
            select(messages.c.id, messages.c.conversation_id).where(
                messages.c.provider == message.provider,
                messages.c.provider_message_id == message.provider_message_id,
            )
        ).one()
        return StoredMessage(id=row.id, conversation_id=row.conversation_id, created=False)
    remember_written(connection, row.awaiting_relay)
    return StoredMessage(id=row.id, conversation_id=row.conversation_id, created=row.created)


def get_message(connection: Connection, message_id: int) -> Message | None:
    return _first_message(connection.execute(select(*_MESSAGE_COLUMNS).where(messages.c.id == message_id)))


def get_conversation(connection: Connection, conversation_id: int) -> Conversation | None:
    row = connection.execute(select(conversations).where(conversations.c.id == conversation_id)).first()
    return None if row is None else _conversation(row._mapping)


def _in_list_order(
    table: Table,
    columns: Sequence[ColumnElement[Any]],
    branches: list[list[ColumnElement[bool]]],
    common: list[ColumnElement[bool]],
    newest_first: bool,
) -> Select[Any]:
    """Rows of `table` matching `common` and any one of `branches` (disjoint), in (timestamp, id) order.

    Each branch is an equality prefix of an index that ends with the list's sort key, so each is an ordered
    index scan stopping after `limit` rows. Several branches (a filter left unset, say archived: either
    value) are a UNION ALL of those ordered, limited legs, which PostgreSQL merges in order (Merge Append),
    never sorts. (Without each leg's own ORDER BY and LIMIT it sorts the whole union instead.)"""
    at = table.c.last_message_at if table is conversations else table.c.message_timestamp

    def in_order(columns: tuple[Any, Any]) -> list[Any]:
        return [column.desc() if newest_first else column.asc() for column in columns]

    limit = bindparam("limit", type_=Integer)
    legs = [
        select(*columns).where(*common, *branch).order_by(*in_order((at, table.c.id))).limit(limit)
        for branch in branches
    ]
    if len(legs) == 1:
        return legs[0]
    found = union_all(*legs).subquery("found")
    return select(found).order_by(*in_order((found.c[at.name], found.c.id))).limit(limit)


def list_conversations(
    connection: Connection, filters: ConversationFilters, limit: int, before: tuple[datetime, int] | None
) -> list[Conversation]:
    """Most recent activity first; keyset on (last_message_at, id). Unfiltered: ix_conversations_last_activity;
    by participant: ix_conversations_participant_{a,b}_activity merged (a channel filters those rows: the
    participant's conversations); by channel: its partial index; by archived: ix_conversations_archived_activity."""
    values: dict[str, Any] = {"limit": limit, "participant": filters.participant, "archived": filters.archived}
    if before is not None:
        values.update(before_at=before[0], before_id=before[1])
    statement = _conversations_page(
        before is not None, filters.participant is not None, filters.channel, filters.archived is not None
    )
    return [_conversation(item, _instant) for item in connection.execute(statement, values).scalar_one()]


@functools.cache
def _conversations_page(keyset: bool, participant: bool, channel: str | None, archived: bool) -> Select[Any]:
    """The statement of one shape of conversation list (which filters are set), built once: building it
    costs more than PostgreSQL's planning of it. Values are bound at execution."""
    c = conversations.c
    common: list[ColumnElement[bool]] = []
    if keyset:
        common.append(
            tuple_(c.last_message_at, c.id) < tuple_(_bound("before_at", c.last_message_at), _bound("before_id", c.id))
        )
    if channel is not None:
        common.append(c[f"has_{channel}"])  # the channel's partial index predicate, word for word
    # Every filtered index has archived after its participant (if any): unset, it is one leg per value.
    archived_legs = (
        [c.archived == _bound("archived", c.archived)]
        if archived
        else [c.archived == literal(False), c.archived == literal(True)]
    )
    branches: list[list[ColumnElement[bool]]] = [[]]
    if participant:
        sides = (
            c.participant_a == _bound("participant", c.participant_a),
            c.participant_b == _bound("participant", c.participant_b),
        )
        branches = [[side, value] for side in sides for value in archived_legs]
    elif channel is not None or archived:
        branches = [[value] for value in archived_legs]
    query = _in_list_order(conversations, tuple(conversations.c), branches, common, newest_first=True)
    return _as_json(query, (c.last_message_at.name, "id"), newest_first=True)


def list_messages(
    connection: Connection, conversation_id: int, limit: int, after: tuple[datetime, int] | None
) -> list[Message]:
    """Chronological; keyset on (message_timestamp, id) served by ix_messages_conversation_timeline."""
    return find_messages(connection, MessageFilters(conversation_id=conversation_id), limit, after)


def find_messages(
    connection: Connection, filters: MessageFilters, limit: int, after: tuple[datetime, int] | None
) -> list[Message]:
    """Messages across conversations, chronological; keyset on (message_timestamp, id)."""
    values: dict[str, Any] = {"limit": limit, **{name: getattr(filters, name) for name in _MESSAGE_FILTERS}}
    if after is not None:
        values.update(after_at=after[0], after_id=after[1])
    shape = tuple(getattr(filters, name) is not None for name in _MESSAGE_FILTERS)
    statement = _messages_page(after is not None, *shape)
    return [_message(item, _instant) for item in connection.execute(statement, values).scalar_one()]


_MESSAGE_FILTERS = ("since", "until", "conversation_id", "status", "q", "direction", "type")


@functools.cache
def _messages_page(  # noqa: PLR0913 - one flag per filter: the statement's shape
    keyset: bool, since: bool, until: bool, conversation_id: bool, status: bool, q: bool, direction: bool, type_: bool
) -> Select[Any]:
    """The statement of one shape of message list (which filters are set), built once; values bound later.

    Each filter is an index's equality prefix where it can be: the conversation's timeline, the status
    timeline (other filters filter its rows), or the direction-and-type timeline, whose unset column becomes
    one merged branch per value. `q` matches the full-text index; PostgreSQL then chooses between reading
    the GIN index's matches (sorting only those) and walking a timeline filtering by the text, whichever
    its statistics say is cheaper for the words (a rare word: the matches; a common one: the timeline)."""
    m = messages.c
    common: list[ColumnElement[bool]] = []
    if keyset:
        common.append(
            tuple_(m.message_timestamp, m.id)
            > tuple_(_bound("after_at", m.message_timestamp), _bound("after_id", m.id))
        )
    if since:
        common.append(m.message_timestamp >= _bound("since", m.message_timestamp))
    if until:
        common.append(m.message_timestamp < _bound("until", m.message_timestamp))
    if conversation_id:
        common.append(m.conversation_id == _bound("conversation_id", m.conversation_id))
    if status:
        common.append(m.status == _bound("status", m.status))
    if q:
        query_text = func.websearch_to_tsquery(_SEARCH_CONFIGURATION, bindparam("q", type_=Text))
        common.append(m.search_vector.bool_op("@@")(query_text))
    one_direction = [m.direction == _bound("direction", m.direction)] if direction else []
    one_type = [m.type == _bound("type", m.type)] if type_ else []
    branches: list[list[ColumnElement[bool]]] = [[]]
    if conversation_id or status or q:
        common.extend(one_direction + one_type)
    elif direction or type_:
        directions = one_direction or [m.direction == literal(value.value) for value in Direction]
        types = one_type or [m.type == literal(value.value) for value in MessageType]
        branches = [[one, kind] for one in directions for kind in types]
    query = _in_list_order(messages, _MESSAGE_COLUMNS, branches, common, newest_first=False)
    return _as_json(query, (m.message_timestamp.name, "id"), newest_first=False)


def _bound(name: str, column: Any) -> Any:
    """A parameter bound at execution, typed like the column it is compared with."""
    return bindparam(name, type_=column.type)


def _as_json(query: Select[Any], order: tuple[str, str], newest_first: bool) -> Select[Any]:
    """The page as one JSON array that PostgreSQL builds, in the page's order. pg8000 is pure Python: reading
    fifty rows column by column was most of a page read's time; one value, decoded by the json module's C
    code, is not. The aggregate's ORDER BY is the page's own order, which the planner knows the rows already
    have (no sort)."""
    page = query.subquery("page")
    keys = [page.c[name].desc() if newest_first else page.c[name].asc() for name in order]
    items = func.json_agg(aggregate_order_by(literal_column("page"), *keys))
    return select(func.coalesce(items, literal_column("'[]'::json")))


def _instant(value: str | None) -> datetime | None:
    """A timestamp of a JSON page: PostgreSQL writes ISO 8601 with the offset."""
    return None if value is None else datetime.fromisoformat(value)


_SEARCH_CONFIGURATION: ColumnElement[Any] = literal_column(f"'{SEARCH_CONFIGURATION}'::regconfig")


def set_archived(connection: Connection, conversation_id: int, archived: bool) -> Conversation | None:
    row = connection.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(archived=archived)
        .returning(*conversations.c)
    ).first()
    return None if row is None else _conversation(row._mapping)


def mark_all_read(connection: Connection, conversation_id: int) -> Conversation | None:
    """Move the read horizon to the conversation's last message: nothing is unread. One statement: the row's
    latest version is the one updated (a concurrent message waits on the row lock, then counts after it)."""
    c = conversations.c
    row = connection.execute(
        update(conversations)
        .where(c.id == conversation_id)
        .values(read_through_at=c.last_message_at, read_through_id=c.last_message_id, unread_count=0)
        .returning(*conversations.c)
    ).first()
    return None if row is None else _conversation(row._mapping)


_LOCK_FOR_READ = text(
    compact(
        """
    SELECT c.*, m.message_timestamp AS through_at, m.id AS through_id
    FROM conversations c
    LEFT JOIN messages m ON m.id = :message_id AND m.conversation_id = c.id
    WHERE c.id = :conversation_id
    FOR UPDATE OF c
    """
    )
)

_READ_THROUGH = text(
    compact(
        """
    UPDATE conversations SET read_through_at = :at, read_through_id = :message_id,
        unread_count = (
            SELECT count(*) FROM messages
            WHERE conversation_id = :conversation_id AND direction = 'inbound'
              AND (message_timestamp, id) > (CAST(:at AS timestamptz), CAST(:message_id AS bigint))
        )
    WHERE id = :conversation_id
      AND (read_through_at IS NULL
           OR (read_through_at, read_through_id) < (CAST(:at AS timestamptz), CAST(:message_id AS bigint)))
    RETURNING *
    """
    )
)


class NotInConversation(Exception):
    """The message named as the read horizon is not one of the conversation's."""


def mark_read_through(connection: Connection, conversation_id: int, message_id: int) -> Conversation | None:
    """Move the read horizon forward to a message of the conversation (never back) and count what is after it.

    Two statements: the first locks the row, so the count that follows (a new snapshot, taken once every
    message stored before the lock is committed) sees exactly the messages whose store statement counted
    them; messages stored later wait for the lock and count themselves against the new horizon."""
    locked = connection.execute(_LOCK_FOR_READ, {"conversation_id": conversation_id, "message_id": message_id}).first()
    if locked is None:
        return None
    if locked.through_id is None:
        raise NotInConversation(message_id)
    row = connection.execute(
        _READ_THROUGH, {"conversation_id": conversation_id, "message_id": message_id, "at": locked.through_at}
    ).first()
    return _conversation((row if row is not None else locked)._mapping)


def conversation_exists(connection: Connection, conversation_id: int) -> bool:
    return (
        connection.execute(select(conversations.c.id).where(conversations.c.id == conversation_id)).first() is not None
    )


def ping(connection: Connection) -> None:
    connection.exec_driver_sql("SELECT 1")


# The outcomes of a provider attempt. Each counts the attempt, applies only to a pending send (so a status
# never moves backwards) and writes its history row in the same statement; None means the message was no
# longer pending (another worker settled it).

_MOVED_COLUMNS = "m.*, current.status AS previous_status"

# Accepted: `sent` with the provider's id. Receipts the provider sent before we knew that id (held in
# provider_receipts) are applied in the same statement: the message goes straight on to their verdict, and
# the history shows `message.sent` then `message.delivered`/`message.undelivered`.
_MARK_SENT = text(
    compact(
        f"""
        WITH current AS (
            SELECT id, status, provider FROM messages WHERE id = :message_id AND {PENDING_CONDITION} FOR UPDATE
        ), held AS (
            SELECT r.id, r.status, r.detail, r.provider_event FROM provider_receipts AS r, current
            WHERE r.provider = current.provider AND r.provider_message_id = CAST(:provider_message_id AS text)
              AND r.applied_at IS NULL
            FOR UPDATE OF r
        ), verdict AS (
            SELECT status, detail FROM held ORDER BY id LIMIT 1
        ), moved AS (
            UPDATE messages AS m
            SET status = COALESCE((SELECT status FROM verdict), 'sent'), status_detail = (SELECT detail FROM verdict),
                provider_message_id = CAST(:provider_message_id AS text), attempts = m.attempts + 1,
                next_attempt_at = NULL, last_error = NULL, updated_at = now()
            FROM current WHERE m.id = current.id
            RETURNING {_MOVED_COLUMNS}
        ), claimed AS (
            UPDATE provider_receipts AS r SET applied_at = now(), message_id = moved.id
            FROM held, moved WHERE r.id = held.id
        ), events AS (
            INSERT INTO message_events (
                type, message_id, conversation_id, status, previous_status, attempt, detail, source
            )
            SELECT event.type, moved.id, moved.conversation_id, event.status, event.previous_status, moved.attempts,
                   event.detail, event.source
            FROM moved CROSS JOIN LATERAL (VALUES
                (1, 'message.sent', 'sent', moved.previous_status, NULL::text, CAST(:source AS text)),
                (2, 'message.' || moved.status, moved.status, 'sent', moved.status_detail, 'receipt')
            ) AS event(ordinal, type, status, previous_status, detail, source)
            WHERE event.ordinal = 1 OR moved.status <> 'sent'
            ORDER BY event.ordinal
            RETURNING id, {AWAITING_RELAY} AS awaiting_relay
        )
        SELECT moved.*, ARRAY(SELECT awaiting_relay FROM events ORDER BY id) AS awaiting_relay,
               ARRAY(SELECT provider_event FROM held WHERE provider_event IS NOT NULL ORDER BY id) AS held_events,
               ARRAY(SELECT detail FROM held WHERE provider_event IS NOT NULL ORDER BY id) AS held_details
        FROM moved
        """
    )
)

# Not accepted: `retrying` (due again after the delay, on the database's clock) or `failed`.
_MARK_UNACCEPTED = text(
    compact(
        f"""
        WITH current AS (
            SELECT id, status FROM messages WHERE id = :message_id AND {PENDING_CONDITION} FOR UPDATE
        ), moved AS (
            UPDATE messages AS m
            SET status = CAST(:status AS text), attempts = m.attempts + 1, last_error = CAST(:error AS text),
                status_detail = CASE WHEN CAST(:status AS text) = 'failed' THEN CAST(:error AS text) END,
                next_attempt_at = CASE WHEN CAST(:status AS text) = 'retrying'
                                       THEN now() + make_interval(secs => CAST(:delay_seconds AS double precision)) END,
                updated_at = now()
            FROM current WHERE m.id = current.id
            RETURNING {_MOVED_COLUMNS}
        ), {history_rows(detail="last_error", source="CAST(:source AS text)")}
        SELECT moved.*, ARRAY(SELECT awaiting_relay FROM events ORDER BY id) AS awaiting_relay FROM moved
        """
    )
)


def _moved(connection: Connection, statement: Any, parameters: dict[str, Any]) -> Message | None:
    row = connection.execute(statement, parameters).first()
    if row is None:
        return None
    remember_written(connection, row.awaiting_relay)
    return _message(row._mapping)


@dataclass(frozen=True)
class Sent:
    """A send recorded `sent`, and the held email events (bounces, spam reports...) applied with it."""

    message: Message
    email_events: list[AppliedEmailEvent]


def mark_sent(connection: Connection, message_id: int, provider_message_id: str, source: EventSource) -> Sent | None:
    """The provider accepted the send (receipts held for its provider id are applied too)."""
    row = connection.execute(
        _MARK_SENT, {"message_id": message_id, "provider_message_id": provider_message_id, "source": source.value}
    ).first()
    if row is None:
        return None
    remember_written(connection, row.awaiting_relay)
    return Sent(_message(row._mapping), applied_email_events(row.held_events, row.held_details))


def schedule_retry(
    connection: Connection, message_id: int, delay_seconds: float, error: str, source: EventSource
) -> Message | None:
    """The attempt failed but may succeed later: due again `delay_seconds` from now (the database's clock)."""
    return _moved(
        connection,
        _MARK_UNACCEPTED,
        {
            "message_id": message_id,
            "status": MessageStatus.RETRYING.value,
            "error": error,
            "delay_seconds": delay_seconds,
            "source": source.value,
        },
    )


def mark_failed(connection: Connection, message_id: int, error: str, source: EventSource) -> Message | None:
    """The provider never accepted the send (its lookup says so too), and no attempt is left."""
    return _moved(
        connection,
        _MARK_UNACCEPTED,
        {
            "message_id": message_id,
            "status": MessageStatus.FAILED.value,
            "error": error,
            "delay_seconds": 0,
            "source": source.value,
        },
    )


# Reconciliation: a `sent` message whose receipt never came, settled by what the provider's lookup says.
# Never from `failed`: only a provider's receipt may correct that verdict (DESIGN.md §2).
_LOOKUP_MAY_MOVE = status_list((*PENDING_STATUSES, MessageStatus.SENT))
_RECORD_LOOKUP_VERDICT = text(
    compact(
        f"""
        WITH current AS (
            SELECT id, status FROM messages WHERE id = :message_id AND status IN {_LOOKUP_MAY_MOVE} FOR UPDATE
        ), moved AS (
            UPDATE messages AS m
            SET status = CAST(:status AS text), status_detail = CAST(:detail AS text), next_attempt_at = NULL,
                provider_message_id = COALESCE(m.provider_message_id, CAST(:provider_message_id AS text)),
                updated_at = now()
            FROM current WHERE m.id = current.id
            RETURNING {_MOVED_COLUMNS}
        ), {history_rows(detail="status_detail", source="'reconciliation'")}
        SELECT moved.*, ARRAY(SELECT awaiting_relay FROM events ORDER BY id) AS awaiting_relay FROM moved
        """
    )
)


def record_lookup_verdict(
    connection: Connection, message_id: int, status: str, detail: str | None, provider_message_id: str | None
) -> Message | None:
    """The provider's lookup says the message was delivered or undelivered."""
    return _moved(
        connection,
        _RECORD_LOOKUP_VERDICT,
        {"message_id": message_id, "status": status, "detail": detail, "provider_message_id": provider_message_id},
    )


# Due: untouched for the timeout doubled once per lookup that found no verdict (at most
# RECEIPT_LOOKUP_MAX_FACTOR timeouts). The first bound is the index's range (every wait is at least the
# timeout); the second the backoff, checked on those rows.
RECEIPT_LOOKUP_MAX_FACTOR = 16
_CLAIM_AWAITING_RECEIPT = text(
    compact(
        f"""
        UPDATE messages SET updated_at = now()
        WHERE id IN (
            SELECT id FROM messages
            WHERE {AWAITING_RECEIPT_CONDITION} AND updated_at < now() - make_interval(secs => :timeout_seconds)
              AND updated_at < now() - make_interval(
                  secs => :timeout_seconds * LEAST(power(2, receipt_lookups), {RECEIPT_LOOKUP_MAX_FACTOR}))
            ORDER BY updated_at
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        RETURNING *
        """
    )
)


def claim_awaiting_receipt(connection: Connection, timeout_seconds: float, limit: int) -> list[Message]:
    """`sent` messages due for a lookup (no receipt for longer than the timeout, doubled per lookup that found
    no verdict); their clock restarts, so a lookup that cannot be made is tried again only when due again."""
    rows = connection.execute(_CLAIM_AWAITING_RECEIPT, {"timeout_seconds": timeout_seconds, "limit": limit})
    return [_message(row._mapping) for row in rows]


# A lookup of a `sent` message that found no verdict: counted (the next one waits twice as long; after
# MAX_RECEIPT_LOOKUPS none follows), said in status_detail and written to the history, in one statement.
_RECORD_LOOKUP_FINDING = text(
    compact(
        f"""
        WITH current AS (
            SELECT id FROM messages WHERE id = :message_id AND status = 'sent' FOR UPDATE
        ), moved AS (
            UPDATE messages AS m
            SET receipt_lookups = m.receipt_lookups + 1,
                status_detail = 'lookup ' || (m.receipt_lookups + 1) || ' of {MAX_RECEIPT_LOOKUPS}: '
                    || CAST(:finding AS text)
                    || CASE WHEN m.receipt_lookups + 1 >= {MAX_RECEIPT_LOOKUPS}
                            THEN '; no longer looked up (no receipt, no verdict)' ELSE '' END,
                updated_at = now()
            FROM current WHERE m.id = current.id
            RETURNING m.*, 'sent' AS previous_status
        ), {history_rows(detail="status_detail", source="'reconciliation'", event_type="'message.unconfirmed'")}
        SELECT moved.*, ARRAY(SELECT awaiting_relay FROM events ORDER BY id) AS awaiting_relay FROM moved
        """
    )
)


def record_lookup_finding(connection: Connection, message_id: int, finding: str) -> int | None:
    """The provider's lookup gave no verdict for a `sent` message. Returns how many lookups have found none
    (MAX_RECEIPT_LOOKUPS: the last); None when the message is no longer `sent`."""
    row = connection.execute(_RECORD_LOOKUP_FINDING, {"message_id": message_id, "finding": finding}).first()
    if row is None:
        return None
    remember_written(connection, row.awaiting_relay)
    return int(row.receipt_lookups)


def list_message_events(
    connection: Connection, message_id: int, limit: int, after_id: int | None
) -> list[MessageEvent]:
    """Oldest first; keyset on id served by ix_message_events_message."""
    query = (
        select(message_events)
        .where(message_events.c.message_id == message_id)
        .order_by(message_events.c.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(message_events.c.id > after_id)
    return [
        MessageEvent(
            id=row.id,
            type=row.type,
            message_id=row.message_id,
            conversation_id=row.conversation_id,
            status=row.status,
            previous_status=row.previous_status,
            attempt=row.attempt,
            detail=row.detail,
            source=row.source,
            occurred_at=row.occurred_at,
        )
        for row in connection.execute(query)
    ]


def message_exists(connection: Connection, message_id: int) -> bool:
    return connection.execute(select(messages.c.id).where(messages.c.id == message_id)).first() is not None


# The claim returns the due time it replaced with the lease: the consumer holds a record that came less
# than `tolerance_seconds` early until then (README "Throttling"), measured by the database's clock.
_CLAIM_DUE_SEND = text(
    compact(
        f"""
    WITH due AS (SELECT id, next_attempt_at AS due_at FROM messages WHERE id = :message_id FOR UPDATE)
    UPDATE messages SET next_attempt_at = now() + make_interval(secs => :lease_seconds), updated_at = now()
    FROM due
    WHERE messages.id = due.id AND {PENDING_CONDITION}
      AND (due.due_at IS NULL OR due.due_at <= clock_timestamp() + make_interval(secs => :tolerance_seconds))
    RETURNING messages.*, GREATEST(due.due_at, clock_timestamp()) AS due_at, clock_timestamp() AS clock
    """
    )
)

_DUE_TIMES = text("SELECT id, next_attempt_at FROM messages WHERE id = ANY(:ids)").bindparams(
    bindparam("ids", type_=ARRAY(BigInteger))
)

_CLAIM_OVERDUE_SENDS = text(
    compact(
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


@dataclass(frozen=True)
class ClaimedSend:
    message: Message  # leased: next_attempt_at is the lease's end
    due_at: datetime  # when the attempt was due (now, if it was already due)
    clock: datetime  # the database's time at the claim


def claim_due_send(
    connection: Connection, message_id: int, lease_seconds: float, tolerance_seconds: float = 0.0
) -> ClaimedSend | None:
    """Take a pending message whose attempt is due (or due within `tolerance_seconds`), leasing it so no
    other worker attempts it now."""
    row = connection.execute(
        _CLAIM_DUE_SEND,
        {"message_id": message_id, "lease_seconds": lease_seconds, "tolerance_seconds": tolerance_seconds},
    ).first()
    if row is None:
        return None
    return ClaimedSend(_message(row._mapping), row.due_at, row.clock)


def due_times(connection: Connection, message_ids: Sequence[int]) -> dict[int, datetime | None]:
    """Each message's next_attempt_at (a message that does not exist is left out)."""
    return {row.id: row.next_attempt_at for row in connection.execute(_DUE_TIMES, {"ids": list(message_ids)})}


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
    compact(
        """
    DELETE FROM idempotency_keys WHERE (route, key) IN (
        SELECT route, key FROM idempotency_keys WHERE expires_at < now() LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    """
    )
)


def purge_expired_idempotency_keys(connection: Connection, limit: int = 1000) -> int:
    return connection.execute(_PURGE_EXPIRED_KEYS, {"limit": limit}).rowcount
