"""Recovery after SIGKILL: a real daemon-like process (Controller + Site + StoreListener on a
real SQLite file, time frozen with freezegun and stepped minute by minute) is killed; a new
Site restored from the store resumes in the same state with the same entry time, an override
that expired while it was down is not applied, and no committed transition is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from emsctl.config import parse_config
from emsctl.model import LoadId, LoadReading, Snapshot, State
from emsctl.site import Site
from emsctl.store import Store

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # a sunny winter morning, 10:00 in Berlin
SG, DHW = LoadId.SG_READY, LoadId.DHW
OVERRIDE_UNTIL = START + timedelta(minutes=20)

WORKER = r"""
import json, sys
from datetime import datetime, timedelta
from freezegun import freeze_time

db, start, mode = sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3]

with freeze_time(start) as frozen:
    from emsctl import clock
    from emsctl.config import Config, parse_config
    from emsctl.controller import Controller, Devices
    from emsctl.model import LoadId, LoadReading, Mode, Snapshot
    from emsctl.site import Site
    from emsctl.store import Store, StoreListener

    class Collector:
        def __init__(self):
            self.minute = 0

        def collect(self, at):
            # In "run" mode surplus comes and goes every 40 minutes, so loads keep switching.
            sunny = mode == "step" or (self.minute // 40) % 2 == 0
            self.minute += 1
            grid, soc = (-5000.0, 95.0) if sunny else (1500.0, 60.0)
            return Snapshot(at=at, grid_w=grid, soc_pct=soc, pv_w=6000.0, battery_w=0.0,
                            compressor_w=1500.0, outdoor_c=5.0, dhw_c=45.0)

        def close(self):
            pass

    class Relay:
        def __init__(self):
            self.on = False

        def read(self):
            return LoadReading(relay_on=self.on, power_w=1900.0 if self.on else 0.0)

        def switch(self, on, *, deadman_s=None):
            self.on = on
            return self.read()

        def close(self):
            pass

    class AckingListener(StoreListener):
        # Reports each transition once the store has committed it (with its tick).
        def __init__(self, store):
            super().__init__(store)
            self.acked = []
            self.waiting = []

        def on_transition(self, t):
            self.waiting.append(t)
            super().on_transition(t)

        def ack(self):
            if self.pending == 0:
                self.acked += [[x.at.isoformat(), x.load.value, x.source.value,
                                x.target.value, x.event] for x in self.waiting]
                self.waiting = []

    # Wallboxes left to the surplus rules (no window, no charging by target): only
    # SG-Ready's runtime is at stake here.
    surplus_only = {"fallback": {"enabled": False}, "charging": {"enabled": False}}
    cfg = parse_config({"loads": {wb: surplus_only for wb in ("wb_a", "wb_b")}})
    store = Store.open(db)
    now = clock.now()
    listener = AckingListener(store)
    site = Site(cfg, now, store.restore_statuses(now, cfg), listeners=[listener])
    ctl = Controller(cfg, site, Devices(Collector(), {l: Relay() for l in LoadId}), store=store)
    if mode == "step":
        ctl.set_override(LoadId.DHW, Mode.FORCE_ON, "ui:test", now + timedelta(minutes=20))
    while True:
        ctl.tick()
        listener.ack()
        line = {
            "at": clock.now().isoformat(),
            "statuses": {
                l.value: [s.state.value, s.since.isoformat(),
                          s.on_since.isoformat() if s.on_since else None]
                for l, s in site.statuses().items()
            },
            "acked": listener.acked,
        }
        listener.acked = []
        print(json.dumps(line), flush=True)
        if mode == "step" and sys.stdin.readline().strip() != "next":
            break
        frozen.tick(timedelta(minutes=1))
"""


@dataclass
class Killed:
    """What the parent saw of a worker before it was killed."""

    db: Path
    last: dict[str, Any]
    acked: list[list[str]] = field(default_factory=list)
    ticks: int = 0


#: Wallboxes left to the surplus rules: only SG-Ready's runtime is at stake in these tests.
CARS_ON_SURPLUS = parse_config(
    {
        "loads": {
            wb: {"fallback": {"enabled": False}, "charging": {"enabled": False}}
            for wb in ("wb_a", "wb_b")
        }
    }
)


def _spawn(db: Path, mode: str, stderr: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(db), START.isoformat(), mode],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def _copy_db(src: Path, dst_dir: Path) -> Path:
    """The killed process's files as they were (database, -wal, -shm)."""
    for f in src.parent.glob(src.name + "*"):
        shutil.copy2(f, dst_dir / f.name)
    return dst_dir / src.name


@pytest.fixture(scope="module")
def killed_mid_min_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Killed]:
    """Step the worker minute by minute; SIGKILL it 5 minutes into SG-Ready's 30 min run."""
    work = tmp_path_factory.mktemp("killed")
    db = work / "ems.db"
    proc = _spawn(db, "step", work / "stderr.txt")
    seen = Killed(db=db, last={})
    try:
        for _ in range(40):
            raw = proc.stdout.readline() if proc.stdout else ""
            assert raw, (work / "stderr.txt").read_text()
            line = json.loads(raw)
            seen.last, seen.ticks = line, seen.ticks + 1
            seen.acked += line["acked"]
            state, _since, on_since = line["statuses"]["sg_ready"]
            if state == "on" and on_since is not None:
                ran = datetime.fromisoformat(line["at"]) - datetime.fromisoformat(on_since)
                if ran >= timedelta(minutes=5):
                    _kill(proc)
                    break
            assert proc.stdin is not None
            proc.stdin.write("next\n")
            proc.stdin.flush()
        else:
            pytest.fail(f"SG-Ready never ran 5 minutes: {seen.last}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    yield seen


def _stored(store: Store) -> list[list[str]]:
    rows = store.history(since=START - timedelta(days=1), limit=100_000, now=START)
    return [
        [r.at.isoformat(), r.load, r.source or "", r.target or "", r.event or ""]
        for r in reversed(rows)
        if r.kind == "transition" and r.event != "restore"
    ]


def _snapshot(at: datetime) -> Snapshot:
    return Snapshot(at=at, grid_w=-5000.0, soc_pct=95.0, pv_w=6000.0, battery_w=0.0,
                    compressor_w=1500.0, outdoor_c=5.0, dhw_c=45.0)  # fmt: skip


def test_killed_mid_min_runtime_resumes_in_the_same_state_with_the_same_entry_time(
    killed_mid_min_runtime: Killed, tmp_path: Path
) -> None:
    seen = killed_mid_min_runtime
    state, since, on_since = seen.last["statuses"]["sg_ready"]
    assert state == "on"
    killed_at = datetime.fromisoformat(seen.last["at"])
    db = _copy_db(seen.db, tmp_path)
    cfg = CARS_ON_SURPLUS
    restart = killed_at + timedelta(minutes=2)
    with freeze_time(restart), Store.open(db) as store:
        restored = store.restore_statuses(restart, cfg)
        st = restored[SG]
        assert st.state is State.ON
        assert st.since == datetime.fromisoformat(since)
        assert st.on_since == datetime.fromisoformat(on_since)

        site = Site(cfg, restart, restored)
        assert site.status(SG).since == datetime.fromisoformat(since)
        # Minimum runtime keeps counting from the original switch-on: a stop condition
        # now (deficit, SOC well above the brake) must not shed before 30 minutes.
        deficit = Snapshot(
            at=restart, grid_w=1500.0, soc_pct=60.0, pv_w=500.0, battery_w=0.0,
            compressor_w=1500.0, outdoor_c=5.0, dhw_c=45.0,
        )  # fmt: skip
        readings = {load: LoadReading(relay_on=load is SG) for load in LoadId}
        now = restart
        end_of_min_on = datetime.fromisoformat(on_since) + timedelta(seconds=1800)
        while now < end_of_min_on:
            site.step(deficit, readings, now)
            assert site.status(SG).state in (State.ON, State.DISARMING)
            now += timedelta(minutes=1)
        for _ in range(10):
            site.step(deficit, readings, now)
            now += timedelta(minutes=1)
        assert site.status(SG).state is State.OFF  # and then it does stop


def test_override_that_expired_while_down_is_not_applied(
    killed_mid_min_runtime: Killed, tmp_path: Path
) -> None:
    seen = killed_mid_min_runtime
    assert seen.last["statuses"]["dhw"][0] == "forced_on"  # the override was in force
    db = _copy_db(seen.db, tmp_path)
    cfg = CARS_ON_SURPLUS
    restart = OVERRIDE_UNTIL + timedelta(minutes=10)
    with freeze_time(restart), Store.open(db) as store:
        assert store.active_overrides(restart) == {}
        restored = store.restore_statuses(restart, cfg)
        assert restored[DHW].state is State.OFF
        assert restored[DHW].override is None
        site = Site(cfg, restart, restored)
        readings = {load: LoadReading(relay_on=False) for load in LoadId}
        result = site.step(_snapshot(restart), readings, restart)
        assert site.status(DHW).state is not State.FORCED_ON
        assert all(not (c.load is DHW and c.on) for c in result.commands)
        why = store.history(DHW, now=restart)[0]
        assert (why.source, why.target, why.event) == ("forced_on", "off", "restore")
        assert "expired" in why.reasons[0]


def test_every_acknowledged_transition_survives_the_kill(
    killed_mid_min_runtime: Killed, tmp_path: Path
) -> None:
    seen = killed_mid_min_runtime
    assert len(seen.acked) >= 3
    with Store.open(_copy_db(seen.db, tmp_path)) as store:
        assert _stored(store)[: len(seen.acked)] == seen.acked


def test_kill_during_busy_writes_loses_no_committed_transition(tmp_path: Path) -> None:
    db = tmp_path / "ems.db"
    proc = _spawn(db, "run", tmp_path / "stderr.txt")
    acked: list[list[str]] = []
    ticks = 0
    try:
        assert proc.stdout is not None
        while ticks < 400:
            raw = proc.stdout.readline()
            assert raw, (tmp_path / "stderr.txt").read_text()
            ticks += 1
            acked += json.loads(raw)["acked"]
            if ticks >= 150 and len(acked) >= 10:
                break
        _kill(proc)  # the worker is busy ticking and writing
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with Store.open(db) as store:  # opens: the file is intact (quick_check passed)
        stored = _stored(store)
        assert stored[: len(acked)] == acked
        assert len(store.samples(START)) >= ticks  # every printed tick's sample is there
