"""the files imported into each system, by their SHA-256

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:00:00.000000

A scan that gives no date (a CSV without one) uploaded again after one of
its weaknesses' items closed brought it back as a new item: nothing told
the same scan from a new one. Files imported before this are not known.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'imported_files',
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('system_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('imported_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['system_id'], ['systems.id'], ),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
        sa.PrimaryKeyConstraint('team_id', 'system_id', 'digest'),
    )


def downgrade() -> None:
    op.drop_table('imported_files')
