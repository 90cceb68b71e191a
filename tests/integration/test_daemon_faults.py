"""The daemon on a bad day: a real Prometheus and the Shelly emulators behind the fault proxy,
sensors that lie, and a wall clock that steps.

The daemon runs in this process (its loop in a thread, exactly as `emsctl run` runs it) so that
each tick's duration can be timed and the wall clock stepped; everything it talks to is real
HTTP on 127.0.0.1. What must hold, whatever the fault:

- ticks keep their interval: no tick lasts longer than the timeouts of what failed plus 1 s,
  and the next starts on time;
- the fail-safe switches the EMS's loads off within `failsafe_after_s` once the measurements
  are gone (the relays' dead-man timers are set far longer, so only the EMS explains it);
- nothing starts on an implausible value.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from emsctl import clock
from emsctl.daemon import Daemon, RunOptions
from emsctl.model import LoadId, Mode, State
from tests.support.fault_proxy import FaultProxy
from tests.support.fault_proxy import Mode as Fault
from tests.support.prometheus_server import PrometheusServer, PublishingExporter
from tests.support.shelly_emulator import ShellyGen1Emulator, ShellyGen2Emulator
from tests.support.waiting import wait_until

pytestmark = pytest.mark.real

INTERVAL_S = 1.0
PROM_TIMEOUT_S = 1.5
DEVICE_TIMEOUT_S = 1.0
FAILSAFE_AFTER_S = 4.0
SETTLE_S = 1.0
#: Long enough that a relay switched off within a test was switched off by the EMS.
DEADMAN_S = 600
#: Scheduling slack on a loaded two-core machine.
SLACK_S = 1.0
GRID = "pcc_transfer_power_exchange_value"
SOC = "ess_stateOfCharge_value"


def _config(tmp: Path, prom_url: str, sg_host: str, wb_host: str) -> Path:
    fast = {"on_delay_s": 1, "off_delay_s": 1, "min_on_s": 2, "min_off_s": 0}
    device = {"timeout_s": DEVICE_TIMEOUT_S, "retries": 0, "deadman_s": DEADMAN_S}
    cfg: dict[str, Any] = {
        "control": {
            "interval_s": INTERVAL_S,
            "settle_s": SETTLE_S,
            "max_age_s": 30,
            "failsafe_after_s": FAILSAFE_AFTER_S,
            "manual_hold_s": 600,
            "priority": ["sg_ready", "wb_a"],
            "exclusive": [],
        },
        "loads": {
            "sg_ready": {**fast, "device": {"type": "shelly_gen1", "host": sg_host, **device}},
            "dhw": {"enabled": False},
            "wb_a": {
                **fast,
                "fallback": {"enabled": False},
                "charging": {"enabled": False},
                "no_car": {"enabled": False},
                "device": {"type": "shelly_gen2", "host": wb_host, **device},
            },
            "wb_b": {"enabled": False},
        },
        "prometheus": {"url": prom_url, "timeout_s": PROM_TIMEOUT_S},
        "forecast": {"enabled": False},
        "store": {"path": str(tmp / "ems.db")},
        "webui": {"enabled": False},
        "metrics": {"enabled": False},
    }
    path = tmp / "ems.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Rig:
    """The daemon in a thread; Prometheus and SG-Ready's relay each behind a fault proxy."""

    def __init__(
        self,
        tmp: Path,
        prometheus: PrometheusServer,
        exporter: PublishingExporter,
        wall: Callable[[], datetime],
    ) -> None:
        self.exporter = exporter
        self.sg = ShellyGen1Emulator().start()
        self.wb = ShellyGen2Emulator(power_w=2000.0).start()
        self.prom_proxy = FaultProxy(prometheus.url, lifetime_s=300).start()
        self.sg_proxy = FaultProxy(self.sg.host, lifetime_s=300).start()
        config = _config(tmp, self.prom_proxy.url, self.sg_proxy.host, self.wb.host)
        self.daemon = Daemon(RunOptions(config_path=str(config), now=wall))
        self.ticks: list[tuple[float, float]] = []  # (monotonic start, duration)
        self._thread: threading.Thread | None = None

    def start(self) -> Rig:
        self.daemon.start()
        ctl = self.daemon.controller
        assert ctl is not None
        tick = ctl.tick

        def timed() -> Any:
            t0 = time.monotonic()
            try:
                return tick()
            finally:
                self.ticks.append((t0, time.monotonic() - t0))

        ctl.tick = timed  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self.daemon.loop, name="ems-loop", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.daemon.stop.set()
        ctl = self.daemon.controller
        if ctl is not None:
            ctl.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.daemon.shutdown()
        for closable in (self.prom_proxy, self.sg_proxy, self.sg, self.wb):
            closable.close()

    # -- what the daemon sees and does ------------------------------------------------------

    def state(self, load: LoadId) -> State:
        ctl = self.daemon.controller
        assert ctl is not None
        return ctl.site.status(load).state

    def publish(self, **values: float) -> None:
        for name, value in values.items():
            self.exporter.set(name, value)
        self.exporter.publish()

    def running(self) -> None:
        """Both loads on, by the EMS."""
        wait_until(lambda: self.sg.output and self.wb.output, 30, "loads on surplus")

    def ticks_since(self, t0: float) -> list[tuple[float, float]]:
        return [t for t in self.ticks if t[0] >= t0]

    def assert_ticks_kept_their_interval(self, t0: float, longest_s: float) -> None:
        ticks = self.ticks_since(t0)
        assert len(ticks) >= 3, ticks
        durations = [d for _, d in ticks]
        assert max(durations) <= longest_s + SLACK_S, f"longest tick {max(durations):.2f} s"
        # The next tick starts on the grid: one interval after the last, or at once after a
        # tick that overran it.
        for (a, da), (b, _) in itertools.pairwise(ticks):
            if da < INTERVAL_S:
                assert b - a <= INTERVAL_S + SLACK_S, f"a gap of {b - a:.2f} s"
            else:  # the slots it covered are skipped: the next waits at most an interval
                assert b - (a + da) <= INTERVAL_S + SLACK_S, f"a wait of {b - a - da:.2f} s"


@pytest.fixture
def wall() -> Iterator[list[timedelta]]:
    """The wall clock's offset from real time: set [0] to step it. Patched where it is read
    (`emsctl.clock.now`), so the daemon takes the production path (steps found against the
    monotonic clock)."""
    offset = [timedelta(0)]
    real = clock.now
    patched = lambda: real() + offset[0]  # noqa: E731
    mp = pytest.MonkeyPatch()
    mp.setattr(clock, "now", patched)
    yield offset
    mp.undo()


@pytest.fixture
def rig(
    tmp_path: Path,
    prometheus: PrometheusServer,
    house_exporter: PublishingExporter,
    wall: list[timedelta],
) -> Iterator[Rig]:
    house_exporter.set(GRID, -7000.0)  # exporting 7 kW
    house_exporter.set(SOC, 95.0)
    house_exporter.set("ess_power_value", 0.0)
    house_exporter.publish()
    r = Rig(tmp_path, prometheus, house_exporter, clock.now)
    try:
        yield r.start()
    finally:
        r.close()


# HANG and CLOSE meet the same deadline as TRICKLE, GARBAGE fails at once; each adapter is
# tested with every mode on its own (test_fault_proxy_*.py). Here the daemon's loop around the
# slowest failure.
@pytest.mark.parametrize("fault", [Fault.TRICKLE])
def test_a_failing_prometheus_keeps_the_ticks_and_the_failsafe_sheds_in_time(
    rig: Rig, fault: Fault
) -> None:
    rig.running()
    t0 = time.monotonic()
    rig.prom_proxy.set_mode(fault, rate=1, cut_after=10)
    wait_until(lambda: not rig.sg.output or not rig.wb.output, 20, "fail-safe shed")
    first = time.monotonic() - t0
    wait_until(lambda: not rig.sg.output and not rig.wb.output, 20, "fail-safe shed")
    last = time.monotonic() - t0
    # Missing from the first tick that failed (within an interval); the fail-safe decides at
    # the first tick whose start is failsafe_after_s later and switches when its query has
    # timed out. Then one load per tick, settle_s apart (rule 13).
    assert first <= FAILSAFE_AFTER_S + INTERVAL_S + 2 * PROM_TIMEOUT_S + SLACK_S, f"{first:.1f}"
    assert last - first <= SETTLE_S + 2 * PROM_TIMEOUT_S + SLACK_S, f"{last - first:.1f} s"
    assert rig.sg.source != "timer" and rig.wb.source != "timer"
    rig.assert_ticks_kept_their_interval(t0, PROM_TIMEOUT_S)
    # And back: the loads start again once Prometheus answers.
    rig.prom_proxy.set_mode(Fault.PASS)
    rig.running()


@pytest.mark.parametrize("fault", [Fault.TRICKLE])
def test_a_failing_relay_keeps_the_ticks_and_the_other_load_goes_on(rig: Rig, fault: Fault) -> None:
    rig.running()
    t0 = time.monotonic()
    rig.sg_proxy.set_mode(fault, rate=1)
    time.sleep(6)
    ctl = rig.daemon.controller
    assert ctl is not None
    report = ctl.latest()
    assert report is not None
    assert report.loads[LoadId.SG_READY].error is not None
    assert rig.wb.output and rig.state(LoadId.WB_A) is State.ON
    # The read meets the fault; no dead-man renewal is tried after a failed read.
    rig.assert_ticks_kept_their_interval(t0, DEVICE_TIMEOUT_S)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (SOC, 6553.5),  # 0xFFFF / 10
        (GRID, -4294967295.0),  # a Modbus overflow
    ],
)
def test_nothing_starts_on_an_implausible_value(rig: Rig, name: str, value: float) -> None:
    wait_until(lambda: rig.state(LoadId.SG_READY) is not State.OFF, 20, "arming on surplus")
    # Stop everything the ordinary way (no surplus), then let a lying sensor say "surplus".
    rig.publish(**{GRID: 2000.0})
    wait_until(lambda: not rig.sg.output and not rig.wb.output, 30, "shed without surplus")
    # Everything else says "start": 7 kW exported, the battery nearly full.
    rig.publish(**{GRID: -7000.0, SOC: 95.0, name: value})
    t0 = time.monotonic()
    time.sleep(4)  # on_delay, settle and a start's tick, twice over
    assert not rig.sg.output and not rig.wb.output
    assert rig.state(LoadId.SG_READY) in (State.OFF, State.COOLDOWN)
    assert rig.state(LoadId.WB_A) in (State.OFF, State.COOLDOWN)
    rig.assert_ticks_kept_their_interval(t0, 0.5)


def test_the_brake_judges_the_last_plausible_soc_while_it_glitches(rig: Rig) -> None:
    rig.running()
    rig.publish(**{SOC: 5.0})  # below the brake
    wait_until(lambda: not rig.sg.output and not rig.wb.output, 20, "brake")
    rig.publish(**{SOC: 6553.5})  # the glitch says "full"; the grid still exports 7 kW
    time.sleep(4)
    assert not rig.sg.output and not rig.wb.output


@pytest.mark.parametrize("step", [timedelta(hours=1), -timedelta(hours=1)], ids=["ahead", "back"])
def test_a_wall_clock_step_keeps_ticks_timers_and_the_owners_override(
    rig: Rig, wall: list[timedelta], step: timedelta
) -> None:
    rig.running()
    store = rig.daemon.store
    ctl = rig.daemon.controller
    assert store is not None and ctl is not None
    ctl.set_override(LoadId.WB_A, Mode.FORCE_OFF, "owner", clock.now() + timedelta(hours=3))
    wait_until(lambda: rig.state(LoadId.WB_A) is State.FORCED_OFF, 10, "force off")
    t0 = time.monotonic()
    wall[0] = step
    # Prometheus has no samples an hour away from its own clock: the measurements are gone,
    # and the fail-safe sheds SG-Ready within failsafe_after_s however the clock moved.
    wait_until(lambda: not rig.sg.output, 20, "fail-safe after the step")
    took = time.monotonic() - t0
    assert took <= FAILSAFE_AFTER_S + INTERVAL_S + 2 * PROM_TIMEOUT_S + SLACK_S, f"{took:.1f} s"
    t1 = time.monotonic()
    wall[0] = timedelta(0)  # NTP puts it right again
    # SG-Ready starts again after its on-delay: not locked out for the step's size.
    wait_until(lambda: rig.sg.output, 15, "start after the clock is right again")
    assert time.monotonic() - t1 <= 10
    rig.assert_ticks_kept_their_interval(t0, PROM_TIMEOUT_S)
    # The owner's Force off held through both steps and was never turned into Auto.
    assert rig.state(LoadId.WB_A) is State.FORCED_OFF and not rig.wb.output
    history = store.history(since=clock.now() - timedelta(hours=4), now=clock.now())
    texts = ["; ".join(r.reasons) for r in history if r.load == "wb_a"]
    assert not any("by the owner" in t and "Auto" in t for t in texts), texts
