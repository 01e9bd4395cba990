"""The delivery lifecycle: `delivered`/`undelivered` statuses with the provider's detail, the provider
receipts we were sent (deduplicated, and held until their provider message id is recorded), and what each
mock receipt announced in the mock provider's ledger.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('received', 'queued', 'retrying', 'sent', 'failed')"
NEW_STATUSES = "status IN ('received', 'queued', 'retrying', 'sent', 'failed', 'delivered', 'undelivered')"


def upgrade() -> None:
    op.add_column("messages", sa.Column("status_detail", sa.Text))
    op.drop_constraint("ck_messages_status", "messages", type_="check")
    op.create_check_constraint("ck_messages_status", "messages", NEW_STATUSES)
    # Reconciliation looks for messages left `sent` (no receipt) for longer than RECEIPT_TIMEOUT_SECONDS.
    op.create_index(
        "ix_messages_awaiting_receipt", "messages", ["updated_at"], postgresql_where=sa.text("status = 'sent'")
    )

    op.create_table(
        "provider_receipts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        # What makes a receipt a duplicate: "<provider message id>:<status>" for SMS, the event id for email.
        sa.Column("dedup_key", sa.Text, nullable=False),
        sa.Column("provider_message_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        # NULL while no message carries the provider message id yet (the receipt is held).
        sa.Column("message_id", sa.BigInteger, sa.ForeignKey("messages.id", ondelete="CASCADE")),
        sa.Column("applied_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("provider", "dedup_key", name="uq_provider_receipts_dedup"),
        sa.CheckConstraint("status IN ('delivered', 'undelivered')", name="ck_provider_receipts_status"),
    )
    op.create_index(
        "ix_provider_receipts_held",
        "provider_receipts",
        ["provider", "provider_message_id"],
        postgresql_where=sa.text("applied_at IS NULL"),
    )

    op.add_column("mock_provider_deliveries", sa.Column("receipt_outcome", sa.Text))
    op.add_column("mock_provider_deliveries", sa.Column("receipt_detail", sa.Text))


def downgrade() -> None:
    op.drop_column("mock_provider_deliveries", "receipt_detail")
    op.drop_column("mock_provider_deliveries", "receipt_outcome")
    op.drop_table("provider_receipts")
    op.drop_index("ix_messages_awaiting_receipt", table_name="messages")
    op.execute("UPDATE messages SET status = 'sent' WHERE status IN ('delivered', 'undelivered')")
    op.drop_constraint("ck_messages_status", "messages", type_="check")
    op.create_check_constraint("ck_messages_status", "messages", OLD_STATUSES)
    op.drop_column("messages", "status_detail")
