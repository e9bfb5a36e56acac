"""a system's FedRAMP package ID

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 04:10:00.000000

FedRAMP's OSCAL POA&M names its system by the FedRAMP package ID
(``system-id`` of identifier type ``http://fedramp.gov/ns/oscal``); the
export had only a uuid of ours to give. Systems added before this have none until an
admin sets it (``/poam system set <name> fedramp:F1234567890``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('systems', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fedramp_id', sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('systems', schema=None) as batch_op:
        batch_op.drop_column('fedramp_id')
