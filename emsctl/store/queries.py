"""The owner's questions as SQL: history, chart samples, commands (per-day statistics are in
daystats.py).

Hand-written SQL (window functions, SQLite >= 3.25) over the tables of models.py, so the same
queries can be run in the `sqlite3` shell (docs/operations.md). Times are compared as the text
UtcDateTime stores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, text

from emsctl.model import MEASUREMENTS
from emsctl.store.models import db_time, from_db_time
from emsctl.store.records import (
    CommandRecord,
    HistoryRow,
    LoadSample,
    SampleRecord,
)


def _reasons(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        return (raw,)
    return tuple(str(x) for x in value) if isinstance(value, list) else (str(value),)


def _measurements(raw: str | None) -> dict[str, float | None]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return dict(value) if isinstance(value, dict) else {}


# --------------------------------------------------------------------------- history

_HISTORY = """
SELECT * FROM (
    SELECT t.at AS at, t.load AS load, 'transition' AS kind, t.source AS source,
           t.target AS target, t.event AS event, t.reasons AS reasons, NULL AS by_,
           t.measurements AS measurements, NULL AS expires_at, NULL AS note, 0 AS detected,
           t.id AS ref
    FROM transitions t
    WHERE (:load IS NULL OR t.load = :load) AND (:since IS NULL OR t.at >= :since)
      AND (:until IS NULL OR t.at < :until)
    UNION ALL
    SELECT o.created_at, o.load, 'override', NULL, o.mode,
           CASE WHEN o.detected THEN 'detected' ELSE 'set' END, NULL, o.created_by, NULL,
           o.expires_at, o.note, o.detected, o.id
    FROM overrides o
    WHERE (:load IS NULL OR o.load = :load) AND (:since IS NULL OR o.created_at >= :since)
      AND (:until IS NULL OR o.created_at < :until)
    UNION ALL
    SELECT o.cleared_at, o.load, 'override_cleared', NULL, o.mode, 'cleared', NULL,
           o.cleared_by, NULL, o.expires_at, o.note, o.detected, o.id
    FROM overrides o
    WHERE o.cleared_at IS NOT NULL
      AND (:load IS NULL OR o.load = :load) AND (:since IS NULL OR o.cleared_at >= :since)
      AND (:until IS NULL OR o.cleared_at < :until)
    UNION ALL
    SELECT o.expires_at, o.load, 'override_expired', NULL, o.mode, 'expired', NULL, NULL,
           NULL, o.expires_at, o.note, o.detected, o.id
    FROM overrides o
    WHERE o.expires_at IS NOT NULL AND o.expires_at <= :now
      AND (o.cleared_at IS NULL OR o.cleared_at > o.expires_at)
      AND (:load IS NULL OR o.load = :load) AND (:since IS NULL OR o.expires_at >= :since)
      AND (:until IS NULL OR o.expires_at < :until)
)
ORDER BY at DESC, ref DESC
LIMIT :limit OFFSET :offset
"""


def history(
    conn: Connection,
    *,
    load: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    now: datetime,
) -> list[HistoryRow]:
    params = {
        "load": load,
        "since": None if since is None else db_time(since),
        "until": None if until is None else db_time(until),
        "now": db_time(now),
        "limit": max(0, int(limit)),
        "offset": max(0, int(offset)),
    }
    out: list[HistoryRow] = []
    for r in conn.execute(text(_HISTORY), params).mappings():
        at = from_db_time(r["at"])
        assert at is not None
        if r["kind"] == "transition":
            reasons = _reasons(r["reasons"])
        else:
            expires = from_db_time(r["expires_at"])
            span = "until released" if expires is None else f"until {expires.isoformat()}"
            reasons = (span,) if r["kind"] == "override" else ()
            if r["note"]:
                reasons = (*reasons, str(r["note"]))
        out.append(
            HistoryRow(
                at=at,
                load=r["load"],
                kind=r["kind"],
                source=r["source"],
                target=r["target"],
                event=r["event"],
                reasons=reasons,
                by=r["by_"],
                measurements=_measurements(r["measurements"]),
            )
        )
    return out


# --------------------------------------------------------------------------- samples, commands


#: The measurements of a sample, in the order of the samples table's columns.
SAMPLE_VALUES: tuple[str, ...] = (*MEASUREMENTS, "surplus_w")


class SampleValues(Mapping[str, float | None]):
    """One sample's measurements, read from its row. The names are shared by every sample
    instead of a dict apiece: the chart asks for a day of samples (1,440 at one a minute),
    and what a request holds at its peak the daemon keeps (docs/performance.md, "Memory")."""

    __slots__ = ("_row",)
    _index: ClassVar[dict[str, int]] = {name: i for i, name in enumerate(SAMPLE_VALUES)}

    def __init__(self, row: Sequence[float | None]) -> None:
        self._row = tuple(row)

    def __getitem__(self, key: str) -> float | None:
        return self._row[self._index[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(SAMPLE_VALUES)

    def __len__(self) -> int:
        return len(SAMPLE_VALUES)

    def __repr__(self) -> str:
        return repr(dict(self))


def samples(conn: Connection, since: datetime, until: datetime | None) -> list[SampleRecord]:
    """Samples in [since, until), oldest first.

    Rows are read as they come, not all at once. A load's state is mostly the same from one
    minute to the next, so equal LoadSamples, and equal sets of them, are one shared object:
    a day's samples take about a third of the memory of a copy apiece.
    """
    window = {"since": db_time(since), "until": None if until is None else db_time(until)}
    states: dict[tuple[str, str, int | None, float | None], LoadSample] = {}
    sets: dict[frozenset[tuple[str, LoadSample]], Mapping[str, LoadSample]] = {}
    loads: dict[int, Mapping[str, LoadSample]] = {}
    current: tuple[int, dict[str, LoadSample]] | None = None
    for sid, load, state, output_on, power_w in conn.execute(
        text(
            # Driven by the samples' time index (ordering by sample_loads' key instead would
            # scan all of sample_loads); one sample's loads come together.
            "SELECT l.sample_id, l.load, l.state, l.output_on, l.power_w FROM samples s "
            "JOIN sample_loads l ON l.sample_id = s.id "
            "WHERE s.at >= :since AND (:until IS NULL OR s.at < :until) "
            "ORDER BY s.at, s.id, l.load"
        ),
        window,
    ):
        if current is None or current[0] != sid:
            if current is not None:
                loads[current[0]] = sets.setdefault(frozenset(current[1].items()), current[1])
            current = (sid, {})
        key = (load, state, output_on, power_w)
        ls = states.get(key)
        if ls is None:
            on = None if output_on is None else bool(output_on)
            ls = states[key] = LoadSample(state=state, output_on=on, power_w=power_w)
        current[1][key[0]] = ls
    if current is not None:
        loads[current[0]] = sets.setdefault(frozenset(current[1].items()), current[1])
    cols = ", ".join(f"s.{m}" for m in SAMPLE_VALUES)
    none: Mapping[str, LoadSample] = {}
    out = []
    for row in conn.execute(
        text(
            f"SELECT s.id, s.at, {cols} FROM samples s "
            "WHERE s.at >= :since AND (:until IS NULL OR s.at < :until) ORDER BY s.at, s.id"
        ),
        window,
    ):
        at = from_db_time(row[1])
        assert at is not None
        out.append(SampleRecord(at=at, values=SampleValues(row[2:]), loads=loads.get(row[0], none)))
    return out


def commands(
    conn: Connection, load: str | None, since: datetime | None, limit: int
) -> list[CommandRecord]:
    rows = conn.execute(
        text(
            'SELECT at, load, "on", reason, ok, error, latency_ms, dry_run, renew FROM commands '
            "WHERE (:load IS NULL OR load = :load) AND (:since IS NULL OR at >= :since) "
            "ORDER BY at DESC, id DESC LIMIT :limit"
        ),
        {"load": load, "since": None if since is None else db_time(since), "limit": limit},
    ).all()
    out = []
    for at, ld, on, reason, ok, error, latency_ms, dry_run, renew in rows:
        when = from_db_time(at)
        assert when is not None
        out.append(
            CommandRecord(
                at=when,
                load=ld,
                on=bool(on),
                reason=reason,
                ok=bool(ok),
                error=error,
                latency_s=None if latency_ms is None else latency_ms / 1000.0,
                dry_run=bool(dry_run),
                renew=bool(renew),
            )
        )
    return out


# --------------------------------------------------------------------------- restore helpers


def run_edge(
    conn: Connection, load: str, running_states: Sequence[str], *, start: bool
) -> datetime | None:
    """When the load last entered (start) or left a running state from/to another one."""
    marks = ", ".join(f":s{i}" for i in range(len(running_states)))
    params: dict[str, Any] = {f"s{i}": s for i, s in enumerate(running_states)}
    params["load"] = load
    params["o"] = 1 if start else 0
    value = conn.execute(
        text(
            f"""
            SELECT max(at) FROM (
                SELECT at, target IN ({marks}) AS o,
                       coalesce(LAG(target IN ({marks})) OVER (ORDER BY id), 0) AS p
                FROM transitions WHERE load = :load
            ) WHERE o = :o AND p = 1 - :o
            """
        ),
        params,
    ).scalar_one_or_none()
    return from_db_time(value)


def starts_since(conn: Connection, load: str, since: datetime) -> int:
    """How often the rules started the load (event start) at or after `since` (rule 18)."""
    value = conn.execute(
        text(
            "SELECT count(*) FROM transitions "
            "WHERE load = :load AND event = 'start' AND at >= :since"
        ),
        {"load": load, "since": db_time(since)},
    ).scalar_one()
    return int(value)


def consumption(conn: Connection, since: datetime) -> list[tuple[datetime, float]]:
    """The house's total consumption (pv + grid - battery) of every sample from `since` on
    that has all three, oldest first (the planner's load profile, rule 19)."""
    rows = conn.execute(
        text(
            "SELECT at, pv_w + grid_w - battery_w FROM samples WHERE at >= :since "
            "AND pv_w IS NOT NULL AND grid_w IS NOT NULL AND battery_w IS NOT NULL ORDER BY at"
        ),
        {"since": db_time(since)},
    )
    out: list[tuple[datetime, float]] = []
    for at, w in rows:
        t = from_db_time(at)
        if t is not None:
            out.append((t, float(w)))
    return out
