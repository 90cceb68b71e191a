"""Persistence: SQLite via SQLAlchemy 2.x Core and Alembic (transitions, commands, overrides,
samples, forecasts, kv). Start with `Store.open(path)`; repo.py lists the whole interface.

The store is split by who uses it; each part has its Protocol beside its implementation:

    base.py       StoreBase, DatabasePort   the database file: open (refuse foreign, damaged
                                            or newer files), migrate, journal replay, file
                                            identity, reopen, close; the failure policy
    ticklog.py    TickLog, TickLogPort      the controller's writes: transitions, commands,
                                            samples in one transaction per tick (`tick()`),
                                            the outage queue and journal, prune
    overrides.py  Overrides, OverridePort   set by people (raise StoreError): add, clear,
                  (OverrideReads)           shift, records, active; detected manual outputs
    keyvalue.py   KeyValue, KeyValuePort    key/value rows and the forecast cache
    reads.py      Reads, ReadsPort          history, samples, commands, stats, span
    cars.py       CarStore                  the owner's charging modes and targets and the
                  (emsctl.cars.port)        charging sessions (reads and the owner's writes
                                            raise StoreError; save_session never raises)
    repo.py       Store                     the parts together, plus restore_statuses
                                            (restore.py; it reads the log and the overrides
                                            and writes "restore" transitions)
with rows.py (records to rows), queries.py and daystats.py (the read side's SQL),
journal.py, db.py, models.py, migrate.py and records.py underneath. The users import only
the Protocols:
the controller TickLogPort, OverridePort and DatabasePort; the web UI OverrideReads,
ReadsPort and KeyValuePort; the adapters their own StateStore (kv_get/kv_put); car charging
(the daemon's keeper, the web UI, `emsctl car`) CarStorePort from emsctl.cars.port.

Why `Store` inherits the parts instead of holding them: every part is a StoreBase, so
`class Store(TickLog, Overrides, KeyValue, Reads, CarStore)` has exactly one engine, one path,
one failure count and one lock, which each part already uses as `self`; mypy checks each part
against that base on its own, and a part can be opened alone (`TickLog.open(path)`).
Composition would need a forwarding method on Store for each of the ~45 public calls (or a
change of the ~300 call sites to `store.ticks.record_sample(...)`): the forwarding
signatures would be copies again, the kind that drifted in the controller and the web UI.
The one place where parts meet goes through the base: a detected manual hold marks the tick
log's `manual` transition still waiting for its tick's commit (`_mark_pending_manual`).
"""

from emsctl.store.base import DatabasePort
from emsctl.store.cars import CarStore
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
    "CarStore",
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
