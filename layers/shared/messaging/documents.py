"""Domain objects to API documents: the one place that knows how a message or conversation is shown."""

from __future__ import annotations

from messaging.domain import Conversation, Message, MessageEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging.models import ConversationOut, MessageEventOut, MessageOut
from messaging.webhook_models import WebhookAttemptOut, WebhookDeliveryOut, WebhookEndpointCreated, WebhookEndpointOut


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


def webhook_endpoint_document(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    """An endpoint without its secret (shown only once, by webhook_endpoint_created_document)."""
    return WebhookEndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        events=list(endpoint.events),
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def webhook_endpoint_created_document(endpoint: WebhookEndpoint) -> WebhookEndpointCreated:
    return WebhookEndpointCreated(**webhook_endpoint_document(endpoint).model_dump(), secret=endpoint.secret)


def webhook_attempt_document(attempt: WebhookAttempt) -> WebhookAttemptOut:
    return WebhookAttemptOut(
        attempt=attempt.attempt,
        outcome=attempt.outcome,
        status_code=attempt.status_code,
        error=attempt.error,
        response_excerpt=attempt.response_excerpt,
        duration_ms=attempt.duration_ms,
        next_attempt_at=attempt.next_attempt_at,
        attempted_at=attempt.attempted_at,
    )


def webhook_delivery_document(delivery: WebhookDelivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        endpoint_id=delivery.endpoint_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        completed_at=delivery.completed_at,
        attempt_log=[webhook_attempt_document(attempt) for attempt in delivery.attempt_log],
    )
