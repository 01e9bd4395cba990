"""The service's domain objects: what the data layer returns and the services work with.

Frozen dataclasses, free of SQL and of HTTP: `messaging.db` builds them from rows, `messaging.documents`
turns them into the API's documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from messaging.enums import MessageStatus

# A send the provider has not settled yet: the one definition of "pending" (the SQL that selects pending
# sends, and the partial index that serves it, are written from it).
PENDING_STATUSES: tuple[MessageStatus, ...] = (MessageStatus.QUEUED, MessageStatus.RETRYING)


@dataclass(frozen=True)
class NewMessage:
    """A message about to be stored (inbound as received, outbound as queued)."""

    direction: str
    type: str
    from_address: str
    to_address: str
    body: str
    attachments: list[str]
    timestamp: datetime
    status: str
    provider: str
    provider_message_id: str | None = None
    next_attempt_at: datetime | None = None
    encoding: str | None = None  # SMS/MMS: "GSM-7" | "UCS-2"
    segments: int | None = None
    resent_from: int | None = None  # the failed message this one resends

    def as_stored(self, message_id: int, conversation_id: int, at: datetime) -> Message:
        """The message as the row just stored at `at` holds it (no attempt made yet)."""
        return Message(
            id=message_id,
            conversation_id=conversation_id,
            direction=self.direction,
            type=self.type,
            from_address=self.from_address,
            to_address=self.to_address,
            body=self.body,
            attachments=tuple(self.attachments),
            timestamp=self.timestamp,
            status=self.status,
            provider=self.provider,
            provider_message_id=self.provider_message_id,
            attempts=0,
            next_attempt_at=self.next_attempt_at,
            last_error=None,
            created_at=at,
            updated_at=at,
            encoding=self.encoding,
            segments=self.segments,
            resent_from=self.resent_from,
        )


@dataclass(frozen=True)
class StoredMessage:
    """Where a new message landed; `created` is False when its provider message id was already stored."""

    id: int
    conversation_id: int
    created: bool


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    direction: str
    type: str
    from_address: str
    to_address: str
    body: str
    attachments: tuple[str, ...]
    timestamp: datetime
    status: str
    provider: str
    provider_message_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    encoding: str | None = None
    segments: int | None = None
    status_detail: str | None = None  # the provider's reason or code (a receipt's error, a failure)
    resent_from: int | None = None

    @property
    def pending(self) -> bool:
        """True while the provider has not settled the send (it may still be attempted)."""
        return self.status in PENDING_STATUSES


@dataclass(frozen=True)
class MessageEvent:
    """One row of the history: a status transition of a message, or another event customers subscribe to."""

    id: int
    type: str
    message_id: int | None
    conversation_id: int | None
    status: str | None
    previous_status: str | None
    attempt: int | None
    detail: str | None
    source: str
    occurred_at: datetime


@dataclass(frozen=True)
class Conversation:
    id: int
    participants: tuple[str, str]  # sorted by code point
    message_count: int
    last_message_at: datetime
    last_message_id: int | None
    last_message_preview: str | None
    created_at: datetime
    archived: bool = False
    unread_count: int = 0  # inbound messages after the read horizon


@dataclass(frozen=True)
class IdempotencyRecord:
    """A send's Idempotency-Key: the request it was first used with and, once known, its message and answer."""

    route: str
    key: str
    request_hash: str
    message_id: int | None
    response_status: int | None
    response_body: dict[str, Any] | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Suppression:
    """An address that must not be sent to: by `sender` only, or by every sender when `sender` is None."""

    id: int
    address: str
    sender: str | None
    source: str  # SuppressionSource
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class ConversationFilters:
    """What a conversation list is narrowed to; None: any."""

    participant: str | None = None  # a normalized address
    channel: str | None = None  # a message type the conversation holds at least one message of
    archived: bool | None = None


@dataclass(frozen=True)
class MessageFilters:
    """What a list of messages across conversations is narrowed to; None: any. `since` is inclusive,
    `until` exclusive; `q` is a full-text query (websearch syntax)."""

    conversation_id: int | None = None
    status: str | None = None
    direction: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


@dataclass(frozen=True)
class OutboxEvent:
    """A row of message_events as the webhook dispatcher sees it."""

    id: int
    type: str
    message_id: int | None
    conversation_id: int | None
    status: str | None
    occurred_at: datetime
    # recipient.opted_out / opted_in: the suppression as it was when the event was written.
    suppression: Suppression | None = None


@dataclass(frozen=True)
class WebhookEndpoint:
    id: int
    url: str
    description: str | None
    events: tuple[str, ...]
    secret: str
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class WebhookDelivery:
    """One event to one endpoint, with what an attempt needs (the endpoint's URL and secret) and the body
    every attempt sends (built once, so a retry carries the very same document)."""

    id: int
    event_id: int
    event_type: str
    endpoint_id: int
    url: str
    secret: str
    endpoint_enabled: bool
    status: str
    payload: str
    attempts: int
    next_attempt_at: datetime | None
    retry_until: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    attempt_log: tuple[WebhookAttempt, ...] = ()


@dataclass(frozen=True)
class WebhookAttempt:
    id: int
    delivery_id: int
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None
    response_excerpt: str | None
    duration_ms: int
    next_attempt_at: datetime | None
    attempted_at: datetime
