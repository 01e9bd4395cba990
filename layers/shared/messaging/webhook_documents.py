"""Webhook endpoints and deliveries as API documents (messaging.documents shows messages and conversations)."""

from __future__ import annotations

from messaging.domain import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging.webhook_models import WebhookAttemptOut, WebhookDeliveryOut, WebhookEndpointCreated, WebhookEndpointOut


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
