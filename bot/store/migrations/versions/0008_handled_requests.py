"""handled requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 07:10:00.000000

The signatures of Slack requests that tried to change something, for a few minutes:
the same request sent again (a replay within Slack's five-minute window)
is refused instead of changing anything a second time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('handled_requests',
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('signature', sa.String(length=80), nullable=False),
    sa.Column('handled_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('team_id', 'signature')
    )
    with op.batch_alter_table('handled_requests', schema=None) as batch_op:
        batch_op.create_index('ix_handled_requests_handled_at', ['handled_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('handled_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_handled_requests_handled_at')
    op.drop_table('handled_requests')
