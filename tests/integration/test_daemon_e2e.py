"""End to end: `emsctl run` as a subprocess against a real Prometheus and Shelly emulators.

Delays are shrunk to seconds (interval 1 s) so a whole morning plays in a few seconds; the
rules and the code paths are the production ones.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import need_binary
from tests.support.prometheus_server import (
    HOUSE_METRICS,
    HouseExporter,
    PrometheusServer,
    free_port,
)
from tests.support.shelly_emulator import Failure, ShellyGen1Emulator, ShellyGen2Emulator
from tests.support.waiting import wait_until

PASSWORD = "wallbox-secret"


def _config(tmp: Path, prom_url: str, sg: str, wb_a: str, wb_b: str, metrics_port: int) -> Path:
    # Wallboxes on surplus (no all-day charging window): the rules' priority and exclusion.
    fast = {"on_delay_s": 2, "off_delay_s": 2, "min_on_s": 3, "min_off_s": 0}
    surplus_car = {"fallback": {"enabled": False}, "charging": {"enabled": False}}
    cfg = {
        "control": {
            "interval_s": 1,
            "settle_s": 2,
            "max_age_s": 30,
            "failsafe_after_s": 3,
            "manual_hold_s": 600,
        },
        "loads": {
            "sg_ready": {**fast, "device": {"type": "shelly_gen1", "host": sg, "timeout_s": 1}},
            "dhw": {"enabled": False},
            "wb_a": {
                **fast,
                **surplus_car,
                "no_car": {"enabled": False},
                "device": {"type": "shelly_gen2", "host": wb_a, "timeout_s": 1},
            },
            "wb_b": {
                **fast,
                **surplus_car,
                "device": {"type": "shelly_gen2", "host": wb_b, "timeout_s": 1},
            },
        },
        "prometheus": {"url": prom_url, "timeout_s": 1},
        "store": {"path": str(tmp / "ems.db")},
        "webui": {"enabled": False},
        "metrics": {"bind": "127.0.0.1", "port": metrics_port},
    }
    path = tmp / "ems.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class House:
    """A real Prometheus scraping a test exporter, three Shelly emulators, and the daemon."""

    def __init__(self, tmp: Path) -> None:
        binary = need_binary("prometheus", "/usr/bin/prometheus", hint="apt-get install prometheus")
        self.tmp = tmp
        self.exporter = HouseExporter()
        self.exporter.set_many(HOUSE_METRICS)
        self.exporter.set("pcc_transfer_power_exchange_value", -7000.0)  # exporting 7 kW
        self.exporter.set("ess_stateOfCharge_value", 95.0)
        self.exporter.set("ess_power_value", 0.0)
        self.exporter.set("heating_sensors_temperature_outside_value", 5.0)
        self.prom = PrometheusServer(binary, [self.exporter.target])
        self.prom.start()
        self.sg = ShellyGen1Emulator().start()
        self.wb_a = ShellyGen2Emulator(password=PASSWORD, power_w=2000.0).start()
        self.wb_b = ShellyGen2Emulator(
            password=PASSWORD, model="SNSW-001X16EU", device_id="shellyplus1-112233445566"
        ).start()
        self.metrics_port = free_port()
        self.config = _config(
            tmp, self.prom.url, self.sg.host, self.wb_a.host, self.wb_b.host, self.metrics_port
        )
        self.proc: subprocess.Popen[str] | None = None
        self.log = tmp / "daemon.log"

    def publish(self) -> None:
        self.prom.wait_for_generation(self.exporter.bump())

    def start(self) -> None:
        env = {**os.environ, "EMS_SHELLY_PASSWORD": PASSWORD, "EMS_LOG_LEVEL": "INFO"}
        env.pop("NOTIFY_SOCKET", None)
        self.publish()
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emsctl.cli", "run", "--config", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )

    def metrics(self) -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return ""

    def transitions(self) -> list[tuple[str, str, str, str]]:
        db = self.tmp / "ems.db"
        if not db.exists():
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(
                "SELECT at, load, source, target FROM transitions ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc is not None:
            self._log.close()
        for emu in (self.sg, self.wb_a, self.wb_b):
            emu.close()
        self.prom.close()
        self.exporter.close()

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def house(tmp_path: Path) -> Iterator[House]:
    h = House(tmp_path)
    try:
        yield h
    finally:
        h.close()


def _on_order(house: House) -> list[str]:
    """Loads in the order the daemon's transitions switched them on."""
    seen: list[str] = []
    for _at, load, _src, dst in house.transitions():
        if dst in ("on", "forced_on") and load not in seen:
            seen.append(load)
    return seen


def test_daemon_switches_in_priority_order_persists_exports_and_stops_cleanly(house: House):
    house.start()
    wait_until(lambda: house.sg.output, 30, "SG-Ready relay on")
    wait_until(lambda: house.wb_a.output, 30, f"WB A relay on; log:\n{house.logs()}")
    # A tick switches the relays first and commits its transitions after: wait for the record.
    wait_until(lambda: len(_on_order(house)) >= 2, 5, "both switch-ons recorded")
    assert _on_order(house)[:2] == ["sg_ready", "wb_a"], house.transitions()
    # WB B is eligible (SOC 95 >= 90) but exclusive with WB A, and 4 kW is not left over.
    time.sleep(3)
    assert not house.wb_b.output
    # Every EMS switch-on set the device's dead-man timer.
    assert house.sg.timer_remaining_s is not None
    assert house.wb_a.timer_remaining_s is not None
    text = house.metrics()
    assert re.search(r'ems_load_output_on\{load="sg_ready"\} 1\.0', text), text
    assert re.search(r'ems_load_output_on\{load="wb_b"\} 0\.0', text), text
    assert re.search(r'ems_transitions_total\{event="start",load="wb_a"\} [1-9]', text), text
    assert house.stop() == 0
    assert "stopped" in house.logs()
    # on_exit: leave - the relays stay as they are (their dead-man timers run on).
    assert house.sg.output and house.wb_a.output


def test_prometheus_dying_mid_run_sheds_loads_by_fail_safe(house: House):
    house.start()
    wait_until(lambda: house.sg.output and house.wb_a.output, 40, "both loads on")
    house.prom.stop()
    # failsafe_after_s 3, min_on 3 s, settle 2 s: both shed, WB A (lower priority) first.
    wait_until(lambda: not house.sg.output and not house.wb_a.output, 30, "fail-safe shed")

    def offs() -> list[str]:
        return [load for _at, load, src, dst in house.transitions() if dst == "off" and src == "on"]

    # The relay is off before its tick commits the transition: wait for the record.
    wait_until(lambda: len(offs()) >= 2, 5, f"both sheds recorded: {house.transitions()}")
    assert offs()[:2] == ["wb_a", "sg_ready"], house.transitions()
    assert "fail-safe" in house.logs()
    assert house.stop() == 0


def test_a_shelly_that_times_out_is_marked_and_the_others_go_on(house: House):
    house.sg.fail(Failure.SLOW, delay_s=3.0)  # beyond its 1 s timeout, every request
    house.start()
    wait_until(
        lambda: house.wb_a.output, 40, f"WB A on despite SG-Ready timing out\n{house.logs()}"
    )
    assert not house.sg.output
    text = house.metrics()
    assert re.search(r'ems_adapter_errors_total\{kind="unreachable",where="sg_ready"\} [1-9]', text)
    # The device answers again: it is retried on the next ticks and switched on.
    house.sg.clear_failures()
    wait_until(lambda: house.sg.output, 40, "SG-Ready on once it answers")
    assert house.stop() == 0


def _rewrite(house: House, **change: Any) -> None:
    """The running daemon's config file with `change` applied (dotted paths as keys)."""
    doc = yaml.safe_load(house.config.read_text())
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[leaf] = value
    house.config.write_text(yaml.safe_dump(doc))


def test_sighup_applies_a_new_config_with_new_devices_and_refuses_an_invalid_one(house: House):
    # SG-Ready's relay is at an address where nothing answers; WB B is disabled.
    _rewrite(house, **{"loads.sg_ready.device.host": f"127.0.0.1:{free_port()}"})
    _rewrite(house, **{"loads.wb_b.enabled": False})
    house.start()
    wait_until(lambda: house.wb_a.output, 40, f"WB A on\n{house.logs()}")
    assert not house.sg.output
    # The owner corrects the address and reloads: the new device is used without a restart.
    _rewrite(house, **{"loads.sg_ready.device.host": house.sg.host, "store.retention_days": 10})
    assert house.proc is not None
    house.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: house.sg.output, 40, f"SG-Ready on after the reload\n{house.logs()}")
    assert "SIGHUP: configuration reloaded" in house.logs()
    assert "devices, Prometheus and cloud clients rebuilt" in house.logs()
    assert "store.* changed: takes effect at the next restart" in house.logs()
    # An invalid config is refused with its key path, and the daemon goes on with the old one.
    _rewrite(house, **{"control.interval_s": -1})
    ticks = _ticks(house)
    house.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "keeping the running configuration" in house.logs(), 20, "the refusal")
    assert "control.interval_s" in house.logs()
    wait_until(lambda: _ticks(house) > ticks + 2, 20, f"ticks after the refusal\n{house.logs()}")
    assert house.sg.output and house.wb_a.output
    assert house.stop() == 0


def _ticks(house: House) -> float:
    m = re.search(r"^ems_ticks_total (\S+)$", house.metrics(), re.M)
    return float(m.group(1)) if m else 0.0
