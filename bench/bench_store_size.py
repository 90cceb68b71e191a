"""Store size benchmark: the database after a simulated year at the default retention.

The real Site (engine + machines) runs the year scenario on the simulated house, as the replay
benchmark does; its transitions, the commands they cause, one sample per minute (pruned hourly
like the daemon, 30 days kept), hourly cached forecasts, kv updates and a few overrides a week
go through the Store's own write functions into a real SQLite file. Prints the file size, the
rows and bytes per table and the tick-write latency with the daemon's settings
(synchronous=FULL). Exit status 1 when the file exceeds 50 MB (docs/performance.md).

A full year takes about 3.5 minutes on this machine's 2 cores (17 s replay, the rest writes
through the same functions the daemon uses); `--days 30` is a quick look.
Measured with the house's config: 14.4 MB after 365 days (5,911 transitions, 2,260 commands,
43,201 samples kept).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event

from emsctl.config import Config, load_config
from emsctl.model import (
    OUTPUT_ON,
    LoadId,
    LoadReading,
    LoadStatus,
    Mode,
    Snapshot,
    State,
    Transition,
)
from emsctl.sim.runner import Trace, run_ems
from emsctl.sim.scenario import read_scenario
from emsctl.store import Store

ROOT = Path(__file__).resolve().parents[1]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
HOUSE_CONFIG = ROOT / "configs" / "ems-config.yaml"
FORECAST = ROOT / "tests" / "fixtures" / "forecast_solar" / "estimate_public_response.json"
TARGET_MB = 50.0
PRUNE_EVERY = timedelta(hours=1)


def fast_writes(store: Store) -> None:
    """synchronous=OFF for the bulk year (the file's size does not depend on it)."""
    store.engine.dispose()
    event.listen(store.engine, "connect", lambda c, _r: c.execute("PRAGMA synchronous = OFF"))


class States:
    """Each load's state at any minute, from the run's transitions."""

    def __init__(self, transitions: list[Transition], start: datetime) -> None:
        self.times: dict[LoadId, list[datetime]] = {x: [] for x in LoadId}
        self.states: dict[LoadId, list[tuple[State, datetime]]] = {x: [] for x in LoadId}
        for t in transitions:
            self.times[t.load].append(t.at)
            self.states[t.load].append((t.target, t.at))
        self.start = start

    def at(self, load: LoadId, when: datetime) -> tuple[State, datetime]:
        i = bisect.bisect_right(self.times[load], when) - 1
        return self.states[load][i] if i >= 0 else (State.OFF, self.start)


def minutes(first: datetime, count: int) -> Iterator[tuple[int, datetime]]:
    for i in range(count):
        yield i, first + timedelta(minutes=i)


def simulate(store: Store, config: Config, days: int) -> dict[str, float]:
    scenario = read_scenario(YEAR)
    count = min(scenario.minutes, days * 1440)
    t0 = time.perf_counter()
    trace = Trace(0, count)
    run = run_ems(scenario, config, trace=trace)
    transitions = [t for t in run.transitions if t.at < scenario.start + timedelta(minutes=count)]
    replay_s = time.perf_counter() - t0
    states = States(transitions, scenario.start)
    outdoor = scenario.values["outdoor_c"]
    payload = FORECAST.read_text(encoding="utf-8")
    by_minute: dict[datetime, list[Transition]] = {}
    for t in transitions:
        by_minute.setdefault(t.at, []).append(t)

    fast_writes(store)
    t0 = time.perf_counter()
    last_prune = scenario.start
    commands = overrides = 0
    for i, now in minutes(scenario.start + timedelta(minutes=1), count):
        tick = by_minute.get(now, [])
        if tick:
            store.record_transitions(tick)
            for t in tick:
                if (t.source in OUTPUT_ON) != (t.target in OUTPUT_ON):
                    store.record_command(t.load, t.target in OUTPUT_ON, "; ".join(t.reasons),
                                         True, None, 0.12, now)  # fmt: skip
                    commands += 1
        pv, grid, soc = trace.pv_w[i], trace.grid_w[i], trace.soc_pct[i]
        battery = pv + grid - trace.consumption_w[i]
        sg_draw = trace.draws[LoadId.SG_READY][i]
        snap = Snapshot(
            at=now,
            grid_w=grid,
            soc_pct=soc,
            pv_w=pv,
            battery_w=battery,
            compressor_w=1950.0 + (i % 97) if sg_draw or trace.draws[LoadId.DHW][i] else 0.0,
            outdoor_c=outdoor[i] if not math.isnan(outdoor[i]) else None,
            dhw_c=47.0 + (i % 113) / 10.0,
        )
        statuses = {}
        for load in LoadId:
            state, since = states.at(load, now)
            on = bool(trace.outputs[load][i])
            power = (1980.0 + i % 37) if load is LoadId.WB_A and trace.draws[load][i] else None
            if load is LoadId.WB_A and power is None:
                power = 0.0
            statuses[load] = LoadStatus(
                load, state, since, reading=LoadReading(relay_on=on, power_w=power)
            )
        store.record_sample(now, snap, statuses, surplus_w=-grid + max(battery, 0.0))
        if i % 5 == 0:
            store.kv_put("viessmann.budget", json.dumps({"calls": i % 300, "day": i // 1440}), now)
        if i % 60 == 0:
            store.put_forecast("forecast.solar:49.0,8.4", now, payload)
        if i % (3 * 1440) == 17:  # a failed dead-man renewal now and then
            store.record_command(LoadId.WB_A, True, "renew", False, "timeout after 5 s", 5.0, now,
                                 renew=True)  # fmt: skip
        if i % (7 * 1440) == 600:  # the owner forces a wallbox on about once a week
            store.add_override(LoadId.WB_B, Mode.FORCE_ON, "ui:owner", now,
                               now + timedelta(hours=4))  # fmt: skip
            overrides += 1
        if i % (30 * 1440) == 900:
            store.add_override(LoadId.WB_A, "manual", "device", now, now + timedelta(hours=4),
                               detected=True)  # fmt: skip
            overrides += 1
        if now - last_prune >= PRUNE_EVERY:
            store.prune(now)
            last_prune = now
    return {
        "days": count / 1440,
        "replay_s": replay_s,
        "write_s": time.perf_counter() - t0,
        "transitions": len(transitions),
        "commands": commands,
        "overrides": overrides,
        "failures": store.failures,
    }


def tick_latency(path: Path, config: Config, ticks: int = 600) -> tuple[float, float]:
    """p50/p99 in ms of one tick's writes (sample, sometimes a transition) at FULL sync."""
    with Store.open(path, retention_days=config.store.retention_days) as store:
        with store.engine.connect() as conn:
            last = conn.exec_driver_sql("SELECT max(at) FROM samples").scalar()
        now = datetime.fromisoformat(str(last)).replace(tzinfo=UTC)
        times = []
        statuses = {x: LoadStatus(x, State.OFF, now) for x in LoadId}
        for i in range(ticks):
            now += timedelta(minutes=1)
            snap = Snapshot(at=now, grid_w=-1200.0 - i, soc_pct=71.5, pv_w=3500.0 + i)
            t0 = time.perf_counter()
            if i % 10 == 0:
                store.record_transitions(
                    [Transition(now, LoadId.WB_A, State.OFF, State.ARMING, "arm", ("bench",))]
                )
            store.record_sample(now, snap, statuses)
            times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def table_sizes(path: Path) -> list[tuple[str, int, int]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        try:
            pages = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        except sqlite3.OperationalError:  # SQLite built without dbstat
            pages = {}
        out = []
        for name in tables:
            n = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            indexes = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                    (name,),
                )
            ]
            size = pages.get(name, 0) + sum(pages.get(ix, 0) for ix in indexes)
            out.append((name, n, size))
        return out
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365, help="days to simulate (default 365)")
    ap.add_argument("--config", type=Path, default=HOUSE_CONFIG)
    ap.add_argument("--keep", type=Path, help="write the database here and keep it")
    args = ap.parse_args(argv)
    config = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="ems-bench-") as tmp:
        path = args.keep or Path(tmp) / "ems.db"
        with Store.open(path, retention_days=config.store.retention_days) as store:
            figures = simulate(store, config, args.days)
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        size_mb = path.stat().st_size / 1e6
        sizes = table_sizes(path)
        p50, p99 = tick_latency(path, config)
    print(
        f"simulated {figures['days']:.0f} days: {figures['transitions']} transitions, "
        f"{figures['commands']} commands, {figures['overrides']} overrides "
        f"(replay {figures['replay_s']:.1f} s, writes {figures['write_s']:.1f} s, "
        f"{figures['failures']:.0f} write failures)"
    )
    print(f"retention {config.store.retention_days} days")
    for name, rows, size in sizes:
        shown = f"{size / 1e6:7.2f} MB" if size else "      n/a"
        print(f"  {name:16s} {rows:9d} rows {shown}")
    print(f"tick writes at synchronous=FULL: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    verdict = "ok" if size_mb <= TARGET_MB else "OVER TARGET"
    print(f"store size after a simulated year: {size_mb:.1f} MB (target <= {TARGET_MB:.0f} MB): "
          f"{verdict}")  # fmt: skip
    return 0 if size_mb <= TARGET_MB and figures["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
