"""expert library

Revision ID: 5a0c1e2f7b02
Revises: 5a0c1e2f7b01
Create Date: 2026-11-23 21:10:37.233075
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5a0c1e2f7b02'
down_revision: str | None = '5a0c1e2f7b01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('expert',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('phone_enc', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('email_enc', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('unavailable_until', sa.Date(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expert'))
    )
    with op.batch_alter_table('expert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_expert_available'), ['available'], unique=False)
        batch_op.create_index(batch_op.f('ix_expert_region_code'), ['region_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_expert_status'), ['status'], unique=False)

    op.create_table('expert_affiliation',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('expert_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('organisation_uscc', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
    sa.Column('organisation_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=False),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('fk_expert_affiliation_expert_id_expert'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expert_affiliation'))
    )
    with op.batch_alter_table('expert_affiliation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_expert_affiliation_expert_id'), ['expert_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_expert_affiliation_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_expert_affiliation_organisation_uscc'), ['organisation_uscc'], unique=False)

    op.create_table('expert_field',
    sa.Column('expert_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('fk_expert_field_expert_id_expert'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('expert_id', 'field', name=op.f('pk_expert_field'))
    )
    with op.batch_alter_table('expert_field', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_expert_field_field'), ['field'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('expert_field', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_expert_field_field'))

    op.drop_table('expert_field')
    with op.batch_alter_table('expert_affiliation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_expert_affiliation_organisation_uscc'))
        batch_op.drop_index(batch_op.f('ix_expert_affiliation_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_expert_affiliation_expert_id'))

    op.drop_table('expert_affiliation')
    with op.batch_alter_table('expert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_expert_status'))
        batch_op.drop_index(batch_op.f('ix_expert_region_code'))
        batch_op.drop_index(batch_op.f('ix_expert_available'))

    op.drop_table('expert')
