"""Who may not be sent to: the suppression list, its API, and the checks every send makes.

Every send checks twice, each time under the recipient's shared lock (db/suppressions.py): when it is
stored (a suppressed recipient is a 422 and nothing is written) and around each provider attempt (a
message stored before the recipient opted out ends `failed` with `recipient_opted_out`). Adding a
suppression takes the exclusive lock, so it waits for attempts already on their way to the provider and
every attempt after its commit sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from messaging.db import suppressions as store
from messaging.db.engine import Transaction, transaction
from messaging.domain import Message, NewMessage, Suppression
from messaging.enums import EventSource, EventType, SuppressionSource
from messaging.errors import NotFound, RecipientOptedOut
from messaging.models import Page, SuppressionIn, SuppressionOut
from messaging.observability import logger, metrics
from messaging.pagination import decode_cursor, encode_cursor

if TYPE_CHECKING:  # the send path's type: a function that never sends does not import the providers
    from messaging.providers import Accepted

OPTED_OUT = "recipient_opted_out"

# The email events that suppress their recipient for every sender, and the source each records.
_EMAIL_EVENT_SOURCES = {"bounce": SuppressionSource.BOUNCE, "spamreport": SuppressionSource.COMPLAINT}


def suppression_document(suppression: Suppression) -> SuppressionOut:
    return SuppressionOut.model_validate(suppression, from_attributes=True)


def ensure_sendable(connection: Transaction, message: NewMessage) -> None:
    """Inside the transaction that stores an outbound message: refuse a suppressed recipient. The shared
    lock is held until that transaction ends, so no suppression commits between this check and the store."""
    store.lock_address(connection, message.to_address, exclusive=False)
    blocking = store.blocking_suppression(connection, message.to_address, message.from_address)
    if blocking is not None:
        metrics.add_metric(name="SendsRefusedOptedOut", unit="Count", value=1)
        raise RecipientOptedOut(_refusal(blocking), field="to")


def _refusal(suppression: Suppression) -> str:
    scope = "every sender" if suppression.sender is None else "this sender"
    return f"the recipient is suppressed for {scope} ({suppression.source}); nothing was sent"


def deliver_unless_suppressed(message: Message, send: Callable[[], Accepted]) -> Accepted | None:
    """Run one provider attempt unless the recipient is suppressed now (None: nothing was sent). The shared
    lock is held across the attempt, so an opt-out cannot commit while this message is on its way."""
    with transaction() as connection:
        store.lock_address(connection, message.to_address, exclusive=False)
        blocking = store.blocking_suppression(connection, message.to_address, message.from_address, message.id)
        if blocking is not None:
            logger.info("send stopped: recipient suppressed", extra={"message_id": message.id})
            return None
        return send()


def suppress(
    connection: Transaction,
    address: str,
    sender: str | None,
    source: SuppressionSource,
    event_source: EventSource,
    *,
    reason: str | None = None,
    message_id: int | None = None,
    conversation_id: int | None = None,
) -> Suppression:
    """Add a suppression (or keep the existing one) under the address's exclusive lock; a new one writes a
    recipient.opted_out event in the same transaction."""
    store.lock_address(connection, address, exclusive=True)
    suppression, created = store.add_suppression(connection, address, sender, source, reason)
    if created:
        store.record_suppression_event(
            connection,
            EventType.OPTED_OUT,
            suppression,
            event_source,
            message_id=message_id,
            conversation_id=conversation_id,
        )
        metrics.add_metric(name="RecipientsOptedOut", unit="Count", value=1)
    return suppression


def opted_in(
    connection: Transaction, suppression: Suppression, event_source: EventSource, **context: int | None
) -> None:
    store.record_suppression_event(connection, EventType.OPTED_IN, suppression, event_source, **context)
    metrics.add_metric(name="RecipientsOptedIn", unit="Count", value=1)


# The API.


def list_suppressions(address: str | None, limit: int, cursor: str | None) -> Page[SuppressionOut]:
    # The cursor keeps the (instant, id) shape of every list's cursor; only its id is the position here.
    position = decode_cursor(cursor)
    with transaction() as connection:
        found = store.list_suppressions(connection, address, limit + 1, None if position is None else position[1])
    next_cursor = encode_cursor(found[limit - 1].created_at, found[limit - 1].id) if len(found) > limit else None
    return Page[SuppressionOut](items=[suppression_document(item) for item in found[:limit]], next_cursor=next_cursor)


def add_suppression(payload: SuppressionIn) -> SuppressionOut:
    """An operator's suppression; adding one that exists returns it unchanged."""
    with transaction() as connection:
        suppression = suppress(
            connection,
            payload.address,
            payload.sender,
            SuppressionSource.MANUAL,
            EventSource.MANUAL,
            reason=payload.reason,
        )
    return suppression_document(suppression)


def lift_suppression(suppression_id: int) -> None:
    with transaction() as connection:
        lifted = store.delete_suppression(connection, suppression_id)
        if lifted is None:
            raise NotFound(f"suppression {suppression_id} does not exist", field="id")
        opted_in(connection, lifted, EventSource.MANUAL)


def email_event_suppresses(event: str) -> bool:
    """Whether an email provider's event (a hard bounce, a spam complaint) suppresses its recipient."""
    return event in _EMAIL_EVENT_SOURCES


def suppress_for_email_event(
    event: str, address: str, *, reason: str | None = None, message_id: int | None = None
) -> Suppression | None:
    """An email provider's event about `address`: a hard bounce or a spam complaint suppresses it for every
    sender (None for any other event). In a transaction of its own."""
    with transaction() as connection:
        return suppress_in_for_email_event(connection, event, address, reason=reason, message_id=message_id)


def suppress_in_for_email_event(
    connection: Transaction, event: str, address: str, *, reason: str | None = None, message_id: int | None = None
) -> Suppression | None:
    """As suppress_for_email_event, inside the caller's transaction (the one recording the event)."""
    source = _EMAIL_EVENT_SOURCES.get(event)
    if source is None:
        return None
    return suppress(connection, address, None, source, EventSource.RECEIPT, reason=reason, message_id=message_id)
