"""Delivery receipts from the providers: each recorded once and applied to its message in one statement.

SMS receipts are deduplicated by (provider message id, status), email events by their `event_id`. A receipt
for a provider id no message carries yet is held, never lost: it is applied when the id is recorded (see
db/receipts.py for the race this closes). A hard bounce or a spam report suppresses its recipient when it is
applied to a known message: at once, or when it is applied after being held (`suppress_for_held_events`).
"""

from __future__ import annotations

from messaging.db import receipts as receipts_db
from messaging.db.engine import Transaction, transaction
from messaging.enums import RECEIPT_OUTCOME_STATUS, Provider
from messaging.models import EmailEvent, ReceiptResult, ReceiptResults, SmsReceipt
from messaging.observability import logger, metrics
from messaging.services.suppressions import email_event_suppresses, suppress_in_for_email_event


def receive_sms_receipt(receipt: SmsReceipt) -> ReceiptResult:
    with transaction() as connection:
        outcome = receipts_db.record_receipt(
            connection,
            provider=Provider.SMS,
            dedup_key=f"{receipt.messaging_provider_id}:{receipt.status}",
            provider_message_id=receipt.messaging_provider_id,
            status=receipt.status,
            detail=receipt.error_code,
            reported_at=receipt.timestamp,
            client_reference=_message_id(receipt.client_reference),
        )
    return _reported(outcome, Provider.SMS)


def receive_email_events(events: list[EmailEvent]) -> ReceiptResults:
    """The batch in one transaction (a provider retries it whole; event ids make the retry harmless). A hard
    bounce or a spam complaint also suppresses the message's recipient for every sender, in that transaction."""
    with transaction() as connection:
        outcomes = []
        for event in events:
            outcome = receipts_db.record_receipt(
                connection,
                provider=Provider.EMAIL,
                dedup_key=event.event_id,
                provider_message_id=event.xillio_id,
                status=RECEIPT_OUTCOME_STATUS[event.event],
                detail=_email_detail(event),
                reported_at=event.timestamp,
                provider_event=event.event,
                client_reference=_message_id(event.client_reference),
            )
            _suppress_recipient_of(connection, event, outcome)
            outcomes.append(outcome)
    return ReceiptResults(results=[_reported(outcome, Provider.EMAIL) for outcome in outcomes])


def _suppress_recipient_of(connection: Transaction, event: EmailEvent, outcome: receipts_db.ReceiptOutcome) -> None:
    """A first-seen bounce or spam report about a message we know: its recipient is suppressed (a duplicate
    changes nothing; a held event names no message yet: it suppresses when it is applied)."""
    if (
        not email_event_suppresses(event.event)
        or outcome.outcome in ("duplicate", "held")
        or outcome.message_id is None
        or outcome.to_address is None
    ):
        return
    suppress_in_for_email_event(
        connection, event.event, outcome.to_address, reason=_email_detail(event), message_id=outcome.message_id
    )


def suppress_for_held_events(
    connection: Transaction, message_id: int, address: str, events: list[receipts_db.AppliedEmailEvent]
) -> None:
    """Held email events just applied to their message, in the transaction applying them: each suppresses its
    recipient exactly as it would have live (same rule, same reason, same recipient.opted_out event)."""
    for event in events:
        suppress_in_for_email_event(
            connection, event.provider_event, address, reason=event.detail, message_id=message_id
        )


def _message_id(client_reference: str | None) -> int | None:
    """The client reference our sends give the provider is our message id (delivery.envelope_of)."""
    return None if client_reference is None else int(client_reference)


def _email_detail(event: EmailEvent) -> str | None:
    if event.event == "delivered":
        return event.reason
    return f"{event.event}: {event.reason}" if event.reason else event.event


_METRICS = {"applied": "ReceiptsApplied", "held": "ReceiptsHeld", "duplicate": "DuplicateReceipts"}


def _reported(outcome: receipts_db.ReceiptOutcome, provider: Provider) -> ReceiptResult:
    metrics.add_metric(name=_METRICS.get(outcome.outcome, "ReceiptsIgnored"), unit="Count", value=1)
    logger.info(
        "delivery receipt",
        extra={"provider": provider, "outcome": outcome.outcome, "message_id": outcome.message_id},
    )
    return ReceiptResult(outcome=outcome.outcome, message_id=outcome.message_id)  # type: ignore[arg-type]
