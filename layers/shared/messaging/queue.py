"""The retry queue (SendRetryQueue) and its dead-letter queue. boto3 is imported only when first needed."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from messaging import config, runtime
from messaging.config import DeadLetterQueueSettings, ProviderReceiptSettings, RetryQueueSettings, SqsSettings
from messaging.enums import EventSource

MAX_SQS_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 12 * 3600


def sqs_client() -> Any:
    return runtime.once("sqs client", _build_client)


def _build_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sqs",
        endpoint_url=config.current(SqsSettings).sqs_endpoint_url,
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}),
    )


@dataclass(frozen=True)
class RetryRecord:
    message_id: int
    # Who enqueued it, recorded as the source of the attempt's history row: the retry policy (`retry`), or the
    # sweep re-enqueueing a send whose retry was lost (`sweep`).
    source: EventSource = EventSource.RETRY


_RETRY_SOURCES = (EventSource.RETRY, EventSource.SWEEP)


def retry_body(message_id: int, source: EventSource = EventSource.RETRY) -> str:
    """`{"message_id": N}`; the sweep's records also say `"source": "sweep"`."""
    document: dict[str, Any] = {"message_id": message_id}
    if source != EventSource.RETRY:
        document["source"] = source.value
    return json.dumps(document)


def parse_retry_body(body: str) -> RetryRecord:
    document = json.loads(body)
    message_id = document["message_id"]
    if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id < 1:
        raise ValueError(f"not a message id: {message_id!r}")
    source = document.get("source", EventSource.RETRY.value)
    if source not in _RETRY_SOURCES:
        raise ValueError(f"not a retry source: {source!r}")
    return RetryRecord(message_id, EventSource(source))


def _queue_url() -> str:
    return config.current(RetryQueueSettings).send_retry_queue_url


def schedule_retry(message_id: int, delay_seconds: float) -> None:
    """Enqueue a retry that becomes visible after the delay (SQS caps delays at 15 minutes; the consumer
    extends the wait with a visibility change when the due time is further away).

    SQS delays are whole seconds: rounded down, so the record arrives up to a second early and the consumer
    holds it until the exact instant (rounded up, a sender's sends due within one second would all arrive
    together after it, and go in a clump)."""
    delay = min(MAX_SQS_DELAY_SECONDS, max(0, math.floor(delay_seconds)))
    sqs_client().send_message(QueueUrl=_queue_url(), MessageBody=retry_body(message_id), DelaySeconds=delay)


def schedule_retries_now(message_ids: list[int], source: EventSource = EventSource.RETRY) -> None:
    for start in range(0, len(message_ids), 10):
        chunk = message_ids[start : start + 10]
        response = sqs_client().send_message_batch(
            QueueUrl=_queue_url(),
            Entries=[{"Id": str(message_id), "MessageBody": retry_body(message_id, source)} for message_id in chunk],
        )
        if response.get("Failed"):
            raise RuntimeError(f"could not enqueue {len(response['Failed'])} retries: {response['Failed']}")


def dead_letter(message_id: int, reason: str) -> None:
    sqs_client().send_message(
        QueueUrl=config.current(DeadLetterQueueSettings).send_retry_dlq_url,
        MessageBody=retry_body(message_id),
        MessageAttributes={"failure_reason": {"DataType": "String", "StringValue": reason[:1000] or "failed"}},
    )


def postpone(receipt_handle: str, seconds: float) -> None:
    """Keep a received retry invisible until about its due time (at most 12 hours from now): whole seconds,
    rounded down so it comes back less than a second early and is held until the instant, but at least one
    second, so a record due very soon is not received again at once (each receipt counts toward the DLQ)."""
    sqs_client().change_message_visibility(
        QueueUrl=_queue_url(),
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=min(MAX_VISIBILITY_SECONDS, max(1, math.floor(seconds))),
    )


def schedule_provider_receipt(body: dict[str, Any], delay_seconds: float) -> bool:
    """The mock providers' receipt, due after the delay on ProviderReceiptQueue. False when no queue is
    configured (receipts are then not emitted; reconciliation still settles the message by lookup)."""
    url = config.current(ProviderReceiptSettings).provider_receipt_queue_url
    if not url:
        return False
    delay = min(MAX_SQS_DELAY_SECONDS, max(0, math.ceil(delay_seconds)))
    sqs_client().send_message(QueueUrl=url, MessageBody=json.dumps(body), DelaySeconds=delay)
    return True
