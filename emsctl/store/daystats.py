"""Statistics per load and local day in hand-written SQL (window functions, SQLite >= 3.25;
the same query runs in the `sqlite3` shell, docs/operations.md). Durations come from
julianday() differences, rounded to the millisecond (julianday is a double: 1800 s may come
out as 1799.99999).

- runtime: time in a state whose output is on (on, disarming, forced_on; manual when the
  transition recorded the relay on), clipped to the day;
- switch-ons: transitions into an output-on state from one that is not;
- short cycles: completed on-runs shorter than the load's min_on_s, counted on the day they began;
- energy: runtime x the mean power measured while the relay was on that day (samples with
  power), else runtime x nominal_w;
- stops: transitions leaving an output-on state, counted per event with the latest reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from emsctl.store.models import db_time
from emsctl.store.queries import _reasons
from emsctl.store.records import DayStats, StopReason


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What the statistics need to know of a load from the config."""

    load: str
    nominal_w: float
    min_on_s: float
    order: int = 0


@dataclass(frozen=True, slots=True)
class DayBounds:
    day: date
    start: datetime  # local midnight, as UTC
    end: datetime


def day_bounds(now: datetime, days: int, tz: ZoneInfo) -> list[DayBounds]:
    """The last `days` local days up to and including today, oldest first (DST-aware)."""
    today = now.astimezone(tz).date()
    out = []
    for i in range(days - 1, -1, -1):
        d = today - timedelta(days=i)
        start = datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(d + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        out.append(DayBounds(d, start, end))
    return out


# --------------------------------------------------------------------------- statistics

_STATS_CTE = """
WITH
loads(load, nominal_w, min_on_s, ord) AS (VALUES {loads}),
days(day, d0, d1) AS (VALUES {days}),
bound AS (
    SELECT l.load,
           coalesce((SELECT max(t2.at) FROM transitions t2
                     WHERE t2.load = l.load AND t2.at < :start), :start) AS b
    FROM loads l
),
tr AS (
    SELECT t.id, t.load, t.at, t.event, t.reasons,
           coalesce(t.output_on, 0) AS o,
           coalesce(LAG(coalesce(t.output_on, 0)) OVER w, 0) AS p,
           coalesce(LEAD(t.at) OVER w, max(:now, t.at)) AS stop,
           LEAD(t.at) OVER w IS NULL AS open_
    FROM transitions t JOIN bound ON bound.load = t.load
    WHERE t.at >= bound.b AND t.at < :end
    WINDOW w AS (PARTITION BY t.load ORDER BY t.at, t.id)
),
runs AS (
    SELECT tr.*,
           sum(CASE WHEN o = 1 AND p = 0 THEN 1 ELSE 0 END)
               OVER (PARTITION BY load ORDER BY at, id ROWS UNBOUNDED PRECEDING) AS run_no
    FROM tr
),
spans AS (
    SELECT load, run_no, min(at) AS r0, max(stop) AS r1, max(open_) AS open_
    FROM runs WHERE o = 1 GROUP BY load, run_no
)
"""

_STATS_MAIN = """,
runtime AS (
    SELECT d.day, tr.load,
           sum(max(0.0, (julianday(min(tr.stop, d.d1)) - julianday(max(tr.at, d.d0))) * 86400.0))
               AS runtime_s
    FROM tr JOIN days d ON tr.at < d.d1 AND tr.stop > d.d0
    WHERE tr.o = 1
    GROUP BY d.day, tr.load
),
starts AS (
    SELECT d.day, s.load, count(*) AS switch_ons,
           sum(CASE WHEN NOT s.open_
                     AND round((julianday(s.r1) - julianday(s.r0)) * 86400.0, 3) < l.min_on_s
                    THEN 1 ELSE 0 END) AS short_cycles
    FROM spans s
    JOIN days d ON s.r0 >= d.d0 AND s.r0 < d.d1
    JOIN loads l ON l.load = s.load
    GROUP BY d.day, s.load
),
power AS (
    SELECT d.day, sl.load, avg(sl.power_w) AS avg_w
    FROM samples s
    JOIN sample_loads sl ON sl.sample_id = s.id
    JOIN days d ON s.at >= d.d0 AND s.at < d.d1
    WHERE sl.output_on = 1 AND sl.power_w IS NOT NULL AND sl.load IN (SELECT load FROM loads)
    GROUP BY d.day, sl.load
)
SELECT d.day, l.load, coalesce(r.runtime_s, 0.0) AS runtime_s,
       coalesce(st.switch_ons, 0) AS switch_ons, coalesce(st.short_cycles, 0) AS short_cycles,
       coalesce(r.runtime_s, 0.0) * l.nominal_w / 3600.0 AS estimated_wh,
       coalesce(r.runtime_s, 0.0) * pw.avg_w / 3600.0 AS measured_wh
FROM days d CROSS JOIN loads l
LEFT JOIN runtime r ON r.day = d.day AND r.load = l.load
LEFT JOIN starts st ON st.day = d.day AND st.load = l.load
LEFT JOIN power pw ON pw.day = d.day AND pw.load = l.load
ORDER BY d.day, l.ord
"""

_STATS_STOPS = """
SELECT d.day, tr.load, tr.event, count(*) AS n, max(tr.at) AS last_at, tr.reasons
FROM tr JOIN days d ON tr.at >= d.d0 AND tr.at < d.d1
WHERE tr.o = 0 AND tr.p = 1
GROUP BY d.day, tr.load, tr.event
ORDER BY d.day, tr.load, n DESC, tr.event
"""


def day_stats(
    conn: Connection,
    bounds: Sequence[DayBounds],
    loads: Sequence[LoadSpec],
    *,
    now: datetime,
) -> list[DayStats]:
    if not bounds or not loads:
        return []
    params: dict[str, Any] = {
        "start": db_time(bounds[0].start),
        "end": db_time(bounds[-1].end),
        "now": db_time(now),
    }
    load_marks = []
    for i, spec in enumerate(loads):
        load_marks.append(f"(:l{i}, :n{i}, :m{i}, :o{i})")
        params |= {f"l{i}": spec.load, f"n{i}": spec.nominal_w, f"m{i}": spec.min_on_s}
        params[f"o{i}"] = spec.order
    day_marks = []
    for i, b in enumerate(bounds):
        day_marks.append(f"(:day{i}, :d0_{i}, :d1_{i})")
        params |= {f"day{i}": b.day.isoformat(), f"d0_{i}": db_time(b.start)}
        params[f"d1_{i}"] = db_time(b.end)
    cte = _STATS_CTE.format(loads=", ".join(load_marks), days=", ".join(day_marks))

    stops: dict[tuple[str, str], list[StopReason]] = {}
    for day, load, event, n, _last, reasons in conn.execute(text(cte + _STATS_STOPS), params):
        stops.setdefault((day, load), []).append(StopReason(event, int(n), _reasons(reasons)))
    out = []
    for r in conn.execute(text(cte + _STATS_MAIN), params).mappings():
        measured = r["measured_wh"]
        out.append(
            DayStats(
                day=date.fromisoformat(r["day"]),
                load=r["load"],
                runtime_s=round(float(r["runtime_s"]), 1),
                energy_wh=float(measured if measured is not None else r["estimated_wh"]),
                energy_measured=measured is not None,
                switch_ons=int(r["switch_ons"]),
                short_cycles=int(r["short_cycles"]),
                stops=tuple(stops.get((r["day"], r["load"]), ())),
            )
        )
    return out
