"""owner status index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 04:00:20.621268
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_items_team_owner'))
        batch_op.create_index('ix_items_team_owner_status', ['team_id', 'owner_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_team_owner_status')
        batch_op.create_index(batch_op.f('ix_items_team_owner'), ['team_id', 'owner_id'], unique=False)

