"""The outbox relays only events that some endpoint subscribes to.

A history row (message_events) is also an outbox entry: after its transaction commits it is published to
EventQueue and the dispatcher fans it out to the enabled endpoints subscribed to its type, recording it
relayed. When no enabled endpoint subscribes to the type, that fan-out creates nothing, yet it cost every
inbound webhook an SQS call on the request path (and the dispatcher a transaction). This trigger records
such a row relayed as it is inserted, with the same meaning ("its deliveries exist": there are none); the
inserts return its id as "awaiting relay" only otherwise (messaging.db.events.AWAITING_RELAY), so only
events someone listens to are published.

An endpoint still sees exactly the events fanned out while it is enabled and subscribed to their type; an
event is fanned out once, and now only if some enabled endpoint subscribed to its type as it was written, so
an endpoint created, enabled or subscribed later never gets it (none was ever backfilled). Rows written
before this revision keep their state (the sweep relays any still waiting).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION message_events_relay_only_subscribed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.relayed_at IS NULL AND NOT EXISTS (
                SELECT 1 FROM webhook_endpoints WHERE enabled AND NEW.type = ANY(events)
            ) THEN
                NEW.relayed_at := now();
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER message_events_relay_only_subscribed BEFORE INSERT ON message_events "
        "FOR EACH ROW EXECUTE FUNCTION message_events_relay_only_subscribed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER message_events_relay_only_subscribed ON message_events")
    op.execute("DROP FUNCTION message_events_relay_only_subscribed()")
