"""Conversations, messages and the mock providers' delivery ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("participant_a", sa.Text, nullable=False),
        sa.Column("participant_b", sa.Text, nullable=False),
        sa.Column("message_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_id", sa.BigInteger),
        sa.Column("last_message_preview", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.UniqueConstraint("participant_a", "participant_b", name="uq_conversations_participants"),
        sa.CheckConstraint("participant_a < participant_b", name="ck_conversations_participants_sorted"),
        sa.CheckConstraint("message_count >= 0", name="ck_conversations_message_count"),
    )
    op.create_index("ix_conversations_last_activity", "conversations", ["last_message_at", "id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.BigInteger,
            sa.ForeignKey("conversations.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("from_address", sa.Text, nullable=False),
        sa.Column("to_address", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attachments", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("message_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("provider_message_id", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_messages_direction"),
        sa.CheckConstraint("type IN ('sms', 'mms', 'email')", name="ck_messages_type"),
        sa.CheckConstraint("status IN ('received', 'queued', 'retrying', 'sent', 'failed')", name="ck_messages_status"),
        sa.CheckConstraint("provider IN ('mock-sms', 'mock-email')", name="ck_messages_provider"),
        sa.CheckConstraint(
            "(direction = 'inbound') = (status = 'received')", name="ck_messages_status_matches_direction"
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_messages_attempts"),
        sa.CheckConstraint("jsonb_typeof(attachments) = 'array'", name="ck_messages_attachments_array"),
        sa.UniqueConstraint("provider", "provider_message_id", name="uq_messages_provider_message_id"),
    )
    op.create_index("ix_messages_conversation_timeline", "messages", ["conversation_id", "message_timestamp", "id"])
    op.create_index(
        "ix_messages_pending_sends",
        "messages",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('queued', 'retrying')"),
    )
    op.create_foreign_key(
        "fk_conversations_last_message",
        "conversations",
        "messages",
        ["last_message_id"],
        ["id"],
        deferrable=True,
        initially="DEFERRED",
    )
    op.create_table(
        "mock_provider_deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("idempotency_token", sa.Text, nullable=False),
        sa.Column("provider_message_id", sa.Text, nullable=False, unique=True),
        sa.Column("from_address", sa.Text, nullable=False),
        sa.Column("to_address", sa.Text, nullable=False),
        sa.Column("message_type", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attachments", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("replay_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("last_replayed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("provider", "idempotency_token", name="uq_mock_provider_deliveries_token"),
    )


def downgrade() -> None:
    op.drop_table("mock_provider_deliveries")
    op.drop_constraint("fk_conversations_last_message", "conversations")
    op.drop_table("messages")
    op.drop_table("conversations")
