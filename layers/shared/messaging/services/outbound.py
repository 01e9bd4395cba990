"""Sending: store the message, make the first provider attempt, and hand failures to the retry queue.

A message is committed (`queued`, leased for SEND_LEASE_SECONDS) before the provider is called, so a
crash at any later point leaves a row that the retry consumer or the sweep will finish; the provider is
given our message id as its idempotency token, so finishing it never delivers twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from messaging import config, queue
from messaging.config import IdempotencySettings, RetryPolicySettings, SegmentSettings, ThrottleSettings
from messaging.db import repository
from messaging.db import suppressions as suppression_store
from messaging.db.engine import DATABASE_UNAVAILABLE_ERRORS, Transaction, transaction
from messaging.documents import message_document
from messaging.domain import IdempotencyRecord, Message, NewMessage, StoredMessage
from messaging.enums import Direction, EventSource, MessageType
from messaging.errors import Conflict, InvalidInput, NotFound, RequestInFlight
from messaging.models import MessageOut, MessageStatus, Provider, SendEmail, SendSms
from messaging.observability import logger, metrics
from messaging.segments import with_segments
from messaging.services.delivery import OutcomeInDoubt, attempt
from messaging.services.suppressions import ensure_sendable

SMS_ROUTE = "POST /api/messages/sms"
EMAIL_ROUTE = "POST /api/messages/email"
RESEND_ROUTE = "POST /api/messages/{message_id}/resend"


@dataclass(frozen=True)
class SendResult:
    message: MessageOut
    status_code: int = 202
    replayed: bool = False


def send_sms(payload: SendSms, idempotency_key: str | None = None) -> SendResult:
    message = _within_segment_limit(with_segments(_new_message(payload, payload.type, Provider.SMS)))
    return _send(SMS_ROUTE, _fingerprint(SMS_ROUTE, payload), message, idempotency_key)


def _within_segment_limit(message: NewMessage) -> NewMessage:
    """The message, if it is not an SMS longer than MAX_SMS_SEGMENTS."""
    limit = config.current(SegmentSettings).max_sms_segments
    if message.type == "sms" and (message.segments or 0) > limit:
        raise InvalidInput(
            f"body needs {message.segments} {message.encoding} segments; at most {limit} are allowed", field="body"
        )
    return message


def send_email(payload: SendEmail, idempotency_key: str | None = None) -> SendResult:
    message = _new_message(payload, "email", Provider.EMAIL)
    return _send(EMAIL_ROUTE, _fingerprint(EMAIL_ROUTE, payload), message, idempotency_key)


def resend(message_id: int, idempotency_key: str | None = None) -> SendResult:
    """A new outbound message with a failed message's content, sent like any other (the original stays
    `failed`; the new one records `resent_from`). The request is the message id: an Idempotency-Key
    replays the first resend of that id, and is refused with another id."""
    with transaction() as connection:
        original = repository.get_message(connection, message_id)
    if original is None:
        raise NotFound(f"message {message_id} does not exist", field="id")
    if original.direction != Direction.OUTBOUND:
        raise InvalidInput(f"message {message_id} is inbound; only a sent message can be resent", field="id")
    if original.status != MessageStatus.FAILED:
        raise Conflict(f"message {message_id} is '{original.status}'; only a failed message can be resent", field="id")
    payload, provider = _resend_payload(original)
    message = replace(_new_message(payload, original.type, provider), resent_from=original.id)
    message = _within_segment_limit(with_segments(message))
    fingerprint = hashlib.sha256(json.dumps([RESEND_ROUTE, message_id]).encode()).hexdigest()
    return _send(RESEND_ROUTE, fingerprint, message, idempotency_key)


def _resend_payload(original: Message) -> tuple[SendSms | SendEmail, Provider]:
    """The failed message's content as a send request, checked by today's rules like any send."""
    content = {"from": original.from_address, "to": original.to_address, "body": original.body}
    try:
        if original.type == MessageType.EMAIL:
            return SendEmail.model_validate({**content, "attachments": list(original.attachments)}), Provider.EMAIL
        attachments = list(original.attachments) or None
        return SendSms.model_validate({**content, "type": original.type, "attachments": attachments}), Provider.SMS
    except ValidationError as error:
        problem = error.errors()[0]
        raise InvalidInput(f"the failed message can no longer be sent: {problem['msg']}", field="id") from None


def _new_message(payload: SendSms | SendEmail, message_type: str, provider: Provider) -> NewMessage:
    now = datetime.now(UTC)
    return NewMessage(
        direction="outbound",
        type=message_type,
        from_address=payload.from_,
        to_address=payload.to,
        body=payload.body,
        attachments=payload.attachment_list,
        timestamp=payload.timestamp or now,
        status=MessageStatus.QUEUED,
        provider=provider,
        next_attempt_at=now + timedelta(seconds=config.current(RetryPolicySettings).send_lease_seconds),
    )


def _fingerprint(route: str, payload: SendSms | SendEmail) -> str:
    canonical = json.dumps(
        [route, payload.model_dump(mode="json", by_alias=True, exclude_none=True)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _send(route: str, fingerprint: str, message: NewMessage, idempotency_key: str | None) -> SendResult:
    """The one send path: claim the Idempotency-Key (whose request `fingerprint` identifies), store, attempt."""
    ttl_seconds = config.current(IdempotencySettings).idempotency_key_ttl_seconds
    with transaction() as connection:
        if idempotency_key is not None:
            claimed = repository.claim_idempotency_key(connection, route, idempotency_key, fingerprint, ttl_seconds)
            if claimed is None:
                twin = repository.find_idempotency_key(connection, route, idempotency_key)
                return _replay(twin, fingerprint)
        outbound = store_outbound(connection, message)
        stored = outbound.stored
        if idempotency_key is not None:
            repository.link_idempotency_key(connection, route, idempotency_key, stored.id)
    logger.append_keys(message_id=stored.id, conversation_id=stored.conversation_id)
    metrics.add_metric(name="MessagesQueued", unit="Count", value=1)
    document = dispatch(outbound)
    if idempotency_key is not None:
        _remember_response(route, idempotency_key, document)
    return SendResult(message=document)


@dataclass(frozen=True)
class StoredOutbound:
    message: NewMessage
    stored: StoredMessage
    throttled: bool  # waits for its sender's slot: no attempt now


def store_outbound(connection: Transaction, message: NewMessage) -> StoredOutbound:
    """Store an outbound message in the caller's transaction: its sender's next slot (throttling) first,
    then the suppression check, then the row. Locks are always taken in this order (sender slot, recipient,
    conversation), by sends and by opt-out keywords alike, so they never deadlock."""
    slot = reserve_slot(connection, message.from_address)
    if slot is not None:
        message = replace(message, next_attempt_at=slot)
    ensure_sendable(connection, message)
    return StoredOutbound(message, repository.store_message(connection, message), throttled=slot is not None)


def reserve_slot(connection: Transaction, sender: str) -> datetime | None:
    """Beyond SENDER_RATE_PER_SECOND, the instant the sender's next message may go (None: now)."""
    rate = config.current(ThrottleSettings).sender_rate_per_second
    if rate <= 0:
        return None
    slot, now = suppression_store.reserve_sender_slot(connection, sender, 1.0 / rate)
    return slot if slot > now else None


def dispatch(outbound: StoredOutbound) -> MessageOut:
    """After the commit: the first attempt now, or, for a throttled message, a retry due at its slot."""
    if outbound.throttled:
        return _schedule_throttled(outbound.stored, outbound.message)
    return _first_attempt(outbound.stored, outbound.message)


def _schedule_throttled(stored: StoredMessage, message: NewMessage) -> MessageOut:
    pending = message.as_stored(stored.id, stored.conversation_id, at=datetime.now(UTC))
    due = message.next_attempt_at or datetime.now(UTC)
    # Not lost if SQS cannot take it: the message stays `queued` with its due time, and the sweep picks up
    # overdue sends.
    queue.best_effort(
        lambda: queue.schedule_retry(stored.id, (due - datetime.now(UTC)).total_seconds()),
        "could not enqueue a throttled send; the sweep will pick it up",
        message_id=stored.id,
    )
    metrics.add_metric(name="SendsThrottled", unit="Count", value=1)
    return message_document(pending)


def _first_attempt(stored: StoredMessage, message: NewMessage) -> MessageOut:
    pending = message.as_stored(stored.id, stored.conversation_id, at=datetime.now(UTC))
    try:
        return message_document(attempt(pending, EventSource.API))
    except DATABASE_UNAVAILABLE_ERRORS:
        # What may go wrong once the message is committed without the request failing: the database becoming
        # unavailable, or (below) a send failing for good whose provider cannot be asked about it. The message
        # stays `queued`; the retry consumer or the sweep finishes it, and the client still gets its 202.
        # Anything else is a defect and propagates.
        logger.exception("first send attempt could not be recorded; the sweep will finish it")
        return message_document(pending)
    except OutcomeInDoubt:
        logger.warning("first send attempt failed and its outcome is in doubt; the sweep will finish it", exc_info=True)
        return message_document(pending)


def _replay(twin: IdempotencyRecord | None, fingerprint: str) -> SendResult:
    if twin is None:
        raise Conflict("a request with this Idempotency-Key just expired; retry", field="Idempotency-Key")
    if twin.request_hash != fingerprint:
        raise InvalidInput("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
    if twin.response_body is not None and twin.response_status is not None:
        metrics.add_metric(name="IdempotentReplays", unit="Count", value=1)
        return SendResult(
            message=MessageOut.model_validate(twin.response_body),
            status_code=twin.response_status,
            replayed=True,
        )
    lease = timedelta(seconds=config.current(RetryPolicySettings).send_lease_seconds)
    if twin.message_id is not None and twin.created_at < datetime.now(UTC) - lease:
        # The first request died after storing its message: answer with the message as it stands now.
        with transaction() as connection:
            current = repository.get_message(connection, twin.message_id)
        if current is not None:
            return SendResult(message=message_document(current), replayed=True)
    raise RequestInFlight("a request with this Idempotency-Key is still being processed", field="Idempotency-Key")


def _remember_response(route: str, key: str, document: MessageOut) -> None:
    try:
        with transaction() as connection:
            repository.remember_idempotent_response(
                connection, route, key, 202, document.model_dump(mode="json", by_alias=True)
            )
    except DATABASE_UNAVAILABLE_ERRORS:
        logger.exception("could not store the response of an idempotent request; twins will see the live message")
