"""when Slack said a person was deactivated

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 09:00:00.000000

Slack takes a message to a deactivated person without an error and nobody
reads it: their morning DMs went out every workday, and the items they owned
reached nobody. Each record now keeps when Slack said the person was
deactivated (a ``user_change`` event or a ``users.info`` answer with
``deleted``); it is cleared when Slack says they are back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_at', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('left_at')
