"""projects and funds

Revision ID: 5a0c1e2f7b04
Revises: 5a0c1e2f7b03
Create Date: 2026-11-23 21:10:37.233075
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5a0c1e2f7b04'
down_revision: str | None = '5a0c1e2f7b03'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('fund_allocation',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('document', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_allocation'))
    )
    with op.batch_alter_table('fund_allocation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fund_allocation_region_code'), ['region_code'], unique=False)

    op.create_table('fund_ledger',
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('base_fen', sa.BigInteger(), nullable=False),
    sa.Column('cap_ratio', sa.Numeric(precision=6, scale=4), nullable=False),
    sa.Column('cap_fen', sa.BigInteger(), nullable=False),
    sa.Column('reserved_fen', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('region_code', 'year', name=op.f('pk_fund_ledger'))
    )
    op.create_table('project',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('service_codes', sa.JSON(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('quality_standards', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('qualification_requirements', sa.JSON(), nullable=False),
    sa.Column('specific_conditions', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('budget_fen', sa.BigInteger(), nullable=False),
    sa.Column('budget_year', sa.Integer(), nullable=False),
    sa.Column('fund_source', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('stable_recurring', sa.Boolean(), nullable=False),
    sa.Column('budget_secured', sa.Boolean(), nullable=False),
    sa.Column('purchasing_method', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('pack', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('state_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('tender_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('contract_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project'))
    )
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_budget_year'), ['budget_year'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_region_code'), ['region_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_state'), ['state'], unique=False)

    op.create_table('project_transition',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('from_state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('to_state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_transition_project_id_project')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_transition'))
    )
    with op.batch_alter_table('project_transition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_transition_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('project_transition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_transition_project_id'))

    op.drop_table('project_transition')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_state'))
        batch_op.drop_index(batch_op.f('ix_project_region_code'))
        batch_op.drop_index(batch_op.f('ix_project_created_at'))
        batch_op.drop_index(batch_op.f('ix_project_budget_year'))

    op.drop_table('project')
    op.drop_table('fund_ledger')
    with op.batch_alter_table('fund_allocation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fund_allocation_region_code'))

    op.drop_table('fund_allocation')
