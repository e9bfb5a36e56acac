"""review workflow

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:16:52.507378
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('review_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('deviation', sa.String(length=4), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('adjusted_severity', sa.String(length=10), nullable=True),
    sa.Column('until_on', sa.Date(), nullable=True),
    sa.Column('new_due_on', sa.Date(), nullable=True),
    sa.Column('requested_by', sa.String(length=32), nullable=False),
    sa.Column('requested_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decided_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('review_requests', schema=None) as batch_op:
        batch_op.create_index('ix_review_requests_item', ['item_id'], unique=False)
        batch_op.create_index('ix_review_requests_team_status', ['team_id', 'status'], unique=False)

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closure', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('plan_approved_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('plan_approved_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('risk_accepted_until', sa.Date(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('risk_accepted_until')
        batch_op.drop_column('plan_approved_at')
        batch_op.drop_column('plan_approved_by')
        batch_op.drop_column('closure')

    with op.batch_alter_table('review_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_review_requests_team_status')
        batch_op.drop_index('ix_review_requests_item')

    op.drop_table('review_requests')
