"""whether Slack said a person is a bot

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 12:10:00.000000

A bot (an app's user, Slackbot) could be made an item's owner, a system's
AO or a verifier: reminders went to it daily, Slack refused them
(``cannot_dm_bot``), and what it was named for waited on nobody. Each record
now keeps what Slack last said; people recorded before this are taken as
people until Slack next describes them, or refuses a DM to them as to a bot.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_bot', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('is_bot')
