"""The retry side of sending: the SQS consumer's per-record work and the sweep of overdue sends."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from messaging import config, queue
from messaging.config import RetryPolicySettings, SweepSettings, ThrottleSettings
from messaging.db import repository
from messaging.db import suppressions as suppression_store
from messaging.db.engine import Transaction, transaction
from messaging.db.repository import ClaimedSend
from messaging.enums import EventSource
from messaging.observability import logger, metrics
from messaging.services.delivery import attempt


class RetryNotDue(Exception):
    """The record arrived before its message's due time; it was postponed and will come back."""


@dataclass(frozen=True)
class SweepReport:
    requeued: list[int]
    purged_idempotency_keys: int


# A record that arrives less than this before its message is due is held in the consumer until the due
# instant instead of being made invisible: SQS delays and visibility timeouts are whole seconds, so only a
# hold can space a sender's sends closer than a second apart (README "Throttling").
MAX_HOLD_SECONDS = 1.0
# Time kept back from the invocation's remaining budget for the attempt itself (the database round trips and
# the provider call) before a record may be held.
ATTEMPT_RESERVE_SECONDS = 10.0


class _NotYourTurn(Exception):
    """The sender's previous hand-off is too recent to hand this message off within the hold window."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(f"the sender's next hand-off is in {wait_seconds:.2f}s")
        self.wait_seconds = wait_seconds


def retry_send(
    message_id: int,
    receipt_handle: str | None = None,
    source: EventSource = EventSource.RETRY,
    remaining_seconds: float = 0.0,
) -> str:
    """Process one retry record: attempt the send if it is due. Idempotent: a message that is already
    `sent` or `failed` (a duplicate delivery, or a retry that lost a race) is left alone. `source`: who
    enqueued the record (the sweep's re-enqueues record their attempt as `sweep`). `remaining_seconds`: what
    is left of the invocation's time; with enough of it, a record due within MAX_HOLD_SECONDS is claimed and
    held until its due instant (and, with SENDER_RATE_PER_SECOND, until 1/rate after the sender's previous
    hand-off to the provider).

    Returns the message's status afterwards. Raises RetryNotDue for a record that came early (after making
    it invisible until the due time), so the batch reports it as failed and SQS keeps it.
    """
    lease_seconds = config.current(RetryPolicySettings).send_lease_seconds
    rate = config.current(ThrottleSettings).sender_rate_per_second
    window = max(0.0, min(MAX_HOLD_SECONDS, remaining_seconds - ATTEMPT_RESERVE_SECONDS))
    try:
        with transaction() as connection:
            claim = repository.claim_due_send(connection, message_id, lease_seconds, tolerance_seconds=window)
            current = claim.message if claim else repository.get_message(connection, message_id)
            wait = None  # how long after `started` the attempt may reach the provider
            if claim is not None:
                wait = (
                    _take_handoff(connection, claim, 1.0 / rate, window)
                    if rate > 0
                    else (claim.due_at - claim.clock).total_seconds()
                )
            started = time.monotonic()
    except _NotYourTurn as busy:  # the claim was rolled back: the message keeps its due time
        if receipt_handle is not None:
            _postpone(receipt_handle, busy.wait_seconds)
        raise RetryNotDue(f"message {message_id}: {busy}") from None
    if current is None:
        logger.warning("retry for an unknown message dropped", extra={"message_id": message_id})
        return "unknown"
    if claim is None or wait is None:
        if not current.pending:
            logger.info("retry for a finished message ignored", extra={"message_id": message_id})
            return str(current.status)
        due = current.next_attempt_at or datetime.now(UTC)
        wait = (due - datetime.now(UTC)).total_seconds()
        if receipt_handle is not None:
            _postpone(receipt_handle, wait)
        raise RetryNotDue(f"message {message_id} is due in {wait:.0f}s")
    # Billed Lambda time, at most MAX_HOLD_SECONDS per batch in practice (a batch's records are taken in due
    # order and arrive at most a second early), and far inside the lease and the visibility timeout. The
    # database's clock decided the instant; the wait is measured on the local clock from the claim.
    return str(attempt(claim.message, source, hold_until=started + wait).status)


def _take_handoff(connection: Transaction, claim: ClaimedSend, spacing: float, window: float) -> float:
    """How soon (seconds from now) the claimed message may reach the provider: at its due time, but no
    sooner than `spacing` after the sender's previous hand-off (a record that arrived late must not follow
    it too closely). That instant is recorded as the sender's latest hand-off; beyond the hold window,
    _NotYourTurn (nothing recorded)."""
    previous, clock = suppression_store.lock_handoffs(connection, claim.message.from_address)
    earliest = [claim.due_at, clock] + ([] if previous is None else [previous + timedelta(seconds=spacing)])
    go_at = max(earliest)
    wait = (go_at - clock).total_seconds()
    if wait > window:
        raise _NotYourTurn(wait)
    suppression_store.record_handoff(connection, claim.message.from_address, go_at)
    return wait


def in_due_order(message_ids: list[int]) -> list[int]:
    """The ids by their messages' due times, earliest first (unknown ones first: they are dropped at once).
    A batch is worked through in this order, so holding one record until its instant never makes an
    earlier-due record of the batch late."""
    with transaction() as connection:
        due = repository.due_times(connection, message_ids)
    earliest = datetime.min.replace(tzinfo=UTC)
    return sorted(message_ids, key=lambda message_id: due.get(message_id) or earliest)


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
