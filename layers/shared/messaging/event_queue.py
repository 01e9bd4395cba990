"""EventQueue and its dead-letter queue: events to fan out and deliveries to attempt again.

Two kinds of record: {"event_id": n} (fan an event out to its subscribers) and {"delivery_id": n} (attempt
one delivery). SQS caps delays at 15 minutes; a longer wait is a chain of delayed records (the consumer
re-enqueues a record that arrives before its delivery is due), and the sweep catches any lost link.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from messaging import config
from messaging.config import EventQueueSettings, WebhookDeliverySettings
from messaging.queue import MAX_SQS_DELAY_SECONDS, QueueUnavailable, best_effort, send_batch, sqs_call, sqs_client


@dataclass(frozen=True)
class EventRecord:
    event_id: int | None = None
    delivery_id: int | None = None


def _positive_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"not an id: {value!r}")
    return value


def parse_record(body: str) -> EventRecord:
    document = json.loads(body)
    if not isinstance(document, dict) or len(document) != 1:
        raise ValueError("an event record holds exactly one of event_id, delivery_id")
    if "event_id" in document:
        return EventRecord(event_id=_positive_id(document["event_id"]))
    if "delivery_id" in document:
        return EventRecord(delivery_id=_positive_id(document["delivery_id"]))
    raise ValueError("an event record holds exactly one of event_id, delivery_id")


def _queue_url() -> str:
    """EventQueue's URL. Optional (config.EventQueueSettings): where there is none, every record is left to the
    sweep, as when SQS is down."""
    url = config.current(EventQueueSettings).event_queue_url
    if not url:
        raise QueueUnavailable("EVENT_QUEUE_URL is not configured")
    return url


def publish_events(event_ids: list[int]) -> None:
    """After a commit: hand the new events to the dispatcher. Best effort: a failure is logged, and the sweep
    relays every event the dispatcher has not received after SWEEP_GRACE_SECONDS."""
    if not config.current(EventQueueSettings).event_queue_url:
        return  # no EventQueue in this deployment (a test, a bench): the sweep relays
    best_effort(
        lambda: enqueue_events(event_ids), "could not enqueue events; the sweep will relay them", event_ids=event_ids
    )


def enqueue_events(event_ids: list[int]) -> None:
    """The sweep's relay: raises on failure, so the sweep's transaction rolls back and nothing is marked."""
    send_batch(_queue_url(), [json.dumps({"event_id": event_id}) for event_id in event_ids], "enqueue events")


def enqueue_deliveries(delivery_ids: list[int]) -> None:
    bodies = [json.dumps({"delivery_id": delivery_id}) for delivery_id in delivery_ids]
    send_batch(_queue_url(), bodies, "enqueue webhook deliveries")


def schedule_delivery(delivery_id: int, delay_seconds: float) -> None:
    """A record that becomes visible after the delay, or after 15 minutes when the delay is longer."""
    url = _queue_url()
    delay = min(MAX_SQS_DELAY_SECONDS, max(0, math.ceil(delay_seconds)))
    with sqs_call("enqueue a webhook delivery"):
        sqs_client().send_message(
            QueueUrl=url, MessageBody=json.dumps({"delivery_id": delivery_id}), DelaySeconds=delay
        )


def dead_letter_delivery(delivery_id: int, reason: str) -> None:
    url = config.current(WebhookDeliverySettings).event_dlq_url
    if not url:
        raise QueueUnavailable("EVENT_DLQ_URL is not configured")
    with sqs_call("copy a failed delivery to EventDLQ"):
        sqs_client().send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"delivery_id": delivery_id}),
            MessageAttributes={"failure_reason": {"DataType": "String", "StringValue": reason[:1000] or "failed"}},
        )
