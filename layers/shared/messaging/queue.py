"""The retry queue (SendRetryQueue) and its dead-letter queue. boto3 is imported only when first needed.

Every SQS call raises QueueUnavailable when SQS does not take it; a caller that can leave the record to
whatever catches it up (the sweep, a visibility timeout, a lookup) calls `best_effort`, which catches that and
nothing else: a defect, or a function whose settings lack a queue it needs, propagates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from messaging import config, runtime
from messaging.config import DeadLetterQueueSettings, ProviderReceiptSettings, RetryQueueSettings, SqsSettings
from messaging.enums import EventSource
from messaging.observability import logger, metrics

MAX_SQS_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 12 * 3600


class QueueUnavailable(Exception):
    """SQS did not take a record (or a change to one): unreachable, timing out, refusing the request or part
    of a batch; or an optional queue is not configured here. Never a defect or a configuration error."""


@contextmanager
def sqs_call(action: str) -> Iterator[None]:
    """Run SQS calls, their failures raised as QueueUnavailable (botocore is imported here, on first use)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError, ConnectionError) as error:
        raise QueueUnavailable(f"could not {action}: {error}") from error


def best_effort(enqueue: Callable[[], object], failure: str, *, metric: str | None = None, **details: Any) -> bool:
    """Enqueue, or leave the record to whatever catches it up when SQS cannot take it: then `failure` (which
    says who catches it up) is logged with `details`, `metric` counted, and False returned. Only
    QueueUnavailable is caught: a defect or a configuration error propagates."""
    try:
        enqueue()
    except QueueUnavailable:
        if metric is not None:
            metrics.add_metric(name=metric, unit="Count", value=1)
        logger.warning(failure, extra=details, exc_info=True)
        return False
    return True


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
    url = _queue_url()
    with sqs_call("enqueue a retry"):
        sqs_client().send_message(QueueUrl=url, MessageBody=retry_body(message_id), DelaySeconds=delay)


def schedule_retries_now(message_ids: list[int], source: EventSource = EventSource.RETRY) -> None:
    url = _queue_url()
    send_batch(url, [retry_body(message_id, source) for message_id in message_ids], "enqueue retries")


def send_batch(url: str, bodies: list[str], action: str) -> None:
    """Send the records ten at a time; QueueUnavailable if SQS refuses any of them."""
    with sqs_call(action):
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            response = sqs_client().send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(chunk)]
            )
            if response.get("Failed"):
                raise QueueUnavailable(f"could not {action}: SQS refused {len(response['Failed'])} records")


def dead_letter(message_id: int, reason: str) -> None:
    url = config.current(DeadLetterQueueSettings).send_retry_dlq_url
    with sqs_call("copy a failed send to the dead-letter queue"):
        sqs_client().send_message(
            QueueUrl=url,
            MessageBody=retry_body(message_id),
            MessageAttributes={"failure_reason": {"DataType": "String", "StringValue": reason[:1000] or "failed"}},
        )


def postpone(receipt_handle: str, seconds: float) -> None:
    """Keep a received retry invisible until about its due time (at most 12 hours from now): whole seconds,
    rounded down so it comes back less than a second early and is held until the instant, but at least one
    second, so a record due very soon is not received again at once (each receipt counts toward the DLQ)."""
    url = _queue_url()
    with sqs_call("postpone a retry"):
        sqs_client().change_message_visibility(
            QueueUrl=url,
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
    with sqs_call("schedule a provider receipt"):
        sqs_client().send_message(QueueUrl=url, MessageBody=json.dumps(body), DelaySeconds=delay)
    return True
