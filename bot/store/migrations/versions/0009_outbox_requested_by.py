"""who asked for an outbox message

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 13:45:00.000000

A review DM (a verifier or the AO asked, an owner told) records who made the
change that wrote it, so that they are told when the dispatcher gives it up.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_by', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('requested_by')
