"""Pushing events to customers' endpoints: fan-out, signed attempts, retries, giving up, the sweep's relay.

At-least-once: an event reaches the dispatcher through EventQueue (after its commit, or by the sweep, which
offers it again until the dispatcher has taken it);
fan-out creates one delivery per (event, subscribed enabled endpoint) and attempts them at once, each on a
thread of its own and holding no database connection, so a slow endpoint delays no other (and the consumer
runs the records of a batch side by side too: functions/event_dispatch). A failed attempt schedules the
next one (capped, jittered backoff) in the database first and on the queue second, so a lost record is
found again by the sweep.
After EVENT_RETRY_WINDOW_SECONDS a delivery is `failed` (copied to EventDLQ) and counts against its
endpoint, which is disabled after EVENT_ENDPOINT_DISABLE_AFTER failed deliveries in a row.

The event's `data` is the document the API returns: the message or conversation, taken when the event is
dispatched, with the status the event announces (a `message.sent` says `sent` even when the message is
already `delivered`); for recipient.* events, the suppression as it was when the event was written. It is
built once per event, stored with each delivery, and every retry sends the very same body under the same
`webhook-id` (the event id), so receivers can dedupe.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from messaging import config, event_queue, queue
from messaging.config import EventQueueSettings, SweepSettings, WebhookDeliverySettings
from messaging.db import events, repository, webhooks
from messaging.db.engine import transaction
from messaging.documents import conversation_document, message_document
from messaging.domain import OutboxEvent, WebhookDelivery
from messaging.enums import SUBSCRIBABLE_EVENTS, EventType
from messaging.observability import logger, metrics
from messaging.services.retry_policy import backoff_seconds
from messaging.services.suppressions import suppression_document
from messaging.webhook_models import EventBody
from messaging.webhook_targets import HttpResult, post

SUBSCRIBABLE = frozenset(event.value for event in SUBSCRIBABLE_EVENTS)


def lease_seconds() -> float:
    """How long a claimed delivery is reserved for the worker attempting it: longer than one attempt can
    take, so no twin attempts it meanwhile; a worker that dies holding it releases it when it expires."""
    return config.current(WebhookDeliverySettings).webhook_timeout_seconds + 5.0


@dataclass(frozen=True)
class DispatchReport:
    attempted: int
    succeeded: int


class UnrenderableEvent(RuntimeError):
    """An event row lacks the subject its type is rendered from (a writer's defect: every writer records it).
    Its record fails, loudly: SQS redelivers it and finally dead-letters it, and the event stays unrelayed."""


def _event_data(connection: Any, event: OutboxEvent) -> dict[str, Any]:
    """The document an event announces, as the API returns it: the suppression for recipient.* events (kept
    on the event: an opt-in has deleted it), the conversation, or the message with the event's status."""
    if event.type in (EventType.OPTED_OUT, EventType.OPTED_IN):
        if event.suppression is None:
            raise UnrenderableEvent(f"event {event.id} ({event.type}) was written without its suppression")
        return suppression_document(event.suppression).model_dump(mode="json", by_alias=True)
    if event.type == EventType.CONVERSATION_CREATED:
        conversation = (
            None if event.conversation_id is None else repository.get_conversation(connection, event.conversation_id)
        )
        if conversation is None:
            raise UnrenderableEvent(f"event {event.id} ({event.type}) names no existing conversation")
        return conversation_document(conversation).model_dump(mode="json", by_alias=True)
    # message.*: its row outlives neither its message nor its conversation (the foreign keys cascade), so
    # inside the transaction that holds the event, its message exists.
    message = None if event.message_id is None else repository.get_message(connection, event.message_id)
    if message is None:
        raise UnrenderableEvent(f"event {event.id} ({event.type}) names no existing message")
    if event.status is not None:
        message = replace(message, status=event.status)
    return message_document(message).model_dump(mode="json", by_alias=True)


def _event_body(connection: Any, event: OutboxEvent) -> str:
    body = EventBody(type=event.type, timestamp=event.occurred_at, data=_event_data(connection, event))
    return json.dumps(body.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)


def fan_out(event_id: int) -> DispatchReport:
    """One event from the queue: mark it relayed, create its deliveries, attempt them."""
    settings = config.current(WebhookDeliverySettings)
    with transaction() as connection:
        event = events.take_event(connection, event_id)
        if event is None:
            # Deleted with its message or conversation (its foreign keys cascade) after it was enqueued.
            logger.info("event no longer exists: not delivered", extra={"event_id": event_id})
            return DispatchReport(0, 0)
        if event.type not in SUBSCRIBABLE or not webhooks.has_subscribers(connection, event.type):
            return DispatchReport(0, 0)
        body = _event_body(connection, event)
        deliveries = webhooks.create_deliveries(
            connection, event.id, event.type, body, lease_seconds(), settings.event_retry_window_seconds
        )
    return attempt_all(deliveries)


def deliver(delivery_id: int) -> DispatchReport:
    """One delivery record from the queue (a retry, a manual retry, the sweep): attempt it if it is due."""
    with transaction() as connection:
        delivery = webhooks.claim_due_delivery(connection, delivery_id, lease_seconds())
        current = delivery or webhooks.get_delivery(connection, delivery_id)
    if current is None or current.status != "pending":
        return DispatchReport(0, 0)  # gone with its endpoint, or settled: a duplicate record
    if delivery is None:
        # Early: the delay was longer than SQS allows, or another worker holds the lease. Chain the wait.
        if current.next_attempt_at is None:
            raise RuntimeError(f"webhook delivery {delivery_id} is pending without a next attempt time")
        wait = (current.next_attempt_at - datetime.now(UTC)).total_seconds()
        event_queue.schedule_delivery(delivery_id, wait)
        return DispatchReport(0, 0)
    return attempt_all([delivery])


def attempt_all(deliveries: list[WebhookDelivery]) -> DispatchReport:
    """The HTTP attempts side by side, each on a thread of its own and none holding a database connection (a
    slow endpoint costs its own timeout, no one else's); each recorded in this thread as soon as it ends, in
    a short transaction of its own, so a record never needs more than one database connection."""
    if not deliveries:
        return DispatchReport(0, 0)
    # Read here: the threads below do not see the invoking function's settings (a context variable).
    settings = config.current(WebhookDeliverySettings)
    if len(deliveries) == 1:
        outcomes = [_record(deliveries[0], _send(deliveries[0], settings))]
    else:
        with ThreadPoolExecutor(max_workers=len(deliveries), thread_name_prefix="webhook") as attempts:
            pending = {attempts.submit(_send, delivery, settings): delivery for delivery in deliveries}
            outcomes = [_record(pending[done], done.result()) for done in as_completed(pending)]
    return DispatchReport(attempted=len(outcomes), succeeded=sum(outcomes))


def sign(delivery: WebhookDelivery, at: datetime) -> dict[str, str]:
    """Standard Webhooks headers: webhook-id is the event id, the same on every retry."""
    from standardwebhooks import Webhook  # only the dispatcher pays for the import

    message_id = f"evt_{delivery.event_id}"
    return {
        "content-type": "application/json",
        "user-agent": "unified-messaging-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(delivery.secret).sign(message_id, at, delivery.payload),
    }


def _send(delivery: WebhookDelivery, settings: WebhookDeliverySettings) -> HttpResult | None:
    """One signed HTTP attempt; None when the endpoint was disabled since the delivery was created."""
    if not delivery.endpoint_enabled:
        return None
    return post(
        delivery.url,
        delivery.payload.encode(),
        sign(delivery, datetime.now(UTC)),
        allow_private=settings.webhook_allow_private_targets,
        connect_timeout=settings.webhook_connect_timeout_seconds,
        total_timeout=settings.webhook_timeout_seconds,
    )


def _record(delivery: WebhookDelivery, result: HttpResult | None) -> bool:
    """Log an attempt and schedule what follows. Returns True when the endpoint accepted the event."""
    settings = config.current(WebhookDeliverySettings)
    if result is None:
        with transaction() as connection:
            webhooks.abandon_delivery(connection, delivery.id, "endpoint disabled")
        return False
    attempt_number = delivery.attempts + 1
    next_attempt_at: datetime | None = None
    if result.succeeded:
        status = outcome = "succeeded"
    elif datetime.now(UTC) >= delivery.retry_until:
        status = outcome = "failed"
    else:
        status, outcome = "pending", "retrying"
        delay = backoff_seconds(
            attempt_number,
            base_seconds=settings.event_retry_base_seconds,
            max_seconds=settings.event_retry_max_seconds,
        )
        next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
    reason = (
        f"disabled after {settings.event_endpoint_disable_after} consecutive failed deliveries; "
        f"last error: {result.error}"
    )
    with transaction() as connection:
        still_enabled = webhooks.record_attempt(
            connection,
            delivery.id,
            status=status,
            outcome=outcome,
            status_code=result.status_code,
            error=result.error,
            response_excerpt=result.response_excerpt,
            duration_ms=result.duration_ms,
            next_attempt_at=next_attempt_at,
            disable_after=settings.event_endpoint_disable_after,
            disable_reason=reason,
        )
    log = {
        "delivery_id": delivery.id,
        "event_id": delivery.event_id,
        "endpoint_id": delivery.endpoint_id,
        "attempt": attempt_number,
        "status_code": result.status_code,
        "error": result.error,
        "duration_ms": result.duration_ms,
    }
    if status == "succeeded":
        metrics.add_metric(name="WebhookDeliveries", unit="Count", value=1)
        logger.info("webhook delivered", extra=log)
        return True
    if next_attempt_at is not None:  # pending: attempted again at that instant
        logger.info("webhook attempt failed; retrying", extra={**log, "next_attempt_at": next_attempt_at})
        queue.best_effort(
            lambda: event_queue.schedule_delivery(delivery.id, (next_attempt_at - datetime.now(UTC)).total_seconds()),
            "could not enqueue a webhook retry; the sweep will",
            delivery_id=delivery.id,
        )
        return False
    metrics.add_metric(name="WebhookDeliveriesFailed", unit="Count", value=1)
    logger.warning("webhook delivery failed for good", extra=log)
    if still_enabled is False:
        metrics.add_metric(name="WebhookEndpointsDisabled", unit="Count", value=1)
        logger.warning("webhook endpoint disabled", extra={"endpoint_id": delivery.endpoint_id, "reason": reason})
    # If SQS cannot take it, nothing is lost: the delivery is already `failed` with its last error in the database.
    queue.best_effort(
        lambda: event_queue.dead_letter_delivery(delivery.id, result.error or "failed"),
        "could not copy a failed delivery to EventDLQ",
        delivery_id=delivery.id,
    )
    return False


@dataclass(frozen=True)
class RelayReport:
    events: list[int]
    deliveries: list[int]


def sweep_outbox() -> RelayReport:
    """Offer again the events the dispatcher never took, and re-enqueue overdue deliveries (a delivery is
    made due now in the same transaction as its enqueue, so a failed enqueue changes nothing)."""
    if not config.current(EventQueueSettings).event_queue_url:
        return RelayReport([], [])  # no EventQueue in this deployment: nothing to relay to
    settings = config.current(SweepSettings)
    with transaction() as connection:
        event_ids = events.find_unrelayed_events(connection, settings.sweep_grace_seconds, settings.sweep_batch_size)
    if event_ids:
        event_queue.enqueue_events(event_ids)
    with transaction() as connection:
        delivery_ids = webhooks.claim_overdue_deliveries(
            connection, settings.sweep_grace_seconds, settings.sweep_batch_size
        )
        if delivery_ids:
            event_queue.enqueue_deliveries(delivery_ids)
    if event_ids:
        metrics.add_metric(name="RelayedEvents", unit="Count", value=len(event_ids))
        logger.warning("relayed events the dispatcher has not taken", extra={"count": len(event_ids)})
    if delivery_ids:
        metrics.add_metric(name="SweptWebhookDeliveries", unit="Count", value=len(delivery_ids))
        logger.warning("re-enqueued overdue webhook deliveries", extra={"count": len(delivery_ids)})
    return RelayReport(event_ids, delivery_ids)
