"""communities, memberships and notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 11:16:56.028537

Energy communities (issue 5): communities with their postal codes and generation plants,
memberships (applications included) with their participation-factor history, notifications.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "communities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("allocation_model", sa.String(length=16), nullable=False),
        sa.Column("grid_operator", sa.String(length=100), nullable=False),
        sa.Column("municipality", sa.String(length=100), nullable=False),
        sa.Column("area_id", sa.String(length=64), nullable=True),
        sa.Column("consumer_price_uct_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("producer_price_uct_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("member_fee_cents_per_year", sa.BigInteger(), nullable=False),
        sa.Column("open_for_members", sa.Boolean(), nullable=False),
        sa.Column("statutes", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["users.id"],
            name=op.f("fk_communities_operator_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
    )
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_communities_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_communities_latitude"), ["latitude"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_communities_operator_id"), ["operator_id"], unique=False
        )

    op.create_table(
        "community_memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("metering_point", sa.String(length=33), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tf_percent", sa.Integer(), nullable=False),
        sa.Column("static_key_ppb", sa.BigInteger(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statutes_accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejection_reason", sa.String(length=500), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_memberships_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_community_memberships_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_memberships")),
    )
    with op.batch_alter_table("community_memberships", schema=None) as batch_op:
        batch_op.create_index(
            "ix_community_memberships_community_status", ["community_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_community_memberships_metering_point"), ["metering_point"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_community_memberships_user_id"), ["user_id"], unique=False
        )
        batch_op.create_index(
            "uq_community_memberships_open_point",
            ["community_id", "metering_point"],
            unique=True,
            sqlite_where=sa.text("status IN ('applied', 'approved', 'active')"),
            postgresql_where=sa.text("status IN ('applied', 'approved', 'active')"),
        )

    op.create_table(
        "community_postal_codes",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("postal_code", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_postal_codes_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "community_id", "postal_code", name=op.f("pk_community_postal_codes")
        ),
    )
    with op.batch_alter_table("community_postal_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_postal_codes_postal_code"), ["postal_code"], unique=False
        )

    op.create_table(
        "generation_plants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("peak_power_wp", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_generation_plants_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_plants")),
    )
    with op.batch_alter_table("generation_plants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_generation_plants_community_id"), ["community_id"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("membership_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_notifications_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["community_memberships.id"],
            name=op.f("fk_notifications_membership_id_community_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_user_id_created_at", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "participation_factors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("tf_percent", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["community_memberships.id"],
            name=op.f("fk_participation_factors_membership_id_community_memberships"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participation_factors")),
    )
    with op.batch_alter_table("participation_factors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_participation_factors_membership_id"), ["membership_id"], unique=False
        )


def downgrade() -> None:
    # Dropping a table drops its indexes with it.
    for table in (
        "participation_factors",
        "notifications",
        "generation_plants",
        "community_postal_codes",
        "community_memberships",
        "communities",
    ):
        op.drop_table(table)
