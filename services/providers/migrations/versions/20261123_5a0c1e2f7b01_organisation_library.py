"""organisation library

Revision ID: 5a0c1e2f7b01
Revises: 4b36af6f34b4
Create Date: 2026-11-23 21:10:37.233075
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5a0c1e2f7b01'
down_revision: str | None = '4b36af6f34b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('organisation_capability',
    sa.Column('organisation_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('monthly_capacity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_organisation_capability_organisation_id_organisation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organisation_id', 'code', name=op.f('pk_organisation_capability'))
    )
    with op.batch_alter_table('organisation_capability', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_capability_code'), ['code'], unique=False)

    op.create_table('organisation_service_region',
    sa.Column('organisation_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_organisation_service_region_organisation_id_organisation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organisation_id', 'code', name=op.f('pk_organisation_service_region'))
    )
    with op.batch_alter_table('organisation_service_region', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_service_region_code'), ['code'], unique=False)

    op.create_table('organisation_staff',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('organisation_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('qualification_level', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('education', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('social_work_education', sa.Boolean(), nullable=False),
    sa.Column('dispatched', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_organisation_staff_organisation_id_organisation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation_staff'))
    )
    with op.batch_alter_table('organisation_staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_staff_organisation_id'), ['organisation_id'], unique=False)

    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registration_authority', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('evidence', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('credit_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('credit_grade', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('score_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_index(batch_op.f('ix_organisation_credit_grade'), ['credit_grade'], unique=False)
        batch_op.create_index(batch_op.f('ix_organisation_credit_score'), ['credit_score'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_credit_score'))
        batch_op.drop_index(batch_op.f('ix_organisation_credit_grade'))
        batch_op.drop_column('version')
        batch_op.drop_column('score_version')
        batch_op.drop_column('credit_grade')
        batch_op.drop_column('credit_score')
        batch_op.drop_column('evidence')
        batch_op.drop_column('registration_authority')

    with op.batch_alter_table('organisation_staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_staff_organisation_id'))

    op.drop_table('organisation_staff')
    with op.batch_alter_table('organisation_service_region', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_service_region_code'))

    op.drop_table('organisation_service_region')
    with op.batch_alter_table('organisation_capability', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_capability_code'))

    op.drop_table('organisation_capability')
