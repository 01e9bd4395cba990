"""The retry side of sending: the SQS consumer's per-record work and the sweep of overdue sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from messaging import config, queue
from messaging.config import RetryPolicySettings, SweepSettings
from messaging.db import repository
from messaging.db.engine import transaction
from messaging.enums import EventSource
from messaging.observability import logger, metrics
from messaging.services.delivery import attempt


class RetryNotDue(Exception):
    """The record arrived before its message's due time; it was postponed and will come back."""


@dataclass(frozen=True)
class SweepReport:
    requeued: list[int]
    purged_idempotency_keys: int


def retry_send(message_id: int, receipt_handle: str | None = None, source: EventSource = EventSource.RETRY) -> str:
    """Process one retry record: attempt the send if it is due. Idempotent: a message that is already
    `sent` or `failed` (a duplicate delivery, or a retry that lost a race) is left alone. `source`: who
    enqueued the record (the sweep's re-enqueues record their attempt as `sweep`).

    Returns the message's status afterwards. Raises RetryNotDue for a record that came early (after making
    it invisible until the due time), so the batch reports it as failed and SQS keeps it.
    """
    lease_seconds = config.current(RetryPolicySettings).send_lease_seconds
    with transaction() as connection:
        claimed = repository.claim_due_send(connection, message_id, lease_seconds)
        current = claimed or repository.get_message(connection, message_id)
    if current is None:
        logger.warning("retry for an unknown message dropped", extra={"message_id": message_id})
        return "unknown"
    if claimed is None:
        if not current.pending:
            logger.info("retry for a finished message ignored", extra={"message_id": message_id})
            return str(current.status)
        due = current.next_attempt_at or datetime.now(UTC)
        wait = (due - datetime.now(UTC)).total_seconds()
        if receipt_handle is not None:
            _postpone(receipt_handle, wait)
        raise RetryNotDue(f"message {message_id} is due in {wait:.0f}s")
    return str(attempt(claimed, source).status)


def _postpone(receipt_handle: str, seconds: float) -> None:
    # If SQS cannot take it, the record comes back after the queue's visibility timeout and is postponed again.
    queue.best_effort(lambda: queue.postpone(receipt_handle, seconds), "could not postpone an early retry record")


def sweep_overdue_sends() -> SweepReport:
    """Re-enqueue pending messages whose retry never arrived (enqueue failed, or a worker died).

    They are marked due now inside the same transaction as the enqueue, so a failed enqueue changes nothing
    and the next sweep tries again. The records say they come from the sweep: the attempt each leads to is
    recorded with source `sweep` in the history.
    """
    settings = config.current(SweepSettings)
    with transaction() as connection:
        message_ids = repository.claim_overdue_sends(
            connection, settings.sweep_grace_seconds, lease_seconds=0, limit=settings.sweep_batch_size
        )
        if message_ids:
            queue.schedule_retries_now(message_ids, EventSource.SWEEP)
    with transaction() as connection:
        purged = repository.purge_expired_idempotency_keys(connection)
    if message_ids:
        metrics.add_metric(name="SweptSends", unit="Count", value=len(message_ids))
        logger.warning("re-enqueued overdue sends", extra={"message_ids": message_ids})
    return SweepReport(requeued=message_ids, purged_idempotency_keys=purged)
