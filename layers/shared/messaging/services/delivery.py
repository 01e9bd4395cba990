"""Delivering a stored message: one provider attempt and its outcome, recorded.

Shared by the send path (the first, synchronous attempt) and the retry consumer, so both settle a send
the same way: accepted is `sent`; a retryable failure with attempts left is `retrying` and enqueued; any
other failure is `failed` and copied to the dead-letter queue (a recipient who opted out meanwhile: `failed`
with `recipient_opted_out`, never sent to the provider, and not copied). A status only moves forward (the
repository records an outcome only on a pending send), and the provider is given our message id as its
idempotency token, so repeating an attempt never delivers twice.

`failed` is never a guess: an attempt may have been accepted although we never heard (a timeout), so
before declaring a send failed the provider is asked (`lookup`); if it accepted the send, it is `sent`.
"""

from __future__ import annotations

import time

from messaging import config, queue
from messaging.config import RetryPolicySettings
from messaging.db import repository
from messaging.db.engine import transaction
from messaging.domain import Message
from messaging.enums import EventSource
from messaging.observability import logger, metrics
from messaging.providers import Accepted, OutboundEnvelope, ProviderError, provider_for
from messaging.services.receipts import suppress_for_held_events
from messaging.services.retry_policy import backoff_seconds
from messaging.services.suppressions import OPTED_OUT, deliver_unless_suppressed


class MessageVanished(LookupError):
    """A message being delivered is no longer in the database (messages are never deleted: a defect)."""


class OutcomeInDoubt(Exception):
    """A send failed for good, but the provider could not be asked whether it accepted it after all (an
    earlier attempt, or this one, may have been accepted unheard): the message stays pending and leased, and
    the retry path attempts it again."""


def envelope_of(message: Message) -> OutboundEnvelope:
    return OutboundEnvelope(
        idempotency_token=str(message.id),
        client_reference=str(message.id),
        type=message.type,
        from_address=message.from_address,
        to_address=message.to_address,
        body=message.body,
        attachments=message.attachments,
    )


def attempt(message: Message, source: EventSource, hold_until: float | None = None) -> Message:
    """One provider attempt for a leased pending message; returns the message with the outcome recorded.
    `source` is who made the attempt (the send API or the retry consumer), for the history. `hold_until`
    (a time.monotonic() instant, under a second away): the provider is called no sooner, and the wait
    is the last thing before the call, so a throttled sender's messages reach the provider at their
    instants without the jitter of the statements before it (README "Throttling")."""
    provider = provider_for(message.type)

    def send() -> Accepted:
        if hold_until is not None and (hold := hold_until - time.monotonic()) > 0:
            time.sleep(hold)
        return provider.send(envelope_of(message))

    try:
        accepted = deliver_unless_suppressed(message, send)
    except ProviderError as error:
        return _record_failure(message, error, source)
    if accepted is None:
        return _record_opted_out(message, source)
    return _record_success(message, accepted.provider_message_id, source, replayed=accepted.replayed)


def _record_opted_out(message: Message, source: EventSource) -> Message:
    """The recipient opted out after the message was stored: it fails without reaching the provider, with
    `recipient_opted_out` as its status detail (no dead letter: redriving it could only fail again). Unless
    an earlier attempt reached the provider unheard (a timeout): then it was sent before the opt-out, and
    `failed` would be a guess, so the provider is asked first, as before any other `failed`."""
    if message.attempts and (sent := _accepted_unheard(message, OPTED_OUT)) is not None:
        return sent
    with transaction() as connection:
        failed = repository.mark_failed(connection, message.id, OPTED_OUT, source)
    if failed is None:
        return _settled_elsewhere(message.id)
    metrics.add_metric(name="MessagesFailed", unit="Count", value=1)
    logger.warning("message failed: recipient opted out", extra={"message_id": message.id})
    return failed


def _record_success(message: Message, provider_message_id: str, source: EventSource, *, replayed: bool) -> Message:
    with transaction() as connection:
        sent = repository.mark_sent(connection, message.id, provider_message_id, source)
        if sent is not None:
            suppress_for_held_events(connection, message.id, sent.message.to_address, sent.email_events)
        current = sent.message if sent is not None else repository.get_message(connection, message.id)
    metrics.add_metric(name="MessagesSent", unit="Count", value=1)
    logger.info("message sent", extra={"message_id": message.id, "replayed": replayed, "source": source.value})
    return _found(current, message.id)


def _record_failure(message: Message, error: ProviderError, source: EventSource) -> Message:
    settings = config.current(RetryPolicySettings)
    attempts_made = message.attempts + 1
    if error.throttled:
        metrics.add_metric(name="ProviderThrottled", unit="Count", value=1)
    details = {"message_id": message.id, "error": error.describe(), "attempts": attempts_made}
    if error.retryable and attempts_made < settings.max_send_attempts:
        delay = backoff_seconds(
            attempts_made,
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
            retry_after_seconds=error.retry_after_seconds,
        )
        with transaction() as connection:
            retrying = repository.schedule_retry(connection, message.id, delay, error.describe(), source)
        if retrying is None:
            return _settled_elsewhere(message.id)
        metrics.add_metric(name="RetriesScheduled", unit="Count", value=1)
        logger.info("send attempt failed; retry scheduled", extra={**details, "delay_seconds": round(delay, 3)})
        # Not lost if SQS cannot take it: the message stays `retrying` with its due time, and the sweep
        # re-enqueues overdue ones.
        queue.best_effort(
            lambda: queue.schedule_retry(message.id, delay),
            "could not enqueue a retry; the sweep will pick the message up",
            metric="RetryEnqueueFailures",
            message_id=message.id,
        )
        return retrying
    if (sent := _accepted_unheard(message, error.describe())) is not None:
        return sent
    with transaction() as connection:
        failed = repository.mark_failed(connection, message.id, error.describe(), source)
    if failed is None:
        return _settled_elsewhere(message.id)
    metrics.add_metric(name="MessagesFailed", unit="Count", value=1)
    logger.warning("message failed", extra=details)
    _dead_letter(failed)
    return failed


def _accepted_unheard(message: Message, failure: str) -> Message | None:
    """Ask the provider before declaring a send failed for `failure`: an earlier attempt (or this one) may
    have been accepted although we never heard. The message recorded `sent` if it was; None if not.
    OutcomeInDoubt when the provider cannot be asked (the message stays pending, for the retry path)."""
    try:
        found = provider_for(message.type).lookup(str(message.id))
    except ProviderError as lookup_error:
        raise OutcomeInDoubt(
            f"message {message.id} failed ({failure}); the provider could not be asked whether it was "
            f"accepted after all ({lookup_error.describe()})"
        ) from lookup_error
    if not (found.accepted and found.provider_message_id):
        return None
    metrics.add_metric(name="AmbiguousSendsSettled", unit="Count", value=1)
    logger.info("the provider had accepted the send after all", extra={"message_id": message.id, "failure": failure})
    return _record_success(message, found.provider_message_id, EventSource.RECONCILIATION, replayed=True)


def _dead_letter(failed: Message) -> None:
    """Copy a send that failed for good to SendRetryDLQ, whichever attempt it failed on. If SQS cannot take
    it, nothing is lost: the message is already `failed` with its last error in the database."""
    if queue.best_effort(
        lambda: queue.dead_letter(failed.id, failed.last_error or "failed"),
        "could not copy a failed send to the dead-letter queue",
        metric="DeadLetterFailures",
        message_id=failed.id,
    ):
        metrics.add_metric(name="DeadLettered", unit="Count", value=1)


def _settled_elsewhere(message_id: int) -> Message:
    """The message stopped being pending during the attempt (another worker recorded an outcome first)."""
    with transaction() as connection:
        current = repository.get_message(connection, message_id)
    return _found(current, message_id)


def _found(message: Message | None, message_id: int) -> Message:
    if message is None:
        raise MessageVanished(f"message {message_id} is not in the database")
    return message
