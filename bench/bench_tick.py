"""Tick benchmark: collect (real Prometheus) + decide + actuate (Shelly emulators) + persist
(SQLite), p50/p99 over a few hundred ticks; then the resident memory of the owner's daemon
(`emsctl run` on the shipped config against loopback stand-ins, bench/owner_daemon.py) and,
for comparison, of `emsctl demo` after an hour of simulated ticks.

Needs the Debian `prometheus` package (as the integration tests do). Prints figures; the
targets (p99 <= 50 ms, RSS <= 80 MB) are reported, not enforced: machines here are shared.
`python bench/bench_tick.py rss` runs the memory part only; EMS_BENCH_RSS_S sets how long the
owner's daemon runs (150 s by default).
"""

from __future__ import annotations

import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICKS = int(os.environ.get("EMS_BENCH_TICKS", "300"))
RSS_S = float(os.environ.get("EMS_BENCH_RSS_S", "150"))
RSS_TARGET_MB = 80.0


def tick_latency() -> None:
    from emsctl.config import parse_config
    from emsctl.controller import Controller
    from emsctl.metrics import Metrics
    from emsctl.site import Site
    from emsctl.store import Store, StoreListener
    from emsctl.wiring import build_devices
    from tests.support.prometheus_server import HOUSE_METRICS, HouseExporter, PrometheusServer
    from tests.support.shelly_emulator import ShellyGen1Emulator, ShellyGen2Emulator

    binary = "/usr/bin/prometheus"
    if not os.path.exists(binary):
        print("tick: skipped, /usr/bin/prometheus not installed (apt-get install prometheus)")
        return
    exporter = HouseExporter()
    exporter.set_many(HOUSE_METRICS)
    exporter.set("pcc_transfer_power_exchange_value", -7000.0)
    exporter.set("ess_stateOfCharge_value", 95.0)
    prom = PrometheusServer(binary, [exporter.target])
    prom.start()
    prom.wait_for_generation(exporter.bump())
    emus = [ShellyGen1Emulator().start(), ShellyGen2Emulator(power_w=2000).start()]
    emus.append(
        ShellyGen2Emulator(model="SNSW-001X16EU", device_id="shellyplus1-112233445566").start()
    )
    tmp = tempfile.mkdtemp(prefix="ems-bench-")
    fast = {"on_delay_s": 1, "off_delay_s": 1, "min_on_s": 1}
    config = parse_config(
        {
            "control": {"interval_s": 1, "settle_s": 1, "max_age_s": 3600},
            "loads": {
                "sg_ready": {**fast, "device": {"type": "shelly_gen1", "host": emus[0].host}},
                "dhw": {"enabled": False},
                "wb_a": {**fast, "device": {"type": "shelly_gen2", "host": emus[1].host}},
                "wb_b": {**fast, "device": {"type": "shelly_gen2", "host": emus[2].host}},
            },
            "prometheus": {"url": prom.url},
            "store": {"path": f"{tmp}/ems.db"},
        }
    )
    store = Store.open(config.store.path)
    now = datetime.now(UTC)
    site = Site(config, now, listeners=[StoreListener(store)])
    ctl = Controller(config, site, build_devices(config, store), store=store, metrics=Metrics())
    durations: list[float] = []
    try:
        for i in range(TICKS):
            # Flip the export now and then so that loads really switch during the run.
            if i % 50 == 25:
                exporter.set("pcc_transfer_power_exchange_value", 3000.0 if i % 100 else -7000.0)
            t0 = time.perf_counter()
            ctl.tick()
            durations.append((time.perf_counter() - t0) * 1000.0)
        ui_line = _ticks_under_ui_load(config, store, ctl)
    finally:
        ctl.close()
        store.close()
        for e in emus:
            e.close()
        prom.close()
        exporter.close()
    durations.sort()
    p50 = statistics.median(durations)
    p99 = durations[int(len(durations) * 0.99) - 1]
    print(
        f"tick: {TICKS} ticks against real Prometheus + 3 Shelly emulators + SQLite: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {durations[-1]:.1f} ms (target p99 <= 50 ms)"
    )
    print(ui_line)


def _ticks_under_ui_load(config: Any, store: Any, ctl: Any) -> str:
    """The same controller with the web UI served on loopback: ticks without, then with, two
    clients requesting every page and API endpoint in a loop (separate processes)."""
    from bench.webui_load import compare
    from webui import create_app
    from webui.serve import serve

    # The request loop keeps the server's workers busy on purpose: waitress's "task queue
    # depth" warnings would only interleave with the figures.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    server = serve(create_app(config, store, ctl), "127.0.0.1", 0)
    server.start()
    try:
        quiet, loaded, loop = compare(ctl.tick, 100, server.url)
    finally:
        server.close()
    return (
        f"tick under web UI load: {quiet.line('quiet')} | {loaded.line('loaded')} "
        f"({loop.served} requests served alongside)"
    )


RSS_PLANNER_MB = 100.0


def rss_of_the_owners_daemon() -> None:
    """`emsctl run` as the owner runs it (bench/owner_daemon.py), sampled from /proc."""
    from bench.owner_daemon import INTERVAL_S, run_owner_daemon, unit_environment

    if not os.path.exists("/usr/bin/prometheus"):
        print("rss: skipped, /usr/bin/prometheus not installed (apt-get install prometheus)")
        return
    run = run_owner_daemon(RSS_S)
    env = " ".join(f"{k}={v}" for k, v in unit_environment().items())
    planned = run_owner_daemon(RSS_S, planner=True)
    print(
        f"rss: the same with the day-ahead planner on: {planned.last_mb:.1f} MB resident at "
        f"the end, max sampled {planned.max_mb:.1f} MB (target <= {RSS_PLANNER_MB:.0f} MB)"
    )
    print(
        f"rss: owner's daemon (emsctl run, shipped config, Viessmann + forecast + web UI + "
        f"metrics, 30 days of history, unit environment {env}) over {RSS_S:.0f} s of "
        f"{INTERVAL_S:.0f} s ticks: {run.last_mb:.1f} MB resident at the end, max sampled "
        f"{run.max_mb:.1f} MB, {run.at(10):.1f} MB 10 s after start (target <= "
        f"{RSS_TARGET_MB:.0f} MB)"
    )
    print(
        f"rss: peak (VmHWM) {run.peak_mb:.1f} MB: a web UI login checks the scrypt password "
        f"hash, which needs 32 MB for a moment; it is returned at once"
    )
    print(
        f"rss: exercised {run.ui_requests} web UI requests, {run.switches} load starts, "
        f"{run.token_refreshes} Viessmann token refreshes, {run.forecast_fetches} forecast "
        f"fetches" + (f"; UI errors: {run.ui_errors[:3]}" if run.ui_errors else "")
    )


def rss_of_the_demo() -> None:
    """`emsctl demo` (the daemon's code on the simulated house: store, metrics, web UI, plus
    the simulator's modules) over an hour of simulated one-minute ticks."""
    tmp = tempfile.mkdtemp(prefix="ems-bench-rss-")
    cmd = [
        sys.executable,
        "-m",
        "emsctl.cli",
        "--log-level",
        "WARNING",
        "demo",
        "--minutes",
        "60",
        "--speed",
        "0.05",
        "--db",
        f"{tmp}/ems.db",
    ]
    # A daemon that runs for years opens an existing database (a migration happens once, at
    # an upgrade): create it first, as the installation's first start would.
    subprocess.run(
        [sys.executable, "-m", "emsctl.cli", "db", "upgrade", "--db", f"{tmp}/ems.db"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[float] = []
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            samples.append(kb / 1024)
        except (OSError, StopIteration):
            pass
        time.sleep(0.2)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0 or not samples:
        print(f"rss: the demo failed (exit {proc.returncode}):\n{err[-2000:]}")
        return
    print(
        f"rss: emsctl demo (simulated house, no unit environment) after an hour of simulated "
        f"ticks: {samples[-1]:.1f} MB resident, max {max(samples):.1f} MB, in "
        f"{time.perf_counter() - t0:.1f} s (for comparison; it also loads the simulator)"
    )


def main(argv: list[str]) -> int:
    if "rss" not in argv:
        tick_latency()
    rss_of_the_owners_daemon()
    rss_of_the_demo()
    print(
        f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
