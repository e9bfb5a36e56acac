"""whether Slack said a person is a workspace admin or owner

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:20:00.000000

Slack's workspace admins and owners are POA&M admins, but the bot could not
list them: someone who left was told to POAM_ADMINS and granted admins only,
in an install that has neither, to nobody. Each record now keeps what
Slack last said (a ``users.info`` answer, a ``user_change`` event); people
recorded before this are taken as not admins until Slack next describes them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slack_admin', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('slack_admin')
