"""The relational schema (SQLAlchemy Core). Alembic migrations create it; this mirrors them for queries."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

from messaging.db.statements import status_list
from messaging.domain import PENDING_STATUSES

metadata = MetaData()

# The text search configuration of message search: 'simple' lower-cases words and neither stems them nor
# drops stop words, so a search finds exactly the words written, in any language (names, codes, numbers).
SEARCH_CONFIGURATION = "simple"
CHANNELS = ("sms", "mms", "email")  # the message types, each a channel a conversation may hold

# The rows of pending sends, as SQL: the statements that look for them repeat the partial index's predicate
# word for word, so the planner can use the index.
PENDING_CONDITION = f"status IN {status_list(PENDING_STATUSES)}"
# How many times reconciliation asks the provider about a `sent` message without finding a verdict before it
# stops (the message stays `sent`; its status_detail says so). A constant: the partial index below names it.
MAX_RECEIPT_LOOKUPS = 8
AWAITING_RECEIPT_CONDITION = f"status = 'sent' AND receipt_lookups < {MAX_RECEIPT_LOOKUPS}"

conversations = Table(
    "conversations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # Code-point order (COLLATE "C"), the order grouping.participant_pair sorts in: the CHECK and the unique
    # key must not follow the database's default collation (en-US orders a-b@x.com after a_b@x.com).
    Column("participant_a", Text(collation="C"), nullable=False),
    Column("participant_b", Text(collation="C"), nullable=False),
    Column("message_count", Integer, nullable=False, server_default=text("0")),
    Column("last_message_at", DateTime(timezone=True), nullable=False),
    Column(
        "last_message_id",
        BigInteger,
        ForeignKey(
            "messages.id", name="fk_conversations_last_message", use_alter=True, deferrable=True, initially="DEFERRED"
        ),
    ),
    Column("last_message_preview", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Kept by the statement that stores a message (see repository._STORE_MESSAGE) and by the read route.
    *(Column(f"has_{channel}", Boolean, nullable=False, server_default=text("false")) for channel in CHANNELS),
    Column("archived", Boolean, nullable=False, server_default=text("false")),
    Column("unread_count", Integer, nullable=False, server_default=text("0")),
    Column("read_through_at", DateTime(timezone=True)),  # the read horizon: a position (timestamp, id)
    Column("read_through_id", BigInteger),
    UniqueConstraint("participant_a", "participant_b", name="uq_conversations_participants"),
    CheckConstraint("participant_a < participant_b", name="ck_conversations_participants_sorted"),
    CheckConstraint("message_count >= 0", name="ck_conversations_message_count"),
    CheckConstraint("unread_count >= 0", name="ck_conversations_unread_count"),
)
Index(
    "ix_conversations_last_activity",
    conversations.c.last_message_at,
    conversations.c.id,
)
# The filtered lists, each in list order after its equality columns (see repository.list_conversations).
Index(
    "ix_conversations_archived_activity", conversations.c.archived, conversations.c.last_message_at, conversations.c.id
)
for _channel in CHANNELS:
    Index(
        f"ix_conversations_{_channel}_activity",
        conversations.c.archived,
        conversations.c.last_message_at,
        conversations.c.id,
        postgresql_where=conversations.c[f"has_{_channel}"],
    )
Index(
    "ix_conversations_participant_a_activity",
    conversations.c.participant_a,
    conversations.c.archived,
    conversations.c.last_message_at,
    conversations.c.id,
)
Index(
    "ix_conversations_participant_b_activity",
    conversations.c.participant_b,
    conversations.c.archived,
    conversations.c.last_message_at,
    conversations.c.id,
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("conversation_id", BigInteger, ForeignKey("conversations.id", ondelete="RESTRICT"), nullable=False),
    Column("direction", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("from_address", Text, nullable=False),
    Column("to_address", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("attachments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("message_timestamp", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("provider_message_id", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status_detail", Text),
    # The body's words (email HTML reduced to its text, messaging.search_text), in SEARCH_CONFIGURATION.
    Column("search_vector", TSVECTOR, nullable=False),
    Column("resent_from", BigInteger, ForeignKey("messages.id", name="fk_messages_resent_from")),
    # SMS/MMS only (migration 0007): how the body travels and how many segments it costs.
    Column("encoding", Text),
    Column("segments", Integer),
    # Lookups of a `sent` message that found no delivery verdict (migration 0012): each doubles the wait.
    Column("receipt_lookups", Integer, nullable=False, server_default=text("0")),
    CheckConstraint("receipt_lookups >= 0", name="ck_messages_receipt_lookups"),
    CheckConstraint("encoding IN ('GSM-7', 'UCS-2')", name="ck_messages_encoding"),
    CheckConstraint("segments >= 1", name="ck_messages_segments"),
    CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_messages_direction"),
    CheckConstraint("type IN ('sms', 'mms', 'email')", name="ck_messages_type"),
    CheckConstraint(
        "status IN ('received', 'queued', 'retrying', 'sent', 'failed', 'delivered', 'undelivered')",
        name="ck_messages_status",
    ),
    CheckConstraint("provider IN ('mock-sms', 'mock-email')", name="ck_messages_provider"),
    CheckConstraint("(direction = 'inbound') = (status = 'received')", name="ck_messages_status_matches_direction"),
    CheckConstraint("attempts >= 0", name="ck_messages_attempts"),
    CheckConstraint("jsonb_typeof(attachments) = 'array'", name="ck_messages_attachments_array"),
    UniqueConstraint("provider", "provider_message_id", name="uq_messages_provider_message_id"),
)
Index(
    "ix_messages_conversation_timeline",
    messages.c.conversation_id,
    messages.c.message_timestamp,
    messages.c.id,
)
# Messages across conversations, chronological: unfiltered, by status, by direction and type.
Index("ix_messages_timeline", messages.c.message_timestamp, messages.c.id)
Index("ix_messages_status_timeline", messages.c.status, messages.c.message_timestamp, messages.c.id)
Index(
    "ix_messages_channel_timeline", messages.c.direction, messages.c.type, messages.c.message_timestamp, messages.c.id
)
Index("ix_messages_search", messages.c.search_vector, postgresql_using="gin")
Index(
    "ix_messages_pending_sends",
    messages.c.next_attempt_at,
    postgresql_where=text(PENDING_CONDITION),
)
Index("ix_messages_awaiting_receipt", messages.c.updated_at, postgresql_where=text(AWAITING_RECEIPT_CONDITION))

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("route", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE")),
    Column("response_status", Integer),
    Column("response_body", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

Index("ix_idempotency_keys_expires_at", idempotency_keys.c.expires_at)

mock_provider_deliveries = Table(
    "mock_provider_deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("provider", Text, nullable=False),
    Column("idempotency_token", Text, nullable=False),
    Column("provider_message_id", Text, nullable=False, unique=True),
    Column("from_address", Text, nullable=False),
    Column("to_address", Text, nullable=False),
    Column("message_type", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("attachments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("replay_count", Integer, nullable=False, server_default=text("0")),
    Column("accepted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_replayed_at", DateTime(timezone=True)),
    Column("receipt_outcome", Text),  # what the mock's receipt announced (MOCK_*_RECEIPTS), for comparisons
    Column("receipt_detail", Text),
    UniqueConstraint("provider", "idempotency_token", name="uq_mock_provider_deliveries_token"),
)

# The history of every message and conversation; also the outbox of customer webhooks (see migration 0003).
message_events = Table(
    "message_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("type", Text, nullable=False),
    Column("message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE")),
    Column("conversation_id", BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")),
    Column("status", Text),
    Column("previous_status", Text),
    Column("attempt", Integer),
    Column("detail", Text),
    Column("source", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("relayed_at", DateTime(timezone=True)),
    # recipient.opted_out / opted_in: the suppression concerned (migration 0007; no foreign key, the history
    # outlives a lifted suppression).
    Column("suppression_id", BigInteger),
    # ... and that suppression as it was when the event was written, the event's `data` (migration 0010): an
    # opt-in deletes its suppression before the event is dispatched.
    Column("suppression", JSONB),
    CheckConstraint(
        "type IN ('message.queued', 'message.retrying', 'message.received', 'message.sent', 'message.delivered', "
        "'message.undelivered', 'message.failed', 'conversation.created', 'recipient.opted_out', "
        "'recipient.opted_in', 'message.unconfirmed')",
        name="ck_message_events_type",
    ),
    CheckConstraint(
        "source IN ('api', 'webhook', 'retry', 'sweep', 'receipt', 'reconciliation', 'keyword', 'manual')",
        name="ck_message_events_source",
    ),
    CheckConstraint("attempt IS NULL OR attempt >= 0", name="ck_message_events_attempt"),
)
Index("ix_message_events_message", message_events.c.message_id, message_events.c.id)
Index("ix_message_events_unrelayed", message_events.c.id, postgresql_where=text("relayed_at IS NULL"))

# Delivery receipts providers sent us (migration 0004): deduplicated, and held (message_id NULL) until a
# message carries their provider message id.
provider_receipts = Table(
    "provider_receipts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("provider", Text, nullable=False),
    Column("dedup_key", Text, nullable=False),
    Column("provider_message_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("detail", Text),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE")),
    Column("applied_at", DateTime(timezone=True)),
    # The email provider's name of the event (bounce, spamreport, ...; migration 0010): whether applying a held
    # receipt suppresses its recipient. NULL for SMS receipts.
    Column("provider_event", Text),
    UniqueConstraint("provider", "dedup_key", name="uq_provider_receipts_dedup"),
    CheckConstraint("status IN ('delivered', 'undelivered')", name="ck_provider_receipts_status"),
)
Index(
    "ix_provider_receipts_held",
    provider_receipts.c.provider,
    provider_receipts.c.provider_message_id,
    postgresql_where=text("applied_at IS NULL"),
)


# Customer webhooks (migration 0007): endpoints, one delivery per (event, endpoint), and every attempt.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("events", ARRAY(Text), nullable=False),
    Column("secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("disabled_reason", Text),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("cardinality(events) > 0", name="ck_webhook_endpoints_events"),
    CheckConstraint("consecutive_failures >= 0", name="ck_webhook_endpoints_failures"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", BigInteger, ForeignKey("message_events.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", BigInteger, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("retry_until", DateTime(timezone=True), nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True)),
    UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="ck_webhook_deliveries_status"),
)
Index(
    "ix_webhook_deliveries_pending",
    webhook_deliveries.c.next_attempt_at,
    postgresql_where=text("status = 'pending'"),
)
Index(
    "ix_webhook_deliveries_endpoint",
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.created_at,
    webhook_deliveries.c.id,
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", BigInteger, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("response_excerpt", Text),
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("attempted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("outcome IN ('succeeded', 'retrying', 'failed')", name="ck_webhook_attempts_outcome"),
)
Index("ix_webhook_attempts_delivery", webhook_attempts.c.delivery_id, webhook_attempts.c.id)


# Who must not be sent to (migration 0007): `sender` NULL blocks the address for every sender;
# `confirmation_message_id` is the STOP confirmation, the one message that may still reach the address.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("address", Text(collation="C"), nullable=False),
    Column("sender", Text(collation="C")),
    Column("source", Text, nullable=False),
    Column("reason", Text),
    Column("confirmation_message_id", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("source IN ('keyword', 'bounce', 'complaint', 'manual')", name="ck_suppressions_source"),
    CheckConstraint("sender IS NULL OR sender <> address", name="ck_suppressions_sender"),
)
Index(
    "uq_suppressions_address_sender",
    suppressions.c.address,
    suppressions.c.sender,
    unique=True,
    postgresql_nulls_not_distinct=True,
)
Index("ix_suppressions_address_id", suppressions.c.address, suppressions.c.id)

# When each sender may next hand a message to the provider (SENDER_RATE_PER_SECOND; migration 0008): the
# next free planned slot, and the latest actual hand-off (migration 0013).
sender_slots = Table(
    "sender_slots",
    metadata,
    Column("sender", Text(collation="C"), primary_key=True),
    Column("next_free_at", DateTime(timezone=True), nullable=False),
    Column("handed_off_at", DateTime(timezone=True)),
)
