"""charities and resources

Revision ID: 5a0c1e2f7b03
Revises: 5a0c1e2f7b02
Create Date: 2026-11-23 21:10:37.233075
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5a0c1e2f7b03'
down_revision: str | None = '5a0c1e2f7b02'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('charity',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('uscc', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('charity_registration', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('registration_authority', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charity')),
    sa.UniqueConstraint('uscc', name=op.f('uq_charity_uscc'))
    )
    with op.batch_alter_table('charity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charity_region_code'), ['region_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_charity_status'), ['status'], unique=False)

    op.create_table('resource',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('charity_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('service_codes', sa.JSON(), nullable=False),
    sa.Column('regions', sa.JSON(), nullable=False),
    sa.Column('target_categories', sa.JSON(), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['charity_id'], ['charity.id'], name=op.f('fk_resource_charity_id_charity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource'))
    )
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.create_index('ix_resource_charity_id_id', ['charity_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_resource_kind'), ['kind'], unique=False)
        batch_op.create_index('ix_resource_search_by_id', ['id', 'status', 'kind', 'valid_until', 'valid_from', 'remaining', 'created_at', 'charity_id'], unique=False)
        batch_op.create_index('ix_resource_status_created_at', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_resource_status_remaining', ['status', 'remaining'], unique=False)
        batch_op.create_index('ix_resource_status_title', ['status', 'title'], unique=False)
        batch_op.create_index('ix_resource_status_valid_until_valid_from', ['status', 'valid_until', 'valid_from'], unique=False)

    op.create_table('resource_movement',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('resource_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('allocation_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('delta', sa.BigInteger(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], name=op.f('fk_resource_movement_resource_id_resource')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_movement')),
    sa.UniqueConstraint('allocation_id', 'reason', name=op.f('uq_resource_movement_allocation_id_reason'))
    )
    with op.batch_alter_table('resource_movement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resource_movement_resource_id'), ['resource_id'], unique=False)

    op.create_table('resource_category',
    sa.Column('resource_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], name=op.f('fk_resource_category_resource_id_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'code', name=op.f('pk_resource_category'))
    )
    with op.batch_alter_table('resource_category', schema=None) as batch_op:
        batch_op.create_index('ix_resource_category_code_resource_id', ['code', 'resource_id'], unique=False)

    op.create_table('resource_region',
    sa.Column('resource_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], name=op.f('fk_resource_region_resource_id_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'code', name=op.f('pk_resource_region'))
    )
    with op.batch_alter_table('resource_region', schema=None) as batch_op:
        batch_op.create_index('ix_resource_region_code_resource_id', ['code', 'resource_id'], unique=False)

    op.create_table('resource_service',
    sa.Column('resource_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], name=op.f('fk_resource_service_resource_id_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'code', name=op.f('pk_resource_service'))
    )
    with op.batch_alter_table('resource_service', schema=None) as batch_op:
        batch_op.create_index('ix_resource_service_code_resource_id', ['code', 'resource_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('resource_service', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_service_code_resource_id')

    op.drop_table('resource_service')
    with op.batch_alter_table('resource_region', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_region_code_resource_id')

    op.drop_table('resource_region')
    with op.batch_alter_table('resource_category', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_category_code_resource_id')

    op.drop_table('resource_category')
    with op.batch_alter_table('resource_movement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resource_movement_resource_id'))

    op.drop_table('resource_movement')
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_status_valid_until_valid_from')
        batch_op.drop_index('ix_resource_status_title')
        batch_op.drop_index('ix_resource_status_remaining')
        batch_op.drop_index('ix_resource_status_created_at')
        batch_op.drop_index('ix_resource_search_by_id')
        batch_op.drop_index(batch_op.f('ix_resource_kind'))
        batch_op.drop_index('ix_resource_charity_id_id')

    op.drop_table('resource')
    with op.batch_alter_table('charity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_charity_status'))
        batch_op.drop_index(batch_op.f('ix_charity_region_code'))

    op.drop_table('charity')
