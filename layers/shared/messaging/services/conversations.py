"""Small writes of a conversation's own state: archiving it and moving its read horizon."""

from __future__ import annotations

from messaging.db import repository
from messaging.db.engine import transaction
from messaging.documents import conversation_document
from messaging.domain import Conversation
from messaging.errors import InvalidInput, NotFound
from messaging.models import ConversationOut


def _existing(conversation_id: int, conversation: Conversation | None) -> Conversation:
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist", field="id")
    return conversation


def set_archived(conversation_id: int, archived: bool) -> ConversationOut:
    """Archive or unarchive. Archiving is not sticky: a new inbound message un-archives the conversation."""
    with transaction() as connection:
        conversation = repository.set_archived(connection, conversation_id, archived)
    return conversation_document(_existing(conversation_id, conversation))


def mark_read(conversation_id: int, through_message_id: int | None) -> ConversationOut:
    """Everything so far is read, or everything up to a message of the conversation (the horizon only moves
    forward, so a stale client never un-reads what another has read)."""
    with transaction() as connection:
        if through_message_id is None:
            conversation = repository.mark_all_read(connection, conversation_id)
        else:
            try:
                conversation = repository.mark_read_through(connection, conversation_id, through_message_id)
            except repository.NotInConversation:
                raise InvalidInput(
                    f"message {through_message_id} is not a message of conversation {conversation_id}",
                    field="through_message_id",
                ) from None
    return conversation_document(_existing(conversation_id, conversation))
