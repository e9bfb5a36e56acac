"""reminder planning indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 05:00:00.000000

Planning reads only what is due (plans awaiting approval, items waiting on
a vendor, unfinished milestones by due date) and the outbox rows of the days
it plans, not the whole history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAN_PENDING = "plan_approved_at IS NULL AND remediation_plan IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_team_plan_pending', ['team_id', 'status', 'updated_at'], unique=False,
                              sqlite_where=sa.text(PLAN_PENDING), postgresql_where=sa.text(PLAN_PENDING))
        batch_op.create_index('ix_items_team_vendor', ['team_id', 'status'], unique=False,
                              sqlite_where=sa.text('vendor_dependency = 1'),
                              postgresql_where=sa.text('vendor_dependency'))

    with op.batch_alter_table('milestones', schema=None) as batch_op:
        batch_op.create_index('ix_milestones_team_open_due', ['team_id', 'due_on'], unique=False,
                              sqlite_where=sa.text('completed_at IS NULL'),
                              postgresql_where=sa.text('completed_at IS NULL'))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_team_kind_day', ['team_id', 'kind', 'local_day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_team_kind_day')

    with op.batch_alter_table('milestones', schema=None) as batch_op:
        batch_op.drop_index('ix_milestones_team_open_due')

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_team_vendor')
        batch_op.drop_index('ix_items_team_plan_pending')
