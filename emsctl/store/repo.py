"""The `Store`: the daemon's, the UI's and the CLI's single door to the SQLite database.

Open with `Store.open(path)` (checks the file, migrates to head, WAL + foreign keys) or
`Store.temporary()` / `Store.open(":memory:")` for the demo and tests.

Writes made every tick never raise: a full disk or a locked database is logged, counted in
`failures` (and `failures_by_op`) and reported by returning False, so control goes on.
    record_transitions(transitions) -> bool  (a failed batch is kept and written first by the
                                              next tick write: never resend it)
    record_command(load, on, reason, ok, error, latency_s, at, dry_run=False, *, renew=False)
                                             -> bool (successful renewals are not stored)
    record_sample(at, snapshot, statuses, *, surplus_w=None) -> bool
    prune(now) -> bool                      samples (and old renewals/forecasts) past retention
    with tick(): ...                        the block's transitions, commands and sample in one
                                            transaction (the controller's tick)
    put_forecast(source_key, fetched_at, payload_json) -> bool
    kv_put(key, value, at) -> bool
Reads that adapters use in a tick return None on failure: kv_get(key), latest_forecast(key).
Overrides are set by people and raise StoreError when they cannot be stored:
    add_override(load, mode, created_by, created_at, expires_at, detected=False, note=None) -> id
    clear_override(load, cleared_by, at) -> int
    active_overrides(now) -> dict[LoadId, Override]     the owner's, in force at `now`
    override_records(now=None, *, active_only=True, load=None) -> list[OverrideRecord]
Start-up: restore_statuses(now, config=None, *, record=True) -> dict[LoadId, LoadStatus]
(see emsctl.store.restore). Queries (raise SQLAlchemyError on failure, for the UI and CLI):
    history(load=None, since=None, until=None, limit=100, offset=0, *, now=None)
        -> list[HistoryRow]                   transitions and overrides merged, newest first
    samples(since, until=None) -> list[SampleRecord]          oldest first, for the chart
    commands(load=None, since=None, limit=100) -> list[CommandRecord]
    stats(days=7, config=None, now=None, load=None) -> list[DayStats]   see daystats.py
Car charging (cars.py, emsctl.cars.port.CarStorePort): the owner's settings per wallbox,
written by people (raise StoreError) and read by the daemon every tick in one query (raises
StoreError; the daemon keeps what it last read):
    car_settings(load) -> CarSettings                    mode (None: the config's), targets
    set_car_mode(load, mode | None, by, at)
    set_one_off_target(load, OneOffTarget | None, by, at)
    set_weekly_target(load, weekday, WeeklyTarget | None, by, at)
and the charging sessions: save_session(session) -> id (tick time: never raises),
car_sessions(load=None, since=None, limit=200) newest first, open_session(load) (both raise
StoreError).
"""

from __future__ import annotations

from datetime import datetime

from emsctl.config import Config
from emsctl.model import LoadId, LoadStatus
from emsctl.store.cars import CarStore
from emsctl.store.db import StoreError
from emsctl.store.keyvalue import KeyValue
from emsctl.store.overrides import Overrides
from emsctl.store.reads import Reads
from emsctl.store.ticklog import TickLog


class Store(TickLog, Overrides, KeyValue, Reads, CarStore):
    """The daemon's, the UI's and the CLI's single door to the database: its parts
    (ticklog.py, overrides.py, keyvalue.py, reads.py, cars.py) over one StoreBase (base.py:
    open, reopen, temporary, close), each with the Protocol its users import (see
    __init__.py)."""

    def restore_statuses(
        self, now: datetime, config: Config | None = None, *, record: bool = True
    ) -> dict[LoadId, LoadStatus]:
        """Each load's status as the store last saw it, for a Site at start-up.

        See emsctl.store.restore for the rules (expired overrides are not revived). With
        `record`, state changes made here are stored as transitions with event "restore".
        """
        from emsctl.store.restore import restore

        statuses, changes = restore(self, now, config)
        if record and changes:
            self.record_transitions(changes)
        return statuses


__all__ = ["Store", "StoreError"]
