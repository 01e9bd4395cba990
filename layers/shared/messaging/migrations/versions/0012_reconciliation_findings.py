"""Reconciliation records what it found: a lookup without a verdict is a history row and a backoff.

A `sent` message without a receipt is looked up by the sweep. When the provider has no verdict yet (or no
record of the send), that finding is written to the message's history (`message.unconfirmed`, source
`reconciliation`, history only) and counted in `messages.receipt_lookups`: the next lookup waits twice as
long, and after MAX_RECEIPT_LOOKUPS findings the message is no longer looked up (it stays `sent`, its
`status_detail` says why). The partial index of messages awaiting a receipt leaves those out.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

MAX_RECEIPT_LOOKUPS = 8  # as messaging.db.schema.MAX_RECEIPT_LOOKUPS when this revision was written
EVENT_TYPES = (
    "message.queued",
    "message.retrying",
    "message.received",
    "message.sent",
    "message.delivered",
    "message.undelivered",
    "message.failed",
    "conversation.created",
    "recipient.opted_out",
    "recipient.opted_in",
)


def _types(*extra: str) -> str:
    return f"type IN ({', '.join(repr(value) for value in (*EVENT_TYPES, *extra))})"


def upgrade() -> None:
    op.add_column("messages", sa.Column("receipt_lookups", sa.Integer, nullable=False, server_default="0"))
    op.create_check_constraint("ck_messages_receipt_lookups", "messages", "receipt_lookups >= 0")
    op.drop_index("ix_messages_awaiting_receipt", table_name="messages")
    op.create_index(
        "ix_messages_awaiting_receipt",
        "messages",
        ["updated_at"],
        postgresql_where=sa.text(f"status = 'sent' AND receipt_lookups < {MAX_RECEIPT_LOOKUPS}"),
    )
    op.drop_constraint("ck_message_events_type", "message_events", type_="check")
    op.create_check_constraint("ck_message_events_type", "message_events", _types("message.unconfirmed"))


def downgrade() -> None:
    op.execute("DELETE FROM message_events WHERE type = 'message.unconfirmed'")
    op.drop_constraint("ck_message_events_type", "message_events", type_="check")
    op.create_check_constraint("ck_message_events_type", "message_events", _types())
    op.drop_index("ix_messages_awaiting_receipt", table_name="messages")
    op.create_index(
        "ix_messages_awaiting_receipt", "messages", ["updated_at"], postgresql_where=sa.text("status = 'sent'")
    )
    op.drop_constraint("ck_messages_receipt_lookups", "messages", type_="check")
    op.drop_column("messages", "receipt_lookups")
