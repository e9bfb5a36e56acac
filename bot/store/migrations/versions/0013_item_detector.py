"""the scanner that found an imported item

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 01:20:00.000000

GSA's template wants the scanner's name in Weakness Detector Source
("Nessus", "Qualys"); items kept only the kind of source ("Vulnerability
Scan"), so the workbook said less than the scan, and a workbook restored
from it no longer matched a rescan's fingerprint. Items imported before this
have no name (the scan's tool is only inside their fingerprint's hash).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detector', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('detector')
