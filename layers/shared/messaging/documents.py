"""Domain objects to API documents: the one place that knows how a message or conversation is shown.

The webhook endpoints' documents are in messaging.webhook_documents: only that API imports their models."""

from __future__ import annotations

from messaging.domain import Conversation, Message, MessageEvent
from messaging.models import ConversationOut, MessageEventOut, MessageOut


def message_document(message: Message) -> MessageOut:
    return MessageOut.model_validate(
        {
            "id": message.id,
            "conversation_id": message.conversation_id,
            "direction": message.direction,
            "type": message.type,
            "from": message.from_address,
            "to": message.to_address,
            "body": message.body,
            "attachments": list(message.attachments),
            "timestamp": message.timestamp,
            "status": message.status,
            "provider": message.provider,
            "provider_message_id": message.provider_message_id,
            "attempts": message.attempts,
            "next_attempt_at": message.next_attempt_at,
            "last_error": message.last_error,
            "status_detail": message.status_detail,
            "created_at": message.created_at,
            "updated_at": message.updated_at,
            "encoding": message.encoding,
            "segments": message.segments,
            "resent_from": message.resent_from,
        }
    )


def conversation_document(conversation: Conversation) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        participants=list(conversation.participants),
        message_count=conversation.message_count,
        last_message_at=conversation.last_message_at,
        last_message_preview=conversation.last_message_preview,
        created_at=conversation.created_at,
        archived=conversation.archived,
        unread_count=conversation.unread_count,
    )


def event_document(event: MessageEvent) -> MessageEventOut:
    return MessageEventOut.model_validate(
        {
            "id": event.id,
            "type": event.type,
            "status": event.status,
            "previous_status": event.previous_status,
            "attempt": event.attempt,
            "detail": event.detail,
            "source": event.source,
            "occurred_at": event.occurred_at,
        }
    )
