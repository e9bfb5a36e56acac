"""the closed item a new item's weakness was found in before

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 18:40:00.000000

DOMAIN.md: a closed item never reopens; a weakness found again is a new item
linked to the old one. An import that finds a closed item's weakness again
records the closed item's number on the new one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recurs_number', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('recurs_number')
