"""The service's vocabulary: directions, message types, statuses and providers."""

from enum import StrEnum


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageType(StrEnum):
    SMS = "sms"
    MMS = "mms"
    EMAIL = "email"


class MessageStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


# The status each provider receipt outcome settles a message in (SMS receipts say delivered/undelivered;
# email events also bounce, dropped and spamreport, which comes from a recipient who got the mail).
RECEIPT_OUTCOME_STATUS = {
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "bounce": MessageStatus.UNDELIVERED,
    "dropped": MessageStatus.UNDELIVERED,
    "spamreport": MessageStatus.DELIVERED,
}


class Provider(StrEnum):
    SMS = "mock-sms"
    EMAIL = "mock-email"


class EventType(StrEnum):
    """What a row of the history announces. HISTORY_ONLY_EVENTS are history only; the rest customers can
    subscribe to (DESIGN.md §4)."""

    QUEUED = "message.queued"
    RETRYING = "message.retrying"
    RECEIVED = "message.received"
    SENT = "message.sent"
    DELIVERED = "message.delivered"
    UNDELIVERED = "message.undelivered"
    FAILED = "message.failed"
    # Reconciliation asked the provider about a `sent` message and found no verdict (status unchanged).
    UNCONFIRMED = "message.unconfirmed"
    CONVERSATION_CREATED = "conversation.created"
    OPTED_OUT = "recipient.opted_out"
    OPTED_IN = "recipient.opted_in"


HISTORY_ONLY_EVENTS = frozenset({EventType.QUEUED, EventType.RETRYING, EventType.UNCONFIRMED})
SUBSCRIBABLE_EVENTS = tuple(event for event in EventType if event not in HISTORY_ONLY_EVENTS)


class EventSource(StrEnum):
    """What caused an event: a client's request, a provider's webhook or receipt, the retry consumer, the
    sweep, a reconciliation by lookup, an opt-out keyword, or an operator."""

    API = "api"
    WEBHOOK = "webhook"
    RETRY = "retry"
    SWEEP = "sweep"
    RECEIPT = "receipt"
    RECONCILIATION = "reconciliation"
    KEYWORD = "keyword"
    MANUAL = "manual"


class SuppressionSource(StrEnum):
    """Why an address is suppressed: an opt-out keyword, a hard bounce, a spam complaint, or an operator."""

    KEYWORD = "keyword"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"
