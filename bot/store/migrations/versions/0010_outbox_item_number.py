"""the item of a channel post in the outbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 13:50:00.000000

An item's thread posts go through the outbox; a post written before the item's
thread began finds the thread through its item when it is sent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('item_number', sa.Integer(), nullable=True))
        batch_op.create_index('ix_outbox_item', ['team_id', 'item_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_item')
        batch_op.drop_column('item_number')
