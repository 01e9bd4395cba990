"""Delivering a stored message: one provider attempt and its outcome, recorded.

Shared by the send path (the first, synchronous attempt) and the retry consumer. A status only moves
forward (every update is conditional on `queued`/`retrying`), and the provider is given our message id as
its idempotency token, so repeating an attempt never delivers twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, func

from messaging import queue
from messaging.config import get_settings
from messaging.db import repository
from messaging.db.engine import transaction
from messaging.db.schema import messages
from messaging.enums import MessageStatus
from messaging.observability import logger, metrics
from messaging.providers import Accepted, OutboundEnvelope, ProviderError, provider_for
from messaging.services.retry_policy import backoff_seconds

PENDING = (MessageStatus.QUEUED.value, MessageStatus.RETRYING.value)


@dataclass(frozen=True)
class AttemptOutcome:
    row: RowMapping
    final_failure: bool = False


def envelope_of(message: dict[str, Any] | RowMapping) -> OutboundEnvelope:
    return OutboundEnvelope(
        idempotency_token=str(message["id"]),
        type=message["type"],
        from_address=message["from_address"],
        to_address=message["to_address"],
        body=message["body"],
        attachments=tuple(message["attachments"]),
    )


def attempt(message: dict[str, Any] | RowMapping) -> AttemptOutcome:
    """One provider attempt for a leased `queued`/`retrying` message, and its outcome recorded."""
    provider = provider_for(message["type"])
    try:
        accepted = provider.send(envelope_of(message))
    except ProviderError as error:
        return _record_failure(message, error)
    return _record_success(message, accepted)


def _record_success(message: dict[str, Any] | RowMapping, accepted: Accepted) -> AttemptOutcome:
    with transaction() as connection:
        row = repository.update_message(
            connection,
            message["id"],
            PENDING,
            status=MessageStatus.SENT.value,
            provider_message_id=accepted.provider_message_id,
            attempts=messages.c.attempts + 1,
            next_attempt_at=None,
            last_error=None,
        )
        if row is None:
            row = repository.get_message(connection, message["id"])
    assert row is not None
    metrics.add_metric(name="MessagesSent", unit="Count", value=1)
    logger.info("message sent", extra={"message_id": message["id"], "replayed": accepted.replayed})
    return AttemptOutcome(row=row)


def _record_failure(message: dict[str, Any] | RowMapping, error: ProviderError) -> AttemptOutcome:
    settings = get_settings()
    attempts_made = message["attempts"] + 1
    if error.throttled:
        metrics.add_metric(name="ProviderThrottled", unit="Count", value=1)
    retry = error.retryable and attempts_made < settings.max_send_attempts
    delay = (
        backoff_seconds(
            attempts_made,
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
            retry_after_seconds=error.retry_after_seconds,
        )
        if retry
        else 0.0
    )
    with transaction() as connection:
        row = repository.update_message(
            connection,
            message["id"],
            PENDING,
            status=(MessageStatus.RETRYING if retry else MessageStatus.FAILED).value,
            attempts=messages.c.attempts + 1,
            next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, delay) if retry else None,
            last_error=error.describe(),
        )
    if row is None:
        return AttemptOutcome(row=_current(message["id"]))
    details = {"message_id": message["id"], "error": error.describe(), "attempts": attempts_made}
    if retry:
        metrics.add_metric(name="RetriesScheduled", unit="Count", value=1)
        logger.info("send attempt failed; retry scheduled", extra={**details, "delay_seconds": round(delay, 3)})
        _enqueue_retry(message["id"], delay)
        return AttemptOutcome(row=row)
    metrics.add_metric(name="MessagesFailed", unit="Count", value=1)
    logger.warning("message failed", extra=details)
    return AttemptOutcome(row=row, final_failure=True)


def _enqueue_retry(message_id: int, delay: float) -> None:
    try:
        queue.schedule_retry(message_id, delay)
    except Exception:
        # Not lost: the message stays `retrying` with its due time, and the sweep re-enqueues overdue ones.
        metrics.add_metric(name="RetryEnqueueFailures", unit="Count", value=1)
        logger.exception(
            "could not enqueue a retry; the sweep will pick the message up", extra={"message_id": message_id}
        )


def _current(message_id: int) -> RowMapping:
    with transaction() as connection:
        row = repository.get_message(connection, message_id)
    assert row is not None
    return row
