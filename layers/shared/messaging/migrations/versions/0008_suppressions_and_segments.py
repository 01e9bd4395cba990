"""Compliance: suppressions (opt-outs, bounces, complaints, manual blocks), per-sender send slots, and the
encoding and segment count of every SMS/MMS.

- `suppressions`: one row per suppressed (address, sender); `sender` NULL blocks the address for every
  sender. `confirmation_message_id` is the STOP confirmation the keyword itself asked for: the one message
  that may still go to the address (CTIA: the opt-out is confirmed once).
- `sender_slots`: when each sender may next hand a message to the provider (SENDER_RATE_PER_SECOND).
- `messages.encoding` / `messages.segments`: NULL for email.
- `message_events.suppression_id`: which suppression a recipient.opted_out/opted_in event is about (no
  foreign key: the history outlives a lifted suppression).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SOURCES = ("keyword", "bounce", "complaint", "manual")


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("address", sa.Text(collation="C"), nullable=False),
        sa.Column("sender", sa.Text(collation="C")),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("confirmation_message_id", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            f"source IN ({', '.join(repr(source) for source in SOURCES)})", name="ck_suppressions_source"
        ),
        sa.CheckConstraint("sender IS NULL OR sender <> address", name="ck_suppressions_sender"),
    )
    # One entry per (address, sender), the recipient-wide one (sender NULL) included.
    op.create_index(
        "uq_suppressions_address_sender",
        "suppressions",
        ["address", "sender"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_index("ix_suppressions_address_id", "suppressions", ["address", "id"])
    op.create_table(
        "sender_slots",
        sa.Column("sender", sa.Text(collation="C"), primary_key=True),
        sa.Column("next_free_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("messages", sa.Column("encoding", sa.Text))
    op.add_column("messages", sa.Column("segments", sa.Integer))
    op.create_check_constraint("ck_messages_encoding", "messages", "encoding IN ('GSM-7', 'UCS-2')")
    op.create_check_constraint("ck_messages_segments", "messages", "segments >= 1")
    op.add_column("message_events", sa.Column("suppression_id", sa.BigInteger))


def downgrade() -> None:
    op.drop_column("message_events", "suppression_id")
    op.drop_constraint("ck_messages_segments", "messages")
    op.drop_constraint("ck_messages_encoding", "messages")
    op.drop_column("messages", "segments")
    op.drop_column("messages", "encoding")
    op.drop_table("sender_slots")
    op.drop_table("suppressions")
