"""Builders for the decision-core tests: a config in the house's shape, statuses and snapshots.

The numbers of `BASE` are those of configs/ems-config.yaml, written out so that every test can
derive its expected times and thresholds from them by hand.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from emsctl.config import Config, parse_config
from emsctl.engine import evaluate
from emsctl.model import (
    OUTPUT_ON,
    Decision,
    Forecast,
    LoadId,
    LoadReading,
    LoadStatus,
    Override,
    Snapshot,
    State,
    Verdict,
)

SG, DHW, WA, WB = LoadId.SG_READY, LoadId.DHW, LoadId.WB_A, LoadId.WB_B

#: 12:00 in Berlin (CEST): outside the car fallback window.
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
LONG_AGO = T0 - timedelta(days=1)

BASE: dict[str, Any] = {
    "control": {
        "interval_s": 60,
        "timezone": "Europe/Berlin",
        "priority": ["sg_ready", "dhw", "wb_a", "wb_b"],
        "exclusive": [["wb_a", "wb_b"]],
        "gate_hysteresis_pct": 3,
        "settle_s": 180,
        "brake_soc": 45,
        "force_beats_brake": False,
        "max_age_s": 300,
        "failsafe_after_s": 600,
        "manual_hold_s": 14400,
        "battery_capacity_wh": 8000,
        "forecast_gate_shift_pct": 15,
        "forecast_margin": 1.5,
    },
    "loads": {
        "sg_ready": {
            "nominal_w": 2000,
            "gate_pct": 50,
            "max_import_w": 300,
            "on_delay_s": 240,
            "off_delay_s": 360,
            "min_on_s": 1800,
            "min_off_s": 600,
            "max_outdoor_c": 15,
            "power_source": "compressor",
            "idle_release": {
                "enabled": True,
                "grace_s": 600,
                "below_w": 100,
                "for_s": 300,
                "cooldown_s": 3600,
            },
        },
        "dhw": {
            "nominal_w": 2000,
            "gate_pct": 50,
            "max_import_w": 300,
            "on_delay_s": 240,
            "off_delay_s": 360,
            "min_on_s": 900,
            "power_source": "compressor",
            "idle_release": {
                "enabled": True,
                "grace_s": 600,
                "below_w": 100,
                "for_s": 300,
                "cooldown_s": 3600,
            },
        },
        "wb_a": {
            "nominal_w": 2000,
            "gate_pct": 70,
            "start_w": None,
            "max_import_w": 300,
            "on_delay_s": 240,
            "off_delay_s": 360,
            "min_on_s": 900,
            "min_off_s": 300,
            "power_source": "meter",
            "no_car": {
                "enabled": True,
                "grace_s": 180,
                "below_w": 100,
                "for_s": 300,
                "retry_after_s": 3600,
            },
            # A night window on surplus days: what the rules do when cars wait for surplus.
            "fallback": {
                "enabled": True,
                "from": "22:00",
                "until": "06:30",
                "beats_brake": False,
                "ignores_exclusion": False,
            },
        },
        "wb_b": {
            "nominal_w": 4000,
            "gate_pct": 90,
            "start_w": None,
            "max_import_w": 300,
            "on_delay_s": 240,
            "off_delay_s": 360,
            "min_on_s": 900,
            "min_off_s": 300,
            "power_source": "none",
            # A night window on surplus days: what the rules do when cars wait for surplus.
            "fallback": {
                "enabled": True,
                "from": "22:00",
                "until": "06:30",
                "beats_brake": False,
                "ignores_exclusion": False,
            },
        },
    },
}


def merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `patch` merged in, recursively for mappings."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def make_config(patch: Mapping[str, Any] | None = None) -> Config:
    return parse_config(merge(BASE, patch or {}), "<test>")


def loads_patch(**per_load: Mapping[str, Any]) -> dict[str, Any]:
    """A config patch touching only `loads.<id>`: `loads_patch(wb_a={"phase": "L1"})`."""
    return {"loads": dict(per_load)}


CFG = make_config()


def reading(
    relay_on: bool | None = False,
    power_w: float | None = None,
    *,
    source: str | None = None,
    error: str | None = None,
    available: bool = True,
    foreign_setpoint: float | None = None,
) -> LoadReading:
    return LoadReading(
        relay_on=relay_on,
        power_w=power_w,
        source=source,
        error=error,
        available=available,
        foreign_setpoint=foreign_setpoint,
    )


def status(
    load: LoadId,
    state: State = State.OFF,
    *,
    since: datetime = LONG_AGO,
    relay_on: bool | None = None,
    power_w: float | None = None,
    read: LoadReading | None = None,
    on_since: datetime | None = None,
    off_since: datetime | None = None,
    commanded_on: bool | None = None,
    command_pending: bool = False,
    cooldown_until: datetime | None = None,
    manual_until: datetime | None = None,
    override: Override | None = None,
) -> LoadStatus:
    """A load's status whose device agrees with the EMS unless told otherwise.

    An output-on state runs since `since` unless `on_since` says otherwise.
    """
    output = state in OUTPUT_ON
    if on_since is None and output:
        on_since = since
    if read is None:
        read = reading(output if relay_on is None else relay_on, power_w)
    if commanded_on is None and state is not State.MANUAL:
        commanded_on = output
    return LoadStatus(
        load=load,
        state=state,
        since=since,
        reading=read,
        on_since=on_since,
        off_since=off_since,
        commanded_on=commanded_on,
        command_pending=command_pending,
        cooldown_until=cooldown_until,
        manual_until=manual_until,
        override=override,
    )


def statuses(*given: LoadStatus) -> dict[LoadId, LoadStatus]:
    """Every load off and idle since long ago, except those given."""
    out = {load: status(load) for load in LoadId}
    for st in given:
        out[st.load] = st
    return out


def snap(
    now: datetime = T0,
    *,
    grid: float | None = -1000.0,
    soc: float | None = 80.0,
    battery: float | None = 0.0,
    compressor: float | None = 2000.0,
    outdoor: float | None = 10.0,
    l1: float | None = None,
    l2: float | None = None,
    l3: float | None = None,
    forecast: Forecast | None = None,
) -> Snapshot:
    return Snapshot(
        at=now,
        grid_w=grid,
        grid_l1_w=l1,
        grid_l2_w=l2,
        grid_l3_w=l3,
        soc_pct=soc,
        battery_w=battery,
        compressor_w=compressor,
        outdoor_c=outdoor,
        forecast=forecast,
    )


def decide(
    snapshot: Snapshot,
    sts: Mapping[LoadId, LoadStatus] | None = None,
    cfg: Config = CFG,
    now: datetime | None = None,
    watch: Mapping[str, datetime] | None = None,
) -> Decision:
    return evaluate(
        snapshot, sts if sts is not None else statuses(), cfg, now or snapshot.at, watch
    )


def verdict(decision: Decision, load: LoadId) -> Verdict:
    return decision.verdicts[load]


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
