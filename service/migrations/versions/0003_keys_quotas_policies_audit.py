"""api keys table, tenant quotas, versioned policies, admin audit log, idempotency keys

Moves each tenant's single key digest (tenants.api_key_hash) into api_keys, so a tenant can hold several keys.

Revision ID: 0003
Revises: 0002
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LEGACY_PREFIX = "gft-????"  # the plain key of a migrated digest is unknown, so is its prefix


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    keys = sa.table(
        "api_keys",
        sa.column("id", sa.String),
        sa.column("tenant_id", sa.String),
        sa.column("key_hash", sa.String),
        sa.column("prefix", sa.String),
        sa.column("created_at", sa.BigInteger),
        sa.column("revoked_at", sa.BigInteger),
    )
    tenants = op.get_bind().execute(sa.text("SELECT id, api_key_hash, created_at, revoked_at FROM tenants")).all()
    if tenants:
        op.bulk_insert(
            keys,
            [
                {
                    "id": f"key-{secrets.token_hex(12)}",
                    "tenant_id": t.id,
                    "key_hash": t.api_key_hash,
                    "prefix": _LEGACY_PREFIX,
                    "created_at": t.created_at,
                    "revoked_at": t.revoked_at,
                }
                for t in tenants
            ],
        )
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("api_key_hash")
        batch_op.add_column(sa.Column("max_concurrent_jobs", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_file_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("max_trained_tokens_per_day", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("policy_version", sa.Integer(), server_default=sa.text("0"), nullable=False))

    op.create_table(
        "policies",
        sa.Column("version", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("policy", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("ix_policies_tenant_version", "policies", ["tenant_id", "version"])

    op.create_table(
        "admin_audit",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_admin_audit_action", "admin_audit", ["action"])
    op.create_index("ix_admin_audit_tenant_id", "admin_audit", ["tenant_id"])

    op.create_table(
        "idempotency_keys",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_idempotency_keys_tenant_key", "idempotency_keys", ["tenant_id", "key"], unique=True)


def downgrade() -> None:
    """Each tenant keeps its oldest live key; a tenant without one gets an unusable random digest."""
    op.drop_index("ix_idempotency_keys_tenant_key", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_admin_audit_tenant_id", table_name="admin_audit")
    op.drop_index("ix_admin_audit_action", table_name="admin_audit")
    op.drop_table("admin_audit")
    op.drop_index("ix_policies_tenant_version", table_name="policies")
    op.drop_table("policies")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("policy_version")

    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("max_trained_tokens_per_day")
        batch_op.drop_column("max_file_bytes")
        batch_op.drop_column("max_concurrent_jobs")
        batch_op.add_column(sa.Column("api_key_hash", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    live = bind.execute(sa.text("SELECT tenant_id, key_hash FROM api_keys WHERE revoked_at IS NULL ORDER BY seq DESC"))
    oldest = dict(live.all())  # later (older) rows overwrite newer ones
    for (tenant_id,) in bind.execute(sa.text("SELECT id FROM tenants")).all():
        bind.execute(
            sa.text("UPDATE tenants SET api_key_hash = :h WHERE id = :id"),
            {"h": oldest.get(tenant_id, secrets.token_hex(32)), "id": tenant_id},
        )
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.alter_column("api_key_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("uq_tenants_api_key_hash", ["api_key_hash"])
    op.drop_index("ix_api_keys_tenant_id", table_name="api_keys")
    op.drop_table("api_keys")
