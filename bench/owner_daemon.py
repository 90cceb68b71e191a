"""The owner's daemon for the memory benchmark: `emsctl run` on configs/ems-config.yaml, every
device and service replaced by its loopback stand-in, sampled from /proc while it runs.

What runs is what the owner runs: the shipped config with Viessmann DHW and the forecast
enabled, the web UI (with a password) and the metrics exporter on, the unit's Environment=
settings (deploy/ems.service), and a database holding the retention's 30 days of history.
Around it: a real Prometheus scraping the house's metrics, three Shelly emulators (passwords,
as in the house), the Viessmann IAM/API emulator with a login whose access token has already
expired (the first call refreshes it) and the forecast.solar emulator. A browser stand-in logs
in and keeps the status and history pages open; /metrics is scraped like Prometheus would.

Only the control timing differs: ticks every 20 s and delays of one tick, so that loads switch
within a short run. 20 s, not 1 s: with one sample a minute in the filled history the chart
then merges a load's runs as it does for the owner's 60 s ticks; at 1 s it would draw every
sample of the day as a run of its own, a page the owner never sees.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
HOUSE_CONFIG = ROOT / "configs" / "ems-config.yaml"
UNIT = ROOT / "deploy" / "ems.service"
INTERVAL_S = 20.0
SHELLY_PASSWORD = "wallbox-secret"
UI_PASSWORD = "hallway-phone-42"
#: What a browser with the status page open asks for, then the history page now and then.
UI_PATHS = ("/", "/partials/status", "/api/status", "/history", "/api/history?limit=100")
HISTORY_DAYS = 30


@dataclass
class RssRun:
    """VmRSS samples of one run (MB) and what the process reported at its end."""

    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    peak_mb: float = 0.0  # VmHWM: includes brief peaks the sampling misses
    ui_requests: int = 0
    ui_errors: list[str] = field(default_factory=list)
    token_refreshes: int = 0
    forecast_fetches: int = 0
    switches: int = 0
    log_tail: str = ""

    @property
    def last_mb(self) -> float:
        return self.samples[-1][1]

    @property
    def max_mb(self) -> float:
        return max(mb for _, mb in self.samples)

    def at(self, seconds: float) -> float:
        """The first sample taken at or after `seconds` into the run."""
        return next((mb for t, mb in self.samples if t >= seconds), self.last_mb)


def unit_environment(unit: Path = UNIT) -> dict[str, str]:
    """The Environment= assignments of the systemd unit (EMS_CONFIG aside)."""
    env: dict[str, str] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"Environment=(\w+)=(.*)", line.strip())
        if m and m.group(1) != "EMS_CONFIG":
            env[m.group(1)] = m.group(2)
    return env


def _status(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
    return kb / 1024


def house_config(
    tmp: Path, hosts: dict[str, str], urls: dict[str, Any], *, planner: bool = False
) -> dict[str, Any]:
    """The shipped config, pointed at the stand-ins; timing shortened as the module says;
    with the day-ahead planner on when `planner`."""
    cfg: dict[str, Any] = yaml.safe_load(HOUSE_CONFIG.read_text(encoding="utf-8"))
    if planner:
        cfg.setdefault("planner", {})["enabled"] = True
    cfg["control"].update(
        interval_s=INTERVAL_S, settle_s=INTERVAL_S, max_age_s=10 * INTERVAL_S, failsafe_after_s=60
    )
    for load, lc in cfg["loads"].items():
        lc.update(on_delay_s=INTERVAL_S, off_delay_s=INTERVAL_S, min_on_s=INTERVAL_S)
        if "min_off_s" in lc:
            lc["min_off_s"] = 0
        if load in hosts:
            lc["device"]["host"] = hosts[load]
    cfg["prometheus"]["url"] = urls["prometheus"]
    cfg["viessmann"].update(urls["viessmann"])
    cfg["forecast"].update(url=urls["forecast"], jitter_s=0)
    cfg["store"]["path"] = str(tmp / "ems.db")
    cfg["webui"].update(bind="127.0.0.1", port=urls["webui_port"], password_hash=urls["hash"])
    cfg["metrics"].update(bind="127.0.0.1", port=urls["metrics_port"])
    return cfg


def fill_history(config_path: Path, days: int = HISTORY_DAYS) -> None:
    """`days` of history ending now, through the Store's own writes: a sample a minute, about
    35 transitions a day with their commands, a forced wallbox now and then (what
    bench_store_size.py measured for the house: 12,848 transitions a year)."""
    from sqlalchemy import event

    from emsctl import clock
    from emsctl.config import load_config
    from emsctl.model import LoadId, LoadReading, LoadStatus, Mode, Snapshot, State, Transition
    from emsctl.store import Store

    cfg = load_config(config_path)
    cycle = [State.OFF, State.ARMING, State.ON, State.DISARMING]
    with Store.open(cfg.store.path, retention_days=cfg.store.retention_days) as store:
        # The bulk write only: the daemon later opens the file with its own settings.
        store.engine.dispose()
        event.listen(store.engine, "connect", lambda c, _r: c.execute("PRAGMA synchronous = OFF"))
        now = clock.now().replace(second=0, microsecond=0)
        start = now - timedelta(days=days)
        state = dict.fromkeys(LoadId, 0)
        for i in range(days * 1440):
            at = start + timedelta(minutes=i)
            if i % 41 == 0:
                load = list(LoadId)[(i // 41) % 4]
                k = state[load]
                state[load] = (k + 1) % 4
                t = Transition(at, load, cycle[k], cycle[(k + 1) % 4], "bench", ("filled",))
                store.record_transitions([t])
                if cycle[(k + 1) % 4] in (State.ON, State.OFF):
                    store.record_command(load, k == 1, "filled", True, None, 0.1, at)
            if i % (7 * 1440) == 600:
                store.add_override(
                    LoadId.WB_B, Mode.FORCE_ON, "ui:owner", at, at + timedelta(hours=4)
                )
            on = {x: cycle[state[x]] in (State.ON, State.DISARMING) for x in LoadId}
            snap = Snapshot(
                at=at,
                grid_w=-1500.0 + (i % 700) * 5,
                soc_pct=40.0 + (i % 600) / 10,
                pv_w=max(0.0, 4000.0 - abs((i % 1440) - 780) * 8),
                battery_w=200.0 - (i % 400),
                compressor_w=1950.0 if on[LoadId.SG_READY] else 0.0,
                outdoor_c=6.0 + (i % 1440) / 200,
                dhw_c=47.0 + (i % 113) / 10,
            )
            statuses = {
                x: LoadStatus(
                    x,
                    cycle[state[x]],
                    at,
                    reading=LoadReading(
                        relay_on=on[x],
                        power_w=(1990.0 if on[x] else 0.0) if x is LoadId.WB_A else None,
                    ),
                )
                for x in LoadId
            }
            store.record_sample(at, snap, statuses, surplus_w=1200.0 - (i % 900))


@contextmanager
def stand_ins(tmp: Path, *, planner: bool = False) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The loopback house, the config pointing at it, logged in to the Viessmann emulator."""
    from werkzeug.security import generate_password_hash

    from emsctl import clock
    from emsctl.adapters.viessmann_auth import TokenFile, begin_login, complete_login, token_path
    from emsctl.config import parse_config
    from tests.support.forecast_emulator import ForecastEmulator
    from tests.support.prometheus_server import (
        HOUSE_METRICS,
        HouseExporter,
        PrometheusServer,
        free_port,
    )
    from tests.support.shelly_emulator import ShellyGen1Emulator, ShellyGen2Emulator
    from tests.support.viessmann_emulator import ViessmannEmulator

    with ExitStack() as stack:
        exporter = HouseExporter()
        stack.callback(exporter.close)
        exporter.set_many(HOUSE_METRICS)
        exporter.set("pcc_transfer_power_exchange_value", -7000.0)
        exporter.set("ess_stateOfCharge_value", 95.0)
        prom = PrometheusServer("/usr/bin/prometheus", [exporter.target])
        prom.start()
        stack.callback(prom.close)
        sg = ShellyGen1Emulator(password=SHELLY_PASSWORD).start()
        stack.callback(sg.close)
        wb_a = ShellyGen2Emulator(password=SHELLY_PASSWORD, power_w=2000.0).start()
        stack.callback(wb_a.close)
        wb_b = ShellyGen2Emulator(
            password=SHELLY_PASSWORD, model="SNSW-001X16EU", device_id="shellyplus1-112233445566"
        ).start()
        stack.callback(wb_b.close)
        viessmann = ViessmannEmulator()
        stack.callback(viessmann.stop)
        forecast = ForecastEmulator(day=date.today())
        stack.callback(forecast.stop)
        urls: dict[str, Any] = {
            "prometheus": prom.url,
            "viessmann": viessmann.viessmann_config(),
            "forecast": forecast.url,
            "webui_port": free_port(),
            "metrics_port": free_port(),
            # What `emsctl webui hash-password` writes (werkzeug's default, scrypt).
            "hash": generate_password_hash(UI_PASSWORD),
        }
        hosts = {"sg_ready": sg.host, "wb_a": wb_a.host, "wb_b": wb_b.host}
        cfg = house_config(tmp, hosts, urls, planner=planner)
        path = tmp / "ems-config.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        config = parse_config(cfg, str(path))
        pending = begin_login(config.viessmann, clock.now())
        redirect = viessmann.browser_login(pending.url)
        tokens = TokenFile(token_path(config))
        complete_login(config.viessmann, pending, redirect, tokens, clock.now())
        # A daemon starting with an hour-old access token: its first call refreshes it.
        viessmann.expire_access_tokens()
        prom.wait_for_generation(exporter.bump())
        urls.update(exporter=exporter, prom=prom, viessmann_emu=viessmann, forecast_emu=forecast)
        yield path, urls


def _browse(client: httpx.Client, run: RssRun, logged_in: bool) -> bool:
    try:
        if not logged_in:
            token = client.get("/api/session").json()["csrf_token"]
            resp = client.post(
                "/login", data={"name": "owner", "password": UI_PASSWORD, "csrf_token": token}
            )
            if resp.status_code not in (302, 303):
                run.ui_errors.append(f"login: HTTP {resp.status_code}")
                return False
        for p in UI_PATHS:
            resp = client.get(p)
            run.ui_requests += 1
            if resp.status_code != 200:
                run.ui_errors.append(f"{p}: HTTP {resp.status_code}")
    except httpx.HTTPError as exc:
        run.ui_errors.append(repr(exc))
        return logged_in
    return True


def run_owner_daemon(
    seconds: float,
    *,
    history_days: int = HISTORY_DAYS,
    unit_env: bool = True,
    planner: bool = False,
) -> RssRun:
    """Start `emsctl run` in the loopback house for `seconds`, sampling its RSS (with the
    unit's Environment= settings unless `unit_env` is false)."""
    run = RssRun()
    env = {**os.environ, **(unit_environment() if unit_env else {})}
    env["EMS_SHELLY_PASSWORD"] = SHELLY_PASSWORD
    env.pop("NOTIFY_SOCKET", None)
    with (
        tempfile.TemporaryDirectory(prefix="ems-bench-owner-") as tmp_dir,
        stand_ins(Path(tmp_dir), planner=planner) as (path, urls),
    ):
        tmp = Path(tmp_dir)
        emsctl = [sys.executable, "-m", "emsctl.cli"]
        subprocess.run(
            [*emsctl, "db", "upgrade", "--config", str(path)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        if history_days:
            fill_history(path, history_days)
        log = (tmp / "daemon.log").open("w")
        proc = subprocess.Popen(
            [*emsctl, "--log-level", "INFO", "run", "--config", str(path)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        ui = httpx.Client(base_url=f"http://127.0.0.1:{urls['webui_port']}", timeout=10)
        metrics_url = f"http://127.0.0.1:{urls['metrics_port']}/metrics"
        exporter = urls["exporter"]
        t0 = time.monotonic()
        logged_in = False
        next_browse = next_flip = 2.0
        flips = 0
        try:
            while (elapsed := time.monotonic() - t0) < seconds and proc.poll() is None:
                if elapsed >= next_browse:
                    logged_in = _browse(ui, run, logged_in)
                    scrape = httpx.get(metrics_url, timeout=10)
                    if scrape.status_code != 200:
                        run.ui_errors.append(f"/metrics: HTTP {scrape.status_code}")
                    next_browse += 5.0
                if elapsed >= next_flip:
                    # Surplus and import in turn, so that loads start and stop.
                    flips += 1
                    exporter.set(
                        "pcc_transfer_power_exchange_value", -7000.0 if flips % 2 else 2500.0
                    )
                    exporter.bump()
                    next_flip += 3 * INTERVAL_S
                try:
                    run.samples.append((elapsed, _status(proc.pid, "VmRSS")))
                    run.peak_mb = _status(proc.pid, "VmHWM")
                except (OSError, StopIteration):
                    break
                time.sleep(0.5)
        finally:
            ui.close()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()
        text = (tmp / "daemon.log").read_text(encoding="utf-8")
        run.log_tail = text[-3000:]
        run.switches = len(re.findall(r" -> on \(", text))
        run.token_refreshes = urls["viessmann_emu"].token_calls.get("refresh_token", 0)
        run.forecast_fetches = len(urls["forecast_emu"].requests)
        if proc.returncode != 0:
            raise RuntimeError(f"emsctl run exited {proc.returncode}:\n{run.log_tail}")
    return run
