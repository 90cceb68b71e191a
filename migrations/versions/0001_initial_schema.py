"""Initial schema: transitions, commands, overrides, samples, forecasts, kv.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Timestamps are naive UTC in SQLite's ISO text (emsctl.store.models.UtcDateTime).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("load", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("output_on", sa.Boolean(), nullable=True),
        sa.Column("measurements", sa.Text(), nullable=True),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transitions")),
    )
    op.create_index("ix_transitions_load_at", "transitions", ["load", "at"])
    op.create_index("ix_transitions_at", "transitions", ["at"])

    op.create_table(
        "commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("load", sa.String(length=16), nullable=False),
        sa.Column("on", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("renew", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
    )
    op.create_index("ix_commands_load_at", "commands", ["load", "at"])
    op.create_index("ix_commands_at", "commands", ["at"])

    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("load", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.Column("cleared_by", sa.String(length=64), nullable=True),
        sa.Column("detected", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overrides")),
    )
    op.create_index("ix_overrides_load_cleared_at", "overrides", ["load", "cleared_at"])
    op.create_index("ix_overrides_created_at", "overrides", ["created_at"])

    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("grid_w", sa.Float(), nullable=True),
        sa.Column("grid_l1_w", sa.Float(), nullable=True),
        sa.Column("grid_l2_w", sa.Float(), nullable=True),
        sa.Column("grid_l3_w", sa.Float(), nullable=True),
        sa.Column("soc_pct", sa.Float(), nullable=True),
        sa.Column("pv_w", sa.Float(), nullable=True),
        sa.Column("battery_w", sa.Float(), nullable=True),
        sa.Column("compressor_w", sa.Float(), nullable=True),
        sa.Column("outdoor_c", sa.Float(), nullable=True),
        sa.Column("dhw_c", sa.Float(), nullable=True),
        sa.Column("surplus_w", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
    )
    op.create_index("ix_samples_at", "samples", ["at"])

    op.create_table(
        "sample_loads",
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("load", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("output_on", sa.Boolean(), nullable=True),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_sample_loads_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sample_id", "load", name=op.f("pk_sample_loads")),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "forecasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecasts")),
    )
    op.create_index("ix_forecasts_source_key_fetched_at", "forecasts", ["source_key", "fetched_at"])

    op.create_table(
        "kv",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_kv")),
    )


def downgrade() -> None:
    op.drop_table("kv")
    op.drop_index("ix_forecasts_source_key_fetched_at", table_name="forecasts")
    op.drop_table("forecasts")
    op.drop_table("sample_loads")
    op.drop_index("ix_samples_at", table_name="samples")
    op.drop_table("samples")
    op.drop_index("ix_overrides_created_at", table_name="overrides")
    op.drop_index("ix_overrides_load_cleared_at", table_name="overrides")
    op.drop_table("overrides")
    op.drop_index("ix_commands_at", table_name="commands")
    op.drop_index("ix_commands_load_at", table_name="commands")
    op.drop_table("commands")
    op.drop_index("ix_transitions_at", table_name="transitions")
    op.drop_index("ix_transitions_load_at", table_name="transitions")
    op.drop_table("transitions")
