"""people's names, for exports an assessor reads

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 19:20:00.000000

The FedRAMP workbook's Point of Contact and the approvers in its Comments were
bare Slack user ids; the name Slack gives a user is kept beside the time zone
whenever the bot reads it, and the exports write "Name (U…)".
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('name')
