"""What a suppression event and a held email event need once their moment has passed.

- `message_events.suppression`: the suppression a recipient.opted_out / opted_in event is about, as it was
  when the event was written (id, address, sender, source, reason, created_at). The dispatcher renders the
  event's `data` from it: an opt-in lifts (deletes) its suppression, so the row is gone by then. Existing
  events are filled in from the suppressions that still exist; an opt-in still waiting for the dispatcher
  whose suppression is gone cannot be rendered and is recorded relayed (the dispatcher used to drop it).
- `provider_receipts.provider_event`: the email provider's own name of the event (`bounce`, `spamreport`,
  ...; NULL for SMS receipts). A held bounce or spam report suppresses its recipient when it is applied,
  as a live one does; `status` alone (delivered/undelivered) cannot say which event it was. Held email
  receipts are filled in from their detail ("bounce: reason").

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("message_events", sa.Column("suppression", JSONB))
    op.execute(
        """
        UPDATE message_events AS e
        SET suppression = jsonb_build_object(
            'id', s.id, 'address', s.address, 'sender', s.sender, 'source', s.source, 'reason', s.reason,
            'created_at', s.created_at)
        FROM suppressions AS s
        WHERE e.suppression_id = s.id AND e.type IN ('recipient.opted_out', 'recipient.opted_in')
        """
    )
    op.execute(
        "UPDATE message_events SET relayed_at = now() WHERE relayed_at IS NULL AND suppression IS NULL"
        " AND type IN ('recipient.opted_out', 'recipient.opted_in')"
    )
    op.add_column("provider_receipts", sa.Column("provider_event", sa.Text))
    op.execute(
        "UPDATE provider_receipts SET provider_event = split_part(detail, ':', 1)"
        " WHERE provider = 'mock-email' AND applied_at IS NULL"
        " AND split_part(detail, ':', 1) IN ('bounce', 'dropped', 'spamreport')"
    )


def downgrade() -> None:
    op.drop_column("provider_receipts", "provider_event")
    op.drop_column("message_events", "suppression")
