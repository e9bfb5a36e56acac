"""scan imports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 02:41:13.184531
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('last_seen_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_items_team_fingerprint', ['team_id', 'fingerprint'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_team_fingerprint')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('fingerprint')

