"""contracts (sales) and the DPAs attached to them

Both tables are tenant-owned (row-level security forced). A contract changes its status stamps and the DPA status
last announced; what identifies it (tenant, reference, owner, creation) is frozen. Attachments are inserted and,
when sales detach one, deleted (the audit chain keeps both).

Revision ID: b3f7c1d9e5a2
Revises: e6f1a9c3d7b2
Create Date: 2026-12-04 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import dpa_service.core.db
from dpa_service.migrations.security import enable_tenant_rls, freeze_columns, grant_app

revision: str = 'b3f7c1d9e5a2'
down_revision: str | None = 'e6f1a9c3d7b2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contracts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('closed_at', dpa_service.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.Uuid(), nullable=True),
    sa.Column('dpa_status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('dpa_status_at', dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index('ix_contracts_tenant_id_id', ['tenant_id', 'id'], unique=False)
        batch_op.create_index('uq_contracts_tenant_reference', ['tenant_id', 'reference'], unique=True)

    op.create_table('contract_agreements',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('contract_id', sa.Uuid(), nullable=False),
    sa.Column('agreement_id', sa.Uuid(), nullable=False),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('attached_by', sa.Uuid(), nullable=True),
    sa.Column('attached_at', dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], ),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('contract_agreements', schema=None) as batch_op:
        batch_op.create_index('ix_contract_agreements_tenant_agreement', ['tenant_id', 'agreement_id'], unique=False)
        batch_op.create_index('uq_contract_agreements_contract_agreement', ['contract_id', 'agreement_id'], unique=True)

    enable_tenant_rls('contracts')
    grant_app('contracts', 'SELECT, INSERT, UPDATE')
    freeze_columns('contracts', ['tenant_id', 'reference', 'owner_id', 'created_at'])
    enable_tenant_rls('contract_agreements')
    grant_app('contract_agreements', 'SELECT, INSERT, DELETE')
    freeze_columns('contract_agreements', ['tenant_id', 'contract_id', 'agreement_id', 'via', 'attached_by',
                                           'attached_at'])


def downgrade() -> None:
    with op.batch_alter_table('contract_agreements', schema=None) as batch_op:
        batch_op.drop_index('uq_contract_agreements_contract_agreement')
        batch_op.drop_index('ix_contract_agreements_tenant_agreement')

    op.drop_table('contract_agreements')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index('uq_contracts_tenant_reference')
        batch_op.drop_index('ix_contracts_tenant_id_id')

    op.drop_table('contracts')
