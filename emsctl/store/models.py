"""SQLAlchemy 2.x models of the store: transitions, commands, overrides, samples, forecasts, kv.

Every timestamp is UTC. `UtcDateTime` stores it naive-UTC as SQLite's ISO text
(`2025-06-01 12:00:00.000000`), readable in the `sqlite3` shell and comparable as text, and
hands it back timezone-aware. Loads and states are plain strings (the enums' values), so a new
load or state needs no migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TransitionRow(Base):
    """One state change of a load's machine: the answer to "when did it run and why"."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    load: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(32))
    #: JSON array of the verdict's short human reasons.
    reasons: Mapped[str] = mapped_column(Text, default="[]")
    #: Whether the load's output is on in `target` (NULL: unknown, e.g. manual without read-back).
    output_on: Mapped[bool | None] = mapped_column(Boolean)
    #: JSON object of the key measurements at the time (soc_pct, grid_w, surplus_w, ...).
    measurements: Mapped[str | None] = mapped_column(Text)
    #: When `target` ends on its own (cooldown end, manual hold end), when known.
    until: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_transitions_load_at", "load", "at"),
        Index("ix_transitions_at", "at"),
    )


class CommandRow(Base):
    """One actuation: what was asked of a device, whether it worked and how long it took."""

    __tablename__ = "commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    load: Mapped[str] = mapped_column(String(16))
    on: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Only a dead-man renewal (successful renewals are not stored, failed ones are).
    renew: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_commands_load_at", "load", "at"),
        Index("ix_commands_at", "at"),
    )


class OverrideRow(Base):
    """An owner's override from the UI/CLI, or one detected at the device (`detected`)."""

    __tablename__ = "overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    load: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: NULL: until released.
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cleared_by: Mapped[str | None] = mapped_column(String(64))
    detected: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_overrides_load_cleared_at", "load", "cleared_at"),
        Index("ix_overrides_created_at", "created_at"),
    )


class SampleRow(Base):
    """The house's measurements at one tick (for the UI chart); pruned after the retention.

    Watts are rounded to whole watts: SQLite then stores them in 1-3 bytes instead of 8.
    """

    __tablename__ = "samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    grid_w: Mapped[float | None] = mapped_column(Float)
    grid_l1_w: Mapped[float | None] = mapped_column(Float)
    grid_l2_w: Mapped[float | None] = mapped_column(Float)
    grid_l3_w: Mapped[float | None] = mapped_column(Float)
    soc_pct: Mapped[float | None] = mapped_column(Float)
    pv_w: Mapped[float | None] = mapped_column(Float)
    battery_w: Mapped[float | None] = mapped_column(Float)
    compressor_w: Mapped[float | None] = mapped_column(Float)
    outdoor_c: Mapped[float | None] = mapped_column(Float)
    dhw_c: Mapped[float | None] = mapped_column(Float)
    surplus_w: Mapped[float | None] = mapped_column(Float)


class SampleLoadRow(Base):
    """One load's state and output at one tick; deleted with its sample."""

    __tablename__ = "sample_loads"

    sample_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True
    )
    load: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    #: The device's actual output (NULL: not read).
    output_on: Mapped[bool | None] = mapped_column(Boolean)
    power_w: Mapped[float | None] = mapped_column(Float)

    # The primary key is the row: no hidden rowid, about a third smaller on disk.
    __table_args__ = ({"sqlite_with_rowid": False},)


class ForecastRow(Base):
    """A cached forecast response (raw JSON), per source key."""

    __tablename__ = "forecasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(200))
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    payload: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_forecasts_source_key_fetched_at", "source_key", "fetched_at"),)


class KvRow(Base):
    """Small named values that must survive a restart (never secrets)."""

    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


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
