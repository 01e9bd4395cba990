"""The history of every message and conversation, which is also the outbox of customer webhooks.

One row per status transition (written in the same transaction as the transition) or per other event a
customer can subscribe to. `relayed_at` is set once the event has been handed to the event queue; the sweep
relays any row still without it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

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
SOURCES = ("api", "webhook", "retry", "sweep", "receipt", "reconciliation", "keyword", "manual")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "message_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("message_id", sa.BigInteger, sa.ForeignKey("messages.id", ondelete="CASCADE")),
        sa.Column("conversation_id", sa.BigInteger, sa.ForeignKey("conversations.id", ondelete="CASCADE")),
        sa.Column("status", sa.Text),
        sa.Column("previous_status", sa.Text),
        sa.Column("attempt", sa.Integer),
        sa.Column("detail", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("relayed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(_in("type", EVENT_TYPES), name="ck_message_events_type"),
        sa.CheckConstraint(_in("source", SOURCES), name="ck_message_events_source"),
        sa.CheckConstraint("attempt IS NULL OR attempt >= 0", name="ck_message_events_attempt"),
    )
    # A message's history, oldest first (keyset on id).
    op.create_index("ix_message_events_message", "message_events", ["message_id", "id"])
    # The outbox: events not yet handed to the event queue, oldest first.
    op.create_index(
        "ix_message_events_unrelayed", "message_events", ["id"], postgresql_where=sa.text("relayed_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table("message_events")
