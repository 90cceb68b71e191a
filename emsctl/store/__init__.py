"""Persistence: SQLite via SQLAlchemy 2.x and Alembic (transitions, commands, overrides,
samples, forecasts, kv). Start with `Store.open(path)`; see repo.py for the interface."""

from emsctl.store.db import StoreError
from emsctl.store.listener import StoreListener
from emsctl.store.records import (
    CommandRecord,
    DayStats,
    HistoryRow,
    LoadSample,
    OverrideRecord,
    SampleRecord,
    StopReason,
)
from emsctl.store.repo import Store

__all__ = [
    "CommandRecord",
    "DayStats",
    "HistoryRow",
    "LoadSample",
    "OverrideRecord",
    "SampleRecord",
    "StopReason",
    "Store",
    "StoreError",
    "StoreListener",
]
