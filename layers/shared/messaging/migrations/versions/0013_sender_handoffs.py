"""Per-sender throttling holds where messages reach the provider, not only where they are planned.

`sender_slots.handed_off_at`: the instant the sender's latest message was (or is about to be) handed to
the provider. A retry consumer that claims a send goes no sooner than `handed_off_at + 1/rate`, so a
record that arrived late (consumers behind) cannot follow the previous hand-off too closely; the planned
slot (`next_free_at`) alone could not say that.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sender_slots", sa.Column("handed_off_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("sender_slots", "handed_off_at")
