"""The owner's overrides and the manual holds detected on devices: set by people, so a write
that fails raises (StoreError) instead of being dropped."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from emsctl import clock
from emsctl.model import (
    LoadId,
    Mode,
    Override,
    State,
)
from emsctl.store.base import StoreBase, _cause
from emsctl.store.db import StoreError
from emsctl.store.models import (
    overrides_table,
    transitions_table,
)
from emsctl.store.records import OverrideRecord

log = logging.getLogger(__name__)


class OverrideReads(Protocol):
    """The overrides in force, for the pages and the start-up."""

    def active_overrides(self, now: datetime) -> dict[LoadId, Override]: ...

    def override_records(
        self,
        now: datetime | None = None,
        *,
        active_only: bool = True,
        load: LoadId | None = None,
        limit: int = 100,
    ) -> list[OverrideRecord]: ...


class OverridePort(OverrideReads, Protocol):
    """Setting and ending overrides (the controller, for the owner and for detected holds)."""

    def add_override(
        self,
        load: LoadId,
        mode: Mode,
        created_by: str,
        created_at: datetime,
        expires_at: datetime | None,
        detected: bool = False,
        note: str | None = None,
    ) -> int: ...

    def clear_override(self, load: LoadId, cleared_by: str, at: datetime) -> int: ...

    def shift_overrides(self, step: timedelta, now: datetime) -> int: ...


class Overrides(StoreBase):
    """Overrides and detected manual holds (see OverridePort)."""

    def add_override(
        self,
        load: LoadId,
        mode: Mode | str,
        created_by: str,
        created_at: datetime,
        expires_at: datetime | None,
        detected: bool = False,
        note: str | None = None,
    ) -> int:
        """Store an override (it supersedes the load's active one). Returns its id.

        `mode` is Mode.FORCE_ON or Mode.FORCE_OFF; a detected one (a person's switching seen
        at the device, the machine's manual hold) says which way the relay went (it also
        marks the load's `manual` transition as output on/off) or is "manual" when unknown.
        Mode.AUTO is not an override: use clear_override. Raises StoreError when it cannot be
        stored.
        """
        mode = str(mode)
        allowed = {str(Mode.FORCE_ON), str(Mode.FORCE_OFF)} | ({"manual"} if detected else set())
        if mode not in allowed:
            hint = "; for Auto call clear_override" if mode == str(Mode.AUTO) else ""
            raise ValueError(f"override mode {mode!r} is not one of {sorted(allowed)}{hint}")
        if expires_at is not None and expires_at <= created_at:
            raise ValueError(f"override expires ({expires_at}) before it starts ({created_at})")
        try:
            with self.engine.begin() as conn:
                self._clear(conn, load, created_by, created_at)
                result = conn.execute(
                    insert(overrides_table).values(
                        load=str(load),
                        mode=str(mode),
                        created_by=created_by,
                        created_at=created_at,
                        expires_at=expires_at,
                        detected=detected,
                        note=note,
                    )
                )
                new_id = int(result.lastrowid)  # the INTEGER PRIMARY KEY is the rowid
                if detected and mode in (str(Mode.FORCE_ON), str(Mode.FORCE_OFF)):
                    on = mode == str(Mode.FORCE_ON)
                    # Inside a tick the `manual` transition may still wait for its commit.
                    if not self._mark_pending_manual(str(load), on, created_at):
                        self._mark_manual_output(conn, load, on, created_at)
        except SQLAlchemyError as exc:
            self._count("add_override", exc)
            raise StoreError(self.path, f"could not store the override ({_cause(exc)})") from exc
        log.info(
            "override %s %s by %s until %s%s",
            load,
            mode,
            created_by,
            expires_at.isoformat() if expires_at else "released",
            " (detected)" if detected else "",
        )
        return new_id

    def clear_override(self, load: LoadId, cleared_by: str, at: datetime) -> int:
        """End the load's active override(s); returns how many. Raises StoreError on failure."""
        try:
            with self.engine.begin() as conn:
                n = self._clear(conn, load, cleared_by, at)
        except SQLAlchemyError as exc:
            self._count("clear_override", exc)
            raise StoreError(self.path, f"could not clear the override ({_cause(exc)})") from exc
        if n:
            log.info("override of %s cleared by %s", load, cleared_by)
        return n

    @staticmethod
    def _mark_manual_output(conn: Connection, load: LoadId, on: bool, at: datetime) -> None:
        """A detected override says which way the person switched: record it on the `manual`
        transition it belongs to, so runtime statistics count a relay switched on by hand."""
        latest = (
            select(func.max(transitions_table.c.id))
            .where(transitions_table.c.load == str(load), transitions_table.c.at <= at)
            .scalar_subquery()
        )
        conn.execute(
            update(transitions_table)
            .where(
                transitions_table.c.id == latest,
                transitions_table.c.target == str(State.MANUAL),
                transitions_table.c.output_on.is_(None),
            )
            .values(output_on=on)
        )

    @staticmethod
    def _clear(conn: Connection, load: LoadId, by: str, at: datetime) -> int:
        result = conn.execute(
            update(overrides_table)
            .where(
                overrides_table.c.load == str(load),
                overrides_table.c.cleared_at.is_(None),
                (overrides_table.c.expires_at.is_(None)) | (overrides_table.c.expires_at > at),
            )
            .values(cleared_at=at, cleared_by=by)
        )
        return int(result.rowcount or 0)

    def shift_overrides(self, step: timedelta, now: datetime) -> int:
        """Move the overrides in force by a wall-clock step (`now` is after the step).

        An owner's "Force off for 4 h" keeps its four hours when NTP or a person sets the
        clock; without this a step back hides it (created "in the future") and a step forward
        ends it early. Returns how many were moved; raises StoreError on failure.
        """
        before = now - step
        rows = self.override_records(before, active_only=True, limit=1000)
        try:
            with self.engine.begin() as conn:
                for rec in rows:
                    conn.execute(
                        update(overrides_table)
                        .where(overrides_table.c.id == rec.id)
                        .values(
                            created_at=rec.created_at + step,
                            expires_at=None if rec.expires_at is None else rec.expires_at + step,
                        )
                    )
        except SQLAlchemyError as exc:
            self._count("shift_overrides", exc)
            raise StoreError(self.path, f"could not re-base overrides ({_cause(exc)})") from exc
        return len(rows)

    def override_records(
        self,
        now: datetime | None = None,
        *,
        active_only: bool = True,
        load: LoadId | None = None,
        limit: int = 100,
    ) -> list[OverrideRecord]:
        """Overrides newest first; with active_only, those in force at `now`."""
        q = select(overrides_table).order_by(
            overrides_table.c.created_at.desc(), overrides_table.c.id.desc()
        )
        if load is not None:
            q = q.where(overrides_table.c.load == str(load))
        if active_only:
            at = now or clock.now()
            q = q.where(
                overrides_table.c.cleared_at.is_(None),
                (overrides_table.c.expires_at.is_(None)) | (overrides_table.c.expires_at > at),
                overrides_table.c.created_at <= at,
            )
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(limit)).all()
        return [_override_record(r) for r in rows if _known_load(r.load)]

    def active_overrides(self, now: datetime) -> dict[LoadId, Override]:
        """The owner's override in force per load at `now` (not expired, not cleared).

        Detected manual holds are not included: the machines keep those as `manual`."""
        out: dict[LoadId, Override] = {}
        for rec in self.override_records(now, active_only=True, limit=1000):
            ov = None if rec.detected else rec.override
            if ov is not None:
                out.setdefault(rec.load, ov)  # newest first: the latest wins
        return out


def _known_load(value: str) -> bool:
    try:
        LoadId(value)
    except ValueError:
        log.warning("the store names an unknown load %r; ignored", value)
        return False
    return True


def _override_record(r: Row[Any]) -> OverrideRecord:
    return OverrideRecord(
        id=r.id,
        load=LoadId(r.load),
        mode=r.mode,
        created_by=r.created_by,
        created_at=r.created_at,
        expires_at=r.expires_at,
        cleared_at=r.cleared_at,
        cleared_by=r.cleared_by,
        detected=r.detected,
        note=r.note,
    )
