"""Participant addresses compare by code point (COLLATE "C"), whatever the database's default collation.

The service sorts a pair in Python (by code point) and the CHECK participant_a < participant_b compared by
the database's default collation: on a server whose default is en-US (ICU or glibc), a pair such as
a-b@x.com / a_b@x.com failed the CHECK and the message was lost. Changing the columns' collation makes
PostgreSQL rebuild what depends on them with it: the unique key (ix of ON CONFLICT) and the CHECK.
Existing rows already satisfy code-point order (the service only ever wrote code-point-sorted pairs) and
stay unique (equality is byte equality under every deterministic collation), so nothing is rewritten.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("participant_a", "participant_b")


def upgrade() -> None:
    for column in COLUMNS:
        op.execute(f'ALTER TABLE conversations ALTER COLUMN {column} TYPE text COLLATE "C"')


def downgrade() -> None:
    for column in COLUMNS:
        op.execute(f'ALTER TABLE conversations ALTER COLUMN {column} TYPE text COLLATE "default"')
