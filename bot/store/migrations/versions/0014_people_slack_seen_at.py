"""when Slack described a person as their record says

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:00:00.000000

A ``users.info`` answer asked for before a ``user_change`` event was handled
can arrive after it and tell of the person before the change: it wrote their
old name and time zone back over the new ones. Each record now keeps when
Slack described the person so, and an older description does not replace
it. People recorded before this have none, and take the next description.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slack_seen_at', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('slack_seen_at')
