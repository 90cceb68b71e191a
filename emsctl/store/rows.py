"""How the tick log's records become rows: transitions, commands and chart samples as the
tables hold them (whole watts, one decimal, compact JSON measurements). No database here."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from emsctl.model import MEASUREMENTS, OUTPUT_ON, LoadId, LoadStatus, Snapshot, State, Transition
from emsctl.store.models import (
    commands_table,
    sample_loads_table,
    samples_table,
    transitions_table,
)

#: Measurements whose unit is watts: stored as whole watts (compact in SQLite).
WATTS = frozenset({*(m for m in MEASUREMENTS if m.endswith("_w")), "surplus_w", "power_w"})
#: Keys a transition's measurements may use to say whether a manual output is on.
OUTPUT_KEYS = ("relay_on", "output_on")

# Statements built once: the tick's writes reuse them.
INSERT_TRANSITION = insert(transitions_table)
INSERT_COMMAND = insert(commands_table)
INSERT_SAMPLE = insert(samples_table)
INSERT_SAMPLE_LOAD = insert(sample_loads_table)


def compact(values: Mapping[str, float | None]) -> str | None:
    """Measurements as short JSON: missing and non-finite values are left out."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if value is None or isinstance(value, bool):
            continue
        v = float(value)
        if math.isfinite(v):
            out[key] = round(v, 1)
    return json.dumps(out, separators=(",", ":")) if out else None


def output_on(t: Transition) -> bool | None:
    """Whether the load's output is on after the transition (None: not known)."""
    if t.target in OUTPUT_ON:
        return True
    if t.target is State.MANUAL:
        for key in OUTPUT_KEYS:
            value = t.measurements.get(key)
            if value is not None:
                return bool(value)
        return None
    if t.target is State.UNAVAILABLE:
        return None
    return False


def transition_row(t: Transition) -> dict[str, Any]:
    """The transitions table's row; ValueError for a naive time (the store needs UTC)."""
    if t.at.tzinfo is None:
        raise ValueError(f"naive datetime {t.at.isoformat()} (the store needs aware UTC)")
    return {
        "at": t.at,
        "load": str(t.load),
        "source": str(t.source),
        "target": str(t.target),
        "event": str(t.event),
        "reasons": json.dumps(list(t.reasons), ensure_ascii=False),
        "output_on": output_on(t),
        "measurements": compact(t.measurements),
        # Kept for a state's planned end; transitions do not carry one (yet).
        "until": None,
    }


def command_row(
    load: LoadId,
    on: bool,
    reason: str,
    ok: bool,
    error: str | None,
    latency_s: float | None,
    at: datetime,
    dry_run: bool,
    renew: bool,
) -> dict[str, Any]:
    return {
        "at": at,
        "load": str(load),
        "on": on,
        "reason": reason,
        "ok": ok,
        "error": error,
        "latency_ms": None if latency_s is None else round(latency_s * 1000.0, 1),
        "dry_run": dry_run,
        "renew": renew,
    }


def rounded(name: str, value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(round(value)) if name in WATTS else round(value, 1)


def sample_rows(
    at: datetime,
    snapshot: Snapshot,
    statuses: Mapping[LoadId, LoadStatus],
    surplus_w: float | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The samples row and its sample_loads rows (their sample_id is set on insert)."""
    values: dict[str, Any] = {name: rounded(name, getattr(snapshot, name)) for name in MEASUREMENTS}
    values["at"] = at
    values["surplus_w"] = rounded("surplus_w", surplus_w)
    loads = [
        {
            "load": str(load),
            "state": str(status.state),
            "output_on": status.reading.relay_on,
            "power_w": rounded("power_w", status.reading.power_w),
        }
        for load, status in statuses.items()
    ]
    return values, loads


def insert_sample(conn: Connection, values: dict[str, Any], loads: list[dict[str, Any]]) -> None:
    key = conn.execute(INSERT_SAMPLE, values).inserted_primary_key
    if key is None:  # pragma: no cover - SQLite always reports the rowid
        raise RuntimeError("no id for the new sample")
    if loads:
        conn.execute(INSERT_SAMPLE_LOAD, [{**row, "sample_id": key[0]} for row in loads])
