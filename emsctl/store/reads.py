"""The read side for the pages and the CLI: history, chart samples, commands, daily stats and
the span of the database (queries raise SQLAlchemyError; the callers report it)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Row, func, select

from emsctl import clock
from emsctl.config import Config
from emsctl.model import (
    OUTPUT_ON,
    LoadId,
)
from emsctl.store import daystats, queries
from emsctl.store.base import StoreBase
from emsctl.store.models import (
    samples_table,
    transitions_table,
)
from emsctl.store.records import (
    CommandRecord,
    DayStats,
    HistoryRow,
    SampleRecord,
)

log = logging.getLogger(__name__)


class ReadsPort(Protocol):
    """What the web UI and the CLI read (the UI: history and samples)."""

    def history(
        self,
        load: LoadId | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        now: datetime | None = None,
    ) -> list[HistoryRow]: ...

    def samples(self, since: datetime, until: datetime | None = None) -> list[SampleRecord]: ...

    def commands(
        self,
        load: LoadId | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[CommandRecord]: ...

    def stats(
        self,
        days: int = 7,
        config: Config | None = None,
        now: datetime | None = None,
        load: LoadId | None = None,
        data_until: datetime | None = None,
    ) -> list[DayStats]: ...

    def span(self) -> tuple[datetime, datetime] | None: ...


class Reads(StoreBase):
    """History, samples, commands, stats (see ReadsPort)."""

    def history(
        self,
        load: LoadId | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        now: datetime | None = None,
    ) -> list[HistoryRow]:
        """Transitions and overrides merged, newest first."""
        with self.engine.connect() as conn:
            return queries.history(
                conn,
                load=None if load is None else str(load),
                since=since,
                until=until,
                limit=limit,
                offset=offset,
                now=now or clock.now(),
            )

    def samples(self, since: datetime, until: datetime | None = None) -> list[SampleRecord]:
        """Ticks in [since, until), oldest first (the UI's 24 h chart)."""
        with self.engine.connect() as conn:
            return queries.samples(conn, since, until)

    def commands(
        self,
        load: LoadId | str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[CommandRecord]:
        with self.engine.connect() as conn:
            return queries.commands(conn, None if load is None else str(load), since, limit)

    def stats(
        self,
        days: int = 7,
        config: Config | None = None,
        now: datetime | None = None,
        load: LoadId | str | None = None,
        data_until: datetime | None = None,
    ) -> list[DayStats]:
        """Per load and local day (config's time zone): runtime, energy, switch-ons, short
        cycles, why it stopped. The last `days` days, today included. A run still open at the
        end counts until `now`, or until `data_until` when the database ends earlier (a copy,
        a demo's database, a daemon that stopped): nothing is known after that."""
        cfg = config or Config()
        at = now or clock.now()
        open_until = at if data_until is None else min(at, data_until)
        specs = [
            daystats.LoadSpec(
                str(x), cfg.loads.get(x).nominal_w, cfg.loads.get(x).min_on_s, order=i
            )
            for i, x in enumerate(cfg.control.priority)
            if load is None or str(x) == str(load)
        ]
        bounds = daystats.day_bounds(at, days, cfg.control.tz)
        with self.engine.connect() as conn:
            return daystats.day_stats(conn, bounds, specs, now=open_until)

    def span(self) -> tuple[datetime, datetime] | None:
        """The first and the last time the database holds anything for (None: empty)."""
        lo: list[datetime] = []
        hi: list[datetime] = []
        with self.engine.connect() as conn:
            for col in (transitions_table.c.at, samples_table.c.at):
                first, last = conn.execute(select(func.min(col), func.max(col))).one()
                if first is not None:
                    lo.append(first)
                    hi.append(last)
        return (min(lo), max(hi)) if lo else None

    def _last_transitions(self) -> dict[str, Row[Any]]:
        t = transitions_table.c
        with self.engine.connect() as conn:
            last = select(func.max(t.id)).group_by(t.load)
            rows = conn.execute(select(transitions_table).where(t.id.in_(last))).all()
        return {r.load: r for r in rows}

    def _transitions_of(self, load: str, after_id: int = 0) -> list[Row[Any]]:
        t = transitions_table.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(transitions_table).where(t.load == load, t.id > after_id).order_by(t.id)
                ).all()
            )

    def consumption_since(self, since: datetime) -> list[tuple[datetime, float]]:
        """The house's total consumption per sample from `since` on (the planner's profile)."""
        with self.engine.connect() as conn:
            return queries.consumption(conn, since)

    def _starts_since(self, load: str, since: datetime) -> int:
        """The rules' starts of the load from `since` on (rule 18's count after a restart)."""
        with self.engine.connect() as conn:
            return queries.starts_since(conn, load, since)

    def _run_edge(self, load: str, *, start: bool) -> datetime | None:
        """When the load's latest run began (start) or ended, as the machines count runs."""
        with self.engine.connect() as conn:
            return queries.run_edge(conn, load, [str(s) for s in OUTPUT_ON], start=start)
