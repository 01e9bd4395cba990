"""Finding things: conversation channels, archiving and unread counts; message search, filters and resends.

conversations gain what the list filters and the inbox need, kept by the statement that stores a message:
`has_sms`/`has_mms`/`has_email` (it holds at least one message of that type), `archived`, and the read
horizon (`read_through_at`, `read_through_id`: a position in the messages list's order) with
`unread_count`, the inbound messages after it. Existing conversations start read up to their last message.

messages gain `search_vector` (the full-text index of the body's text, email HTML reduced to its text by
messaging.search_text), `resent_from`, and one index per way of listing them chronologically.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHANNELS = ("sms", "mms", "email")
SEARCH_CONFIGURATION = "simple"  # messaging.db.schema.SEARCH_CONFIGURATION at the time of writing
BACKFILL_BATCH = 1000


def upgrade() -> None:
    for channel in CHANNELS:
        op.add_column(
            "conversations", sa.Column(f"has_{channel}", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.add_column("conversations", sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("conversations", sa.Column("unread_count", sa.Integer, nullable=False, server_default="0"))
    op.add_column("conversations", sa.Column("read_through_at", sa.DateTime(timezone=True)))
    op.add_column("conversations", sa.Column("read_through_id", sa.BigInteger))
    op.create_check_constraint("ck_conversations_unread_count", "conversations", "unread_count >= 0")
    for channel in CHANNELS:
        op.execute(
            f"UPDATE conversations c SET has_{channel} = true "
            f"WHERE EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.type = '{channel}')"
        )
    op.execute("UPDATE conversations SET read_through_at = last_message_at, read_through_id = last_message_id")

    op.add_column("messages", sa.Column("search_vector", TSVECTOR))
    op.add_column(
        "messages",
        sa.Column("resent_from", sa.BigInteger, sa.ForeignKey("messages.id", name="fk_messages_resent_from")),
    )
    _backfill_search_vectors()
    op.alter_column("messages", "search_vector", nullable=False)
    # The backfills above queued the deferred foreign-key checks of the rows they updated (conversations'
    # last message); PostgreSQL refuses to index a table with pending trigger events, so run them now.
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")

    op.create_index("ix_messages_timeline", "messages", ["message_timestamp", "id"])
    op.create_index("ix_messages_status_timeline", "messages", ["status", "message_timestamp", "id"])
    op.create_index("ix_messages_channel_timeline", "messages", ["direction", "type", "message_timestamp", "id"])
    op.create_index("ix_messages_search", "messages", ["search_vector"], postgresql_using="gin")
    op.create_index("ix_conversations_archived_activity", "conversations", ["archived", "last_message_at", "id"])
    for channel in CHANNELS:
        op.create_index(
            f"ix_conversations_{channel}_activity",
            "conversations",
            ["archived", "last_message_at", "id"],
            postgresql_where=sa.text(f"has_{channel}"),
        )
    op.create_index(
        "ix_conversations_participant_a_activity",
        "conversations",
        ["participant_a", "archived", "last_message_at", "id"],
    )
    op.create_index(
        "ix_conversations_participant_b_activity",
        "conversations",
        ["participant_b", "archived", "last_message_at", "id"],
    )


def _backfill_search_vectors() -> None:
    """Stored messages get their vector from the same function new ones do (HTML reduced in Python)."""
    from messaging.search_text import searchable_text

    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.text("SELECT id, type, body FROM messages WHERE id > :last ORDER BY id LIMIT :batch"),
            {"last": last_id, "batch": BACKFILL_BATCH},
        ).all()
        if not rows:
            return
        connection.execute(
            sa.text(f"UPDATE messages SET search_vector = to_tsvector('{SEARCH_CONFIGURATION}', :text) WHERE id = :id"),
            [{"id": row.id, "text": searchable_text(row.type, row.body)} for row in rows],
        )
        last_id = rows[-1].id


def downgrade() -> None:
    for name in (
        "ix_conversations_participant_b_activity",
        "ix_conversations_participant_a_activity",
        *(f"ix_conversations_{channel}_activity" for channel in CHANNELS),
        "ix_conversations_archived_activity",
    ):
        op.drop_index(name, table_name="conversations")
    for name in (
        "ix_messages_search",
        "ix_messages_channel_timeline",
        "ix_messages_status_timeline",
        "ix_messages_timeline",
    ):
        op.drop_index(name, table_name="messages")
    op.drop_column("messages", "resent_from")
    op.drop_column("messages", "search_vector")
    op.drop_constraint("ck_conversations_unread_count", "conversations")
    for column in ("read_through_id", "read_through_at", "unread_count", "archived", *(f"has_{c}" for c in CHANNELS)):
        op.drop_column("conversations", column)
