"""A function that aborts the statement calling it with a given SQLSTATE.

An inbound webhook's store is one statement that is its own transaction (committed by PostgreSQL as it
completes: no separate commit round trip). Such a statement cannot be rolled back by the caller afterwards,
so the one case that needs a rollback must abort it from inside: a twin webhook with the same provider
message id that committed while this statement ran (its conversation summary is already updated, its
message insert found the twin). Plain SQL has no way to raise an error on purpose; this function does,
with a SQLSTATE of its own that the caller recognises (messaging.db.repository.TWIN_COMMITTED_MEANWHILE).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # VOLATILE (the default), so the planner never evaluates it ahead of the CASE that guards it.
    op.execute(
        """
        CREATE FUNCTION messaging_abort(sqlstate text, message text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION messaging_abort(text, text)")
