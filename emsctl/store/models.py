"""SQLAlchemy 2.x tables of the store: transitions, commands, overrides, samples, forecasts, kv.

Every timestamp is UTC. `UtcDateTime` stores it naive-UTC as SQLite's ISO text
(`2025-06-01 12:00:00.000000`), readable in the `sqlite3` shell and comparable as text, and
hands it back timezone-aware. Loads and states are plain strings (the enums' values), so a new
load or state needs no migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from emsctl.model import MEASUREMENTS

#: Constraint names are fixed so that batch migrations on SQLite can address them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC; a naive value is refused (it hides a bug)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} (the store needs aware UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


#: Every table of the store; Alembic's autogenerate and the drift check compare against it.
metadata = MetaData(naming_convention=NAMING)

# Core tables, not ORM classes: the store reads and writes rows, it never needs an identity
# map, and leaving sqlalchemy.orm unimported keeps the daemon about 6 MB smaller.

#: One state change of a load's machine: the answer to "when did it run and why".
transitions_table = Table(
    "transitions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("load", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("target", String(16), nullable=False),
    Column("event", String(32), nullable=False),
    # JSON array of the verdict's short human reasons.
    Column("reasons", Text, nullable=False, default="[]"),
    # Whether the load's output is on in `target` (NULL: unknown, e.g. manual without read-back).
    Column("output_on", Boolean),
    # JSON object of the key measurements at the time (soc_pct, grid_w, surplus_w, ...).
    Column("measurements", Text),
    # When `target` ends on its own (cooldown end, manual hold end), when known.
    Column("until", UtcDateTime),
    Index("ix_transitions_load_at", "load", "at"),
    Index("ix_transitions_at", "at"),
)

#: One actuation: what was asked of a device, whether it worked and how long it took.
commands_table = Table(
    "commands",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("load", String(16), nullable=False),
    Column("on", Boolean, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Column("latency_ms", Float),
    Column("dry_run", Boolean, nullable=False, default=False),
    # Only a dead-man renewal (successful renewals are not stored, failed ones are).
    Column("renew", Boolean, nullable=False, default=False),
    Index("ix_commands_load_at", "load", "at"),
    Index("ix_commands_at", "at"),
)

#: An owner's override from the UI/CLI, or one detected at the device (`detected`).
overrides_table = Table(
    "overrides",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("load", String(16), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # NULL: until released.
    Column("expires_at", UtcDateTime),
    Column("cleared_at", UtcDateTime),
    Column("cleared_by", String(64)),
    Column("detected", Boolean, nullable=False, default=False),
    Column("note", Text),
    Index("ix_overrides_load_cleared_at", "load", "cleared_at"),
    Index("ix_overrides_created_at", "created_at"),
)

#: The house's measurements at one tick (for the UI chart); pruned after the retention.
#: Watts are rounded to whole watts: SQLite then stores them in 1-3 bytes instead of 8.
samples_table = Table(
    "samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    # A new measurement needs a migration: the drift check fails until it has one.
    *(Column(name, Float) for name in (*MEASUREMENTS, "surplus_w")),
)

#: One load's state and output at one tick; deleted with its sample.
sample_loads_table = Table(
    "sample_loads",
    metadata,
    Column(
        "sample_id",
        Integer,
        ForeignKey("samples.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("load", String(16), primary_key=True),
    Column("state", String(16), nullable=False),
    # The device's actual output (NULL: not read).
    Column("output_on", Boolean),
    Column("power_w", Float),
    # The primary key is the row: no hidden rowid, about a third smaller on disk.
    sqlite_with_rowid=False,
)

#: A cached forecast response (raw JSON), per source key.
forecasts_table = Table(
    "forecasts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_key", String(200), nullable=False),
    Column("fetched_at", UtcDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_forecasts_source_key_fetched_at", "source_key", "fetched_at"),
)

#: Small named values that must survive a restart (never secrets).
kv_table = Table(
    "kv",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)


#: The owner's charging mode per wallbox (no row, or NULL: the config's `charging.mode`).
car_settings_table = Table(
    "car_settings",
    metadata,
    Column("load", String(16), primary_key=True),
    Column("mode", String(16)),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(64), nullable=False),
)

#: The owner's charging targets: a one-off target for the current session (`by_at`), or one
#: weekday of the weekly schedule (`weekday` 0 = Monday, `at_local` "HH:MM"). A target that
#: is replaced or cleared keeps its row with `cleared_at`.
car_targets_table = Table(
    "car_targets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("load", String(16), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("weekday", Integer),
    Column("at_local", String(5)),
    Column("by_at", UtcDateTime),
    Column("energy_wh", Float, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("cleared_at", UtcDateTime),
    Index("ix_car_targets_load_kind", "load", "kind"),
)

#: One car at one wallbox from its first draw to its end (emsctl.cars.types.ChargingSession).
charging_sessions_table = Table(
    "charging_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("load", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_draw_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    # stopped_drawing, not_found, deadline_passed, mode_off, no_car; NULL while open.
    Column("ended_by", String(16)),
    Column("energy_wh", Float, nullable=False),
    Column("solar_wh", Float, nullable=False),
    # True: the wallbox has no meter and the energy is its nominal power times the time the
    # car was judged to draw.
    Column("estimated", Boolean, nullable=False),
    Column("deadline", UtcDateTime),
    Column("target_wh", Float),
    Column("target_source", String(8)),
    Column("switch_ons", Integer, nullable=False, default=0),
    Index("ix_charging_sessions_load_started_at", "load", "started_at"),
)


def db_time(value: datetime) -> str:
    """`value` as the text UtcDateTime stores, for hand-written SQL (compares as text)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} (the store needs aware UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def from_db_time(text: str | datetime | None) -> datetime | None:
    """The inverse of db_time for values read by hand-written SQL."""
    if text is None:
        return None
    if isinstance(text, datetime):
        return text.replace(tzinfo=UTC)
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
