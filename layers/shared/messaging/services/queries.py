"""Reading conversations and messages, with filters and keyset pagination."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from messaging.db import repository
from messaging.db.engine import DATABASE_UNAVAILABLE_ERRORS, reading
from messaging.documents import conversation_document, event_document, message_document
from messaging.domain import ConversationFilters, MessageFilters
from messaging.errors import InvalidInput, NotFound
from messaging.models import ConversationOut, MessageEventOut, MessageOut, Page
from messaging.pagination import decode_cursor, encode_cursor


def _page[Found, Document](
    found: Sequence[Found],
    limit: int,
    document: Callable[[Found], Document],
    position: Callable[[Found], tuple[datetime, int]],
) -> tuple[list[Document], str | None]:
    """A page's documents and next cursor from `limit + 1` rows: the extra row only says a next page
    exists, which starts after the last row shown."""
    next_cursor = encode_cursor(*position(found[limit - 1])) if len(found) > limit else None
    return [document(item) for item in found[:limit]], next_cursor


def participant_address(raw: str) -> str:
    """A participant filter in the form addresses are stored in: an email (plain or markdown, any case) or a
    phone in any formatting. Any *possible* number is accepted, as webhooks store them (a number a send
    would refuse may still be in a conversation a carrier delivered)."""
    from messaging.addresses import InvalidAddress, normalize_email, normalize_phone

    value = raw.strip()
    if raw[:1] == " " and value[:1].isdigit():
        # An unencoded '+' in a query string reads as a space (form encoding): put the '+' back.
        value = "+" + value
    try:
        return normalize_email(value) if "@" in value else normalize_phone(value, assigned=False)
    except InvalidAddress as error:
        raise InvalidInput(f"participant: {error}", field="participant") from None


def list_conversations(
    limit: int, cursor: str | None, filters: ConversationFilters | None = None
) -> Page[ConversationOut]:
    position = decode_cursor(cursor)
    with reading() as connection:
        found = repository.list_conversations(connection, filters or ConversationFilters(), limit + 1, position)
    items, next_cursor = _page(found, limit, conversation_document, lambda last: (last.last_message_at, last.id))
    return Page[ConversationOut](items=items, next_cursor=next_cursor)


def get_conversation(conversation_id: int) -> ConversationOut:
    with reading() as connection:
        conversation = repository.get_conversation(connection, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist", field="id")
    return conversation_document(conversation)


def list_messages(conversation_id: int, limit: int, cursor: str | None) -> Page[MessageOut]:
    position = decode_cursor(cursor)
    with reading() as connection:
        found = repository.list_messages(connection, conversation_id, limit + 1, position)
        if not found and not repository.conversation_exists(connection, conversation_id):
            raise NotFound(f"conversation {conversation_id} does not exist", field="id")
    items, next_cursor = _page(found, limit, message_document, lambda last: (last.timestamp, last.id))
    return Page[MessageOut](items=items, next_cursor=next_cursor)


def find_messages(filters: MessageFilters, limit: int, cursor: str | None) -> Page[MessageOut]:
    """Messages across conversations, chronological. An unknown conversation_id is simply an empty list: it
    is a filter like the others."""
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise InvalidInput("until must be later than since", field="until")
    position = decode_cursor(cursor)
    with reading() as connection:
        found = repository.find_messages(connection, filters, limit + 1, position)
    items, next_cursor = _page(found, limit, message_document, lambda last: (last.timestamp, last.id))
    return Page[MessageOut](items=items, next_cursor=next_cursor)


def get_message(message_id: int) -> MessageOut:
    with reading() as connection:
        message = repository.get_message(connection, message_id)
    if message is None:
        raise NotFound(f"message {message_id} does not exist", field="id")
    return message_document(message)


def list_message_events(message_id: int, limit: int, cursor: str | None) -> Page[MessageEventOut]:
    """A message's history, oldest first (keyset on the event id, which grows with every row written)."""
    position = decode_cursor(cursor)
    with reading() as connection:
        found = repository.list_message_events(
            connection, message_id, limit + 1, None if position is None else position[1]
        )
        if not found and not repository.message_exists(connection, message_id):
            raise NotFound(f"message {message_id} does not exist", field="id")
    items, next_cursor = _page(found, limit, event_document, lambda last: (last.occurred_at, last.id))
    return Page[MessageEventOut](items=items, next_cursor=next_cursor)


def database_reachable() -> bool:
    """False when the database cannot serve us right now; a defect propagates."""
    try:
        with reading() as connection:
            repository.ping(connection)
    except DATABASE_UNAVAILABLE_ERRORS:
        return False
    return True
