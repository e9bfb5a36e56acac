"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 01:44:43.251490
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('workspaces',
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('last_item_number', sa.Integer(), nullable=False),
    sa.Column('audit_seq', sa.Integer(), nullable=False),
    sa.Column('audit_head', sa.String(length=64), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('team_id')
    )
    op.create_table('role_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('granted_by', sa.String(length=32), nullable=False),
    sa.Column('granted_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'user_id', 'role', name='uq_role_grants_team_user_role')
    )
    op.create_table('systems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('name_key', sa.String(length=80), nullable=False),
    sa.Column('impact', sa.String(length=10), nullable=False),
    sa.Column('organization', sa.String(length=200), nullable=True),
    sa.Column('ao_user_id', sa.String(length=32), nullable=True),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'name_key', name='uq_systems_team_name')
    )
    op.create_table('items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('system_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('source_identifier', sa.String(length=200), nullable=True),
    sa.Column('assets', sa.JSON(), nullable=False),
    sa.Column('cves', sa.JSON(), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('adjusted_severity', sa.String(length=10), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('owner_id', sa.String(length=32), nullable=True),
    sa.Column('detected_on', sa.Date(), nullable=False),
    sa.Column('scheduled_completion_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('remediation_plan', sa.Text(), nullable=True),
    sa.Column('resources_required', sa.Text(), nullable=True),
    sa.Column('vendor_dependency', sa.Boolean(), nullable=False),
    sa.Column('vendor_product', sa.String(length=200), nullable=True),
    sa.Column('last_vendor_checkin_on', sa.Date(), nullable=True),
    sa.Column('origin_channel_id', sa.String(length=32), nullable=True),
    sa.Column('origin_thread_ts', sa.String(length=32), nullable=True),
    sa.Column('source_message_url', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['system_id'], ['systems.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'number', name='uq_items_team_number')
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_team_owner', ['team_id', 'owner_id'], unique=False)
        batch_op.create_index('ix_items_team_status_due', ['team_id', 'status', 'due_on'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'seq', name='uq_audit_events_team_seq')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_team_item', ['team_id', 'item_id'], unique=False)

    op.create_table('item_controls',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('control', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('item_id', 'control')
    )
    with op.batch_alter_table('item_controls', schema=None) as batch_op:
        batch_op.create_index('ix_item_controls_team_control', ['team_id', 'control'], unique=False)

    op.create_table('milestones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('planned_due_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('completed_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'number', name='uq_milestones_item_number')
    )
    with op.batch_alter_table('milestones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_milestones_item_id'), ['item_id'], unique=False)

    op.create_table('milestone_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('milestone_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('old_due_on', sa.Date(), nullable=True),
    sa.Column('new_due_on', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('changed_by', sa.String(length=32), nullable=False),
    sa.Column('changed_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.ForeignKeyConstraint(['milestone_id'], ['milestones.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'seq', name='uq_milestone_changes_item_seq')
    )
    with op.batch_alter_table('milestone_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_milestone_changes_item_id'), ['item_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('milestone_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_milestone_changes_item_id'))

    op.drop_table('milestone_changes')
    with op.batch_alter_table('milestones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_milestones_item_id'))

    op.drop_table('milestones')
    with op.batch_alter_table('item_controls', schema=None) as batch_op:
        batch_op.drop_index('ix_item_controls_team_control')

    op.drop_table('item_controls')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_team_item')

    op.drop_table('audit_events')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_team_status_due')
        batch_op.drop_index('ix_items_team_owner')

    op.drop_table('items')
    op.drop_table('systems')
    op.drop_table('role_grants')
    op.drop_table('workspaces')
