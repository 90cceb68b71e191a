"""A plan made by the real planner and stored as the daemon stores it, for the plan page's tests."""

from __future__ import annotations

import json
import math
from datetime import datetime, time, timedelta
from typing import Any

from emsctl.config import Config
from emsctl.model import FORECAST_SLOT_S, Forecast, LoadStatus, Snapshot, State
from emsctl.plan_worker import PLAN_KEY, PlanWorker
from emsctl.planner.driver import Planner
from emsctl.store import Store

SLOTS_PER_DAY = 24 * 3600 // FORECAST_SLOT_S


def sunny_shape(peak_w: float, days: int = 2) -> tuple[float, ...]:
    """PV Wh per 15-minute slot: a half sine from 06:00 to 20:00 local time, each day."""
    slot_h = FORECAST_SLOT_S / 3600
    out = []
    for k in range(days * SLOTS_PER_DAY):
        k_day = k % SLOTS_PER_DAY
        sun = math.sin(math.pi * (k_day - 24) / 56) if 24 <= k_day < 80 else 0.0
        out.append(peak_w * sun * slot_h)
    return tuple(out)


def store_plan(
    store: Store, config: Config, made: datetime, *, soc_pct: float = 40.0, peak_w: float = 6800
) -> dict[str, Any]:
    """Plan at `made` (a sunny forecast from the local midnight before it) and store the plan
    under PLAN_KEY with `made` as its time, as the daemon's PlanWorker does; its JSON back."""
    tz = config.control.tz
    midnight = datetime.combine(made.astimezone(tz).date(), time(0), tzinfo=tz)
    forecast = Forecast(
        fetched_at=made,
        remaining_today_wh=0.0,
        slots_start=midnight,
        slot_wh=sunny_shape(peak_w),
    )
    statuses = {
        load: LoadStatus(load=load, state=State.OFF, since=made - timedelta(hours=6))
        for load in config.enabled_loads()
    }
    worker = PlanWorker(Planner(config), sink=store, synchronous=True)
    snapshot = Snapshot(at=made, soc_pct=soc_pct, forecast=forecast)
    worker.offer(made, snapshot, statuses, lambda: statuses)
    text = store.kv_get(PLAN_KEY)
    assert text is not None, worker.planner.failed
    plan: dict[str, Any] = json.loads(text)
    return plan


def store_measured(
    store: Store,
    now: datetime,
    *,
    hours: int = 6,
    every_min: int = 5,
    soc_end_pct: float = 40.0,
) -> None:
    """Samples of the `hours` before `now`: a bell of PV, the SOC rising 2.5 points an hour
    to `soc_end_pct` at the last sample (store_plan's SOC by default, so the measured line
    meets the plan's)."""
    last = hours * 60 - every_min
    for m in range(0, hours * 60, every_min):
        at = now - timedelta(minutes=hours * 60 - m)
        pv = 4000 * math.sin(math.pi * m / (hours * 60))
        soc = soc_end_pct - (last - m) / 24
        store.record_sample(at, Snapshot(at=at, pv_w=pv, grid_w=300 - pv, soc_pct=soc), {})
