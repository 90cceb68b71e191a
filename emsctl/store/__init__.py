"""Persistence: SQLite via SQLAlchemy 2.x and Alembic (transitions, commands, overrides,
samples, forecasts, kv). Start with `Store.open(path)`; see repo.py for the interface.

The store is split by who uses it: the tick log (ticklog.py: the controller's writes, one
transaction per tick), overrides (overrides.py), key/value and forecasts (keyvalue.py: the
cloud adapters and the web UI's sessions) and the read side (reads.py: pages and CLI), each
a part over one database (base.py) with its Protocol beside it; the users import the
Protocols they need (the controller: TickLogPort, OverridePort, DatabasePort; the web UI:
OverrideReads, ReadsPort, KeyValuePort). `Store` combines the parts by inheritance, so one
object serves the daemon, the UI and the CLI with one connection pool and one failure count,
and the call sites keep one name for it.
"""

from emsctl.store.base import DatabasePort
from emsctl.store.db import StoreError
from emsctl.store.keyvalue import KeyValuePort
from emsctl.store.listener import StoreListener
from emsctl.store.overrides import OverridePort, OverrideReads
from emsctl.store.reads import ReadsPort
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
from emsctl.store.ticklog import TickLogPort

__all__ = [
    "CommandRecord",
    "DatabasePort",
    "DayStats",
    "HistoryRow",
    "KeyValuePort",
    "LoadSample",
    "OverridePort",
    "OverrideReads",
    "OverrideRecord",
    "ReadsPort",
    "SampleRecord",
    "StopReason",
    "Store",
    "StoreError",
    "StoreListener",
    "TickLogPort",
]
