"""Charging by target: the owner's modes and targets per wallbox, and the charging sessions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "car_settings",
        sa.Column("load", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("load", name=op.f("pk_car_settings")),
    )
    op.create_table(
        "car_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("load", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("at_local", sa.String(length=5), nullable=True),
        sa.Column("by_at", sa.DateTime(), nullable=True),
        sa.Column("energy_wh", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_car_targets")),
    )
    op.create_index("ix_car_targets_load_kind", "car_targets", ["load", "kind"])
    op.create_table(
        "charging_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("load", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_draw_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_by", sa.String(length=16), nullable=True),
        sa.Column("energy_wh", sa.Float(), nullable=False),
        sa.Column("solar_wh", sa.Float(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("deadline", sa.DateTime(), nullable=True),
        sa.Column("target_wh", sa.Float(), nullable=True),
        sa.Column("target_source", sa.String(length=8), nullable=True),
        sa.Column("switch_ons", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charging_sessions")),
    )
    op.create_index(
        "ix_charging_sessions_load_started_at", "charging_sessions", ["load", "started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_charging_sessions_load_started_at", table_name="charging_sessions")
    op.drop_table("charging_sessions")
    op.drop_index("ix_car_targets_load_kind", table_name="car_targets")
    op.drop_table("car_targets")
    op.drop_table("car_settings")
