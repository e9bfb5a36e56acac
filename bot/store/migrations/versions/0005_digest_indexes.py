"""digest indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:45:16.264568
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_team_closed', ['team_id', 'closed_at'], unique=False)
        batch_op.create_index('ix_items_team_created_closed', ['team_id', 'created_at', 'closed_at'], unique=False)
        batch_op.create_index('ix_items_team_status_rating', ['team_id', 'status', 'severity', 'adjusted_severity'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_team_status_rating')
        batch_op.drop_index('ix_items_team_created_closed')
        batch_op.drop_index('ix_items_team_closed')

