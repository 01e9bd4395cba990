"""Reading conversations and messages, with keyset pagination."""

from __future__ import annotations

from messaging.db import repository
from messaging.db.engine import transaction
from messaging.errors import NotFound
from messaging.models import ConversationOut, MessageOut, Page
from messaging.pagination import check_limit, decode_cursor, encode_cursor
from messaging.services.views import conversation_view, message_view


def list_conversations(limit: int, cursor: str | None) -> Page[ConversationOut]:
    position = decode_cursor(cursor)
    with transaction() as connection:
        rows = repository.list_conversations(connection, check_limit(limit) + 1, position)
    items = [conversation_view(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["last_message_at"], last["id"])
    return Page[ConversationOut](items=items, next_cursor=next_cursor)


def get_conversation(conversation_id: int) -> ConversationOut:
    with transaction() as connection:
        row = repository.get_conversation(connection, conversation_id)
    if row is None:
        raise NotFound(f"conversation {conversation_id} does not exist", field="id")
    return conversation_view(row)


def list_messages(conversation_id: int, limit: int, cursor: str | None) -> Page[MessageOut]:
    position = decode_cursor(cursor)
    with transaction() as connection:
        rows = repository.list_messages(connection, conversation_id, check_limit(limit) + 1, position)
        if not rows and not repository.conversation_exists(connection, conversation_id):
            raise NotFound(f"conversation {conversation_id} does not exist", field="id")
    items = [message_view(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["message_timestamp"], last["id"])
    return Page[MessageOut](items=items, next_cursor=next_cursor)


def get_message(message_id: int) -> MessageOut:
    with transaction() as connection:
        row = repository.get_message(connection, message_id)
    if row is None:
        raise NotFound(f"message {message_id} does not exist", field="id")
    return message_view(row)


def database_reachable() -> bool:
    try:
        with transaction() as connection:
            repository.ping(connection)
    except Exception:
        return False
    return True
