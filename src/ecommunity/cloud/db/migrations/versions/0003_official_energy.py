"""official energy data and member energy settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:54:32.250445

The grid operator's official 15-minute values per metering point (issue 5), the imports that
brought them and the corrections re-deliveries made; members' meter and tariff settings.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "official_energy_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.Integer(), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("new_values", sa.Integer(), nullable=False),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("gaps", sa.Integer(), nullable=False),
        sa.Column("first_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_end", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_official_energy_imports_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["imported_by"],
            ["users.id"],
            name=op.f("fk_official_energy_imports_imported_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_official_energy_imports")),
    )
    with op.batch_alter_table("official_energy_imports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_official_energy_imports_community_id"), ["community_id"], unique=False
        )

    op.create_table(
        "member_energy_settings",
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("energy_price_uct_per_kwh", sa.BigInteger(), nullable=True),
        sa.Column("grid_usage_uct_per_kwh", sa.BigInteger(), nullable=True),
        sa.Column("renewable_levy_uct_per_kwh", sa.BigInteger(), nullable=True),
        sa.Column("grid_level", sa.Integer(), nullable=True),
        sa.Column("consumer_category", sa.String(length=16), nullable=True),
        sa.Column("feed_in_uct_per_kwh", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["community_memberships.id"],
            name=op.f("fk_member_energy_settings_membership_id_community_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"],
            ["meters.id"],
            name=op.f("fk_member_energy_settings_meter_id_meters"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("membership_id", name=op.f("pk_member_energy_settings")),
    )
    op.create_table(
        "official_energy_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("metering_point", sa.String(length=33), nullable=False),
        sa.Column("quantity", sa.String(length=8), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("previous_import_id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_official_energy_corrections_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["official_energy_imports.id"],
            name=op.f("fk_official_energy_corrections_import_id_official_energy_imports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["previous_import_id"],
            ["official_energy_imports.id"],
            name=op.f("fk_official_energy_corrections_previous_import_id_official_energy_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_official_energy_corrections")),
    )
    with op.batch_alter_table("official_energy_corrections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_official_energy_corrections_import_id"), ["import_id"], unique=False
        )
        batch_op.create_index(
            "ix_official_energy_corrections_value",
            ["community_id", "metering_point", "interval_start"],
            unique=False,
        )

    op.create_table(
        "official_energy_values",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("metering_point", sa.String(length=33), nullable=False),
        sa.Column("quantity", sa.String(length=8), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("quality", sa.String(length=2), nullable=True),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_official_energy_values_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["official_energy_imports.id"],
            name=op.f("fk_official_energy_values_import_id_official_energy_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "community_id",
            "metering_point",
            "quantity",
            "interval_start",
            name=op.f("pk_official_energy_values"),
        ),
    )
    with op.batch_alter_table("official_energy_values", schema=None) as batch_op:
        batch_op.create_index(
            "ix_official_energy_values_community_start",
            ["community_id", "interval_start"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_official_energy_values_import_id"), ["import_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("official_energy_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_official_energy_values_import_id"))
        batch_op.drop_index("ix_official_energy_values_community_start")

    op.drop_table("official_energy_values")
    with op.batch_alter_table("official_energy_corrections", schema=None) as batch_op:
        batch_op.drop_index("ix_official_energy_corrections_value")
        batch_op.drop_index(batch_op.f("ix_official_energy_corrections_import_id"))

    op.drop_table("official_energy_corrections")
    op.drop_table("member_energy_settings")
    with op.batch_alter_table("official_energy_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_official_energy_imports_community_id"))

    op.drop_table("official_energy_imports")
