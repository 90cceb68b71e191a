"""Car charging in the database: the owner's modes and targets per wallbox, and the charging
sessions.

Failure policy: the owner's writes raise StoreError (like overrides.py); so do the reads,
for the daemon keeps the settings it last read and the web UI and the CLI report the
failure, where empty settings or no sessions would be taken for the truth. The daemon's
`save_session` never raises (like ticklog.py): a failed write is logged and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, String, and_, insert, literal, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from emsctl.cars.types import (
    CarSettings,
    ChargingSession,
    OneOffTarget,
    SessionEnd,
    TargetSource,
    WeeklyTarget,
)
from emsctl.model import ChargeMode, LoadId
from emsctl.store.base import StoreBase, _cause
from emsctl.store.db import StoreError
from emsctl.store.models import car_settings_table, car_targets_table, charging_sessions_table

log = logging.getLogger(__name__)

T = TypeVar("T")
_ONE_OFF, _WEEKLY = "one-off", "weekly"


class CarStore(StoreBase):
    """The car tables (emsctl.cars.port.CarStorePort)."""

    # -- the owner's settings (raise StoreError) ------------------------------------------

    def _owner_write(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except SQLAlchemyError as exc:
            self._count(what, exc)
            raise StoreError(self.path, f"could not store {what} ({_cause(exc)})") from exc

    def car_settings(self, load: LoadId) -> CarSettings:
        """The owner's mode, one-off target and weekly schedule for the wallbox.

        Read every tick, so one query: the wallbox's key joined to its settings row and its
        targets in force (each side may be missing). A read that fails raises StoreError
        (counted): empty settings would put the config's mode in place of the owner's for
        that tick (an owner's "off" would charge); the daemon keeps the settings it last read.
        """
        key = select(literal(load.value, String(16)).label("load")).subquery("key")
        s, t = car_settings_table, car_targets_table
        q = (
            select(
                s.c.mode,
                t.c.kind,
                t.c.weekday,
                t.c.at_local,
                t.c.by_at,
                t.c.energy_wh,
                t.c.created_at,
                t.c.created_by,
            )
            .select_from(
                key.outerjoin(s, s.c.load == key.c.load).outerjoin(
                    t, and_(t.c.load == key.c.load, t.c.cleared_at.is_(None))
                )
            )
            .order_by(t.c.id)
        )
        rows = self._read("the charging settings", lambda conn: conn.execute(q).all())
        mode: str | None = rows[0].mode if rows else None
        one_off: OneOffTarget | None = None
        weekly: dict[int, WeeklyTarget] = {}
        for r in rows:
            if r.kind == _ONE_OFF and r.by_at is not None:
                one_off = OneOffTarget(r.by_at, r.energy_wh, r.created_at, r.created_by)
            elif r.kind == _WEEKLY and r.weekday is not None and r.at_local:
                at = time.fromisoformat(r.at_local)
                weekly[r.weekday] = WeeklyTarget(r.weekday, at, r.energy_wh)
        return CarSettings(
            mode=ChargeMode(mode) if mode else None,
            one_off=one_off,
            weekly=tuple(weekly[d] for d in sorted(weekly)),
        )

    def _read(self, what: str, fn: Callable[[Connection], T]) -> T:
        """A read of the car tables; a failure raises StoreError (counted), so that no caller
        mistakes a database that did not answer for one without settings or sessions."""
        try:
            with self.engine.connect() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            self._count(what, exc)
            raise StoreError(self.path, f"could not read {what} ({_cause(exc)})") from exc

    def set_car_mode(self, load: LoadId, mode: ChargeMode | None, by: str, at: datetime) -> None:
        def write() -> None:
            upsert = sqlite_insert(car_settings_table).values(
                load=load.value, mode=mode.value if mode else None, updated_at=at, updated_by=by
            )
            with self.engine.begin() as conn:
                conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[car_settings_table.c.load],
                        set_={
                            "mode": upsert.excluded.mode,
                            "updated_at": upsert.excluded.updated_at,
                            "updated_by": upsert.excluded.updated_by,
                        },
                    )
                )

        self._owner_write("the charging mode", write)

    def set_one_off_target(
        self, load: LoadId, target: OneOffTarget | None, by: str, at: datetime
    ) -> None:
        def write() -> None:
            with self.engine.begin() as conn:
                _clear(conn, load, _ONE_OFF, None, at)
                if target is not None:
                    conn.execute(
                        insert(car_targets_table).values(
                            load=load.value,
                            kind=_ONE_OFF,
                            by_at=target.by,
                            energy_wh=target.energy_wh,
                            created_at=target.set_at,
                            created_by=target.set_by,
                        )
                    )

        self._owner_write("the charging target", write)

    def set_weekly_target(
        self, load: LoadId, weekday: int, target: WeeklyTarget | None, by: str, at: datetime
    ) -> None:
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {weekday} is not 0 (Monday) .. 6 (Sunday)")

        def write() -> None:
            with self.engine.begin() as conn:
                _clear(conn, load, _WEEKLY, weekday, at)
                if target is not None:
                    conn.execute(
                        insert(car_targets_table).values(
                            load=load.value,
                            kind=_WEEKLY,
                            weekday=weekday,
                            at_local=target.at.strftime("%H:%M"),
                            energy_wh=target.energy_wh,
                            created_at=at,
                            created_by=by,
                        )
                    )

        self._owner_write("the weekly target", write)

    # -- the sessions ------------------------------------------------------------------------

    def save_session(self, session: ChargingSession) -> int:
        """Insert (id None) or update the session; returns its id and sets `session.id`.

        Called by the daemon during its ticks, so it never raises: like the tick log's
        commands and samples, a failed write is logged, counted and dropped, and returns the
        id the session had (0 for one never stored). Nothing is queued: the caller holds the
        session and saves it whole again minutes later (an insert that failed is tried again
        while `id` is None), so the row is at most that far behind. Its own short transaction,
        not the tick's: a session is saved every few minutes, not every tick.
        """
        values = _session_row(session)

        def write() -> int:
            with self.engine.begin() as conn:
                if session.id is None:
                    new_id = conn.execute(insert(charging_sessions_table).values(**values))
                    pk = new_id.inserted_primary_key
                    session.id = int(pk[0]) if pk is not None else 0
                else:
                    conn.execute(
                        update(charging_sessions_table)
                        .where(charging_sessions_table.c.id == session.id)
                        .values(**values)
                    )
            return session.id or 0

        return self._guard("save_session", write, session.id or 0)

    def car_sessions(
        self, load: LoadId | None = None, since: datetime | None = None, limit: int = 200
    ) -> list[ChargingSession]:
        """Sessions started at or after `since`, newest first. Raises StoreError."""
        q = select(charging_sessions_table)
        if load is not None:
            q = q.where(charging_sessions_table.c.load == load.value)
        if since is not None:
            q = q.where(charging_sessions_table.c.started_at >= since)
        q = q.order_by(
            charging_sessions_table.c.started_at.desc(), charging_sessions_table.c.id.desc()
        ).limit(max(1, min(limit, 100_000)))
        rows = self._read("the charging sessions", lambda conn: conn.execute(q).all())
        return [_session(r) for r in rows]

    def open_session(self, load: LoadId) -> ChargingSession | None:
        """The wallbox's newest session that has not ended. Raises StoreError."""
        q = (
            select(charging_sessions_table)
            .where(
                charging_sessions_table.c.load == load.value,
                charging_sessions_table.c.ended_at.is_(None),
            )
            .order_by(charging_sessions_table.c.id.desc())
            .limit(1)
        )
        row = self._read("the open session", lambda conn: conn.execute(q).first())
        return _session(row) if row is not None else None


def _clear(conn: Any, load: LoadId, kind: str, weekday: int | None, at: datetime) -> None:
    t = car_targets_table
    q = update(t).where(t.c.load == load.value, t.c.kind == kind, t.c.cleared_at.is_(None))
    if weekday is not None:
        q = q.where(t.c.weekday == weekday)
    conn.execute(q.values(cleared_at=at))


def _session_row(s: ChargingSession) -> dict[str, Any]:
    return {
        "load": s.load.value,
        "started_at": s.started_at,
        "last_draw_at": s.last_draw_at,
        "ended_at": s.ended_at,
        "ended_by": s.ended_by.value if s.ended_by else None,
        "energy_wh": s.energy_wh,
        "solar_wh": s.solar_wh,
        "estimated": s.estimated,
        "deadline": s.deadline,
        "target_wh": s.target_wh,
        "target_source": s.target_source.value if s.target_source else None,
        "switch_ons": s.switch_ons,
    }


def _session(r: Row[Any]) -> ChargingSession:
    return ChargingSession(
        load=LoadId(r.load),
        started_at=r.started_at,
        last_draw_at=r.last_draw_at,
        energy_wh=r.energy_wh,
        estimated=bool(r.estimated),
        ended_at=r.ended_at,
        ended_by=SessionEnd(r.ended_by) if r.ended_by else None,
        deadline=r.deadline,
        target_wh=r.target_wh,
        target_source=TargetSource(r.target_source) if r.target_source else None,
        solar_wh=r.solar_wh,
        id=r.id,
        switch_ons=r.switch_ons or 0,
    )
