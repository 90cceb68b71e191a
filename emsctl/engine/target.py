"""Rules 15 and 17: when a wallbox must charge whatever the surplus — in its charging window,
in mode now, or from its target's latest start on — and what its mode asks otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from emsctl import units
from emsctl.config import CarCharging, LoadConfig
from emsctl.model import CarPlan, ChargeMode, LoadStatus, ReasonCode


@dataclass(frozen=True, slots=True)
class MustCharge:
    """A wallbox that charges regardless of surplus this tick, and why."""

    code: ReasonCode
    text: str
    beats_brake: bool
    ignores_exclusion: bool
    #: Judge the car's draw (rule 11) meanwhile: a target's start may find no car there.
    watch_draw: bool


def charge_power(plan: CarPlan, cfg: LoadConfig) -> float:
    """The power the car charges with: as last seen while it drew, else the nominal one."""
    seen = plan.power_w
    return seen if seen is not None and seen > 0 else cfg.nominal_w


def latest_start(plan: CarPlan, cfg: LoadConfig, charging: CarCharging) -> datetime | None:
    """When charging must begin to add the plan's need by its deadline: the need at the
    car's power, stretched by `reserve_factor`, plus `reserve_s` (None: nothing needed)."""
    if plan.deadline is None or plan.need_wh <= 0:
        return None
    hours = plan.need_wh / charge_power(plan, cfg)
    lead = hours * 3600.0 * charging.reserve_factor + charging.reserve_s
    return plan.deadline - timedelta(seconds=lead)


def when(at: datetime, now: datetime, tz: tzinfo) -> str:
    """A time as a person reads it: "07:00" today or within a day, "Mon 07:00" beyond."""
    local = at.astimezone(tz)
    if abs((at - now).total_seconds()) < 20 * 3600:
        return f"{local:%H:%M}"
    return f"{local:%a %H:%M}"


def target_text(plan: CarPlan, now: datetime, tz: tzinfo) -> str:
    """ "target 07:00 (weekly)" """
    assert plan.deadline is not None
    source = f" ({plan.source})" if plan.source else ""
    return f"target {when(plan.deadline, now, tz)}{source}"


def due(
    plan: CarPlan,
    cfg: LoadConfig,
    charging: CarCharging,
    now: datetime,
    due_for: datetime | None,
) -> bool:
    """Whether charging for the plan's target must go on regardless of surplus: from its
    latest start on, and then (`due_for` is the deadline it became due for) until the
    deadline, as long as the car draws. Without the memory the latest start would move later
    while the car charges (the need shrinks faster than the time) and the charge would stop
    and start again all night. A car that still draws when its target is met still needs
    the energy (the target was a guess) and there is no sun to wait for until it leaves:
    it charges on until it is full."""
    if plan.deadline is None or now >= plan.deadline:
        return False
    if due_for == plan.deadline and plan.drawing is not False:
        return True
    if plan.need_wh <= 0:
        return False
    if not plan.sun_ahead:
        return True
    start = latest_start(plan, cfg, charging)
    return start is not None and now >= start


def must_charge(
    status: LoadStatus,
    cfg: LoadConfig,
    now: datetime,
    local: time,
    tz: tzinfo,
    due_for: datetime | None = None,
) -> MustCharge | None:
    """Rule 17 first (a plan's mode and target), then rule 15 (the window) where the mode
    leaves room for it: solar charges on surplus only, off not at all. `due_for`: the
    deadline the wallbox's target was due for on the last tick (see `due`)."""
    plan = status.plan
    charging = cfg.car_charging
    if plan is not None and charging is not None:
        mode = plan.mode
        if mode is ChargeMode.OFF:
            return None
        if plan.awaiting and mode is not ChargeMode.NOW:
            # Nothing draws: neither the brake nor the exclusion has anything to guard.
            return MustCharge(
                ReasonCode.AWAITING_CAR,
                "no car seen: the relay stays on to see one come",
                True,
                True,
                False,
            )
        if mode is ChargeMode.SOLAR:
            return None
        if mode is ChargeMode.NOW:
            return MustCharge(
                ReasonCode.MODE_NOW,
                "mode now: charging regardless of surplus",
                charging.beats_brake,
                charging.ignores_exclusion,
                False,
            )
        if due(plan, cfg, charging, now, due_for):
            start = latest_start(plan, cfg, charging)
            if start is None:
                text = "energy reached, the car still draws: charging on until it is full"
            elif not plan.sun_ahead and now < start:
                text = (
                    f"{units.energy(plan.need_wh)} to go, no surplus expected before it: "
                    "charging regardless of surplus"
                )
            else:
                text = (
                    f"{units.energy(plan.need_wh)} to go, must start by {when(start, now, tz)}: "
                    "charging regardless of surplus"
                )
            return MustCharge(
                ReasonCode.TARGET_DUE,
                f"{target_text(plan, now, tz)}: {text}",
                charging.beats_brake,
                charging.ignores_exclusion,
                True,
            )
    window = cfg.charging_window
    if window is not None and window.covers(local):
        return MustCharge(
            ReasonCode.CHARGING_WINDOW,
            window.reason,
            window.beats_brake,
            window.ignores_exclusion,
            False,
        )
    return None


def plan_note(
    status: LoadStatus, cfg: LoadConfig, now: datetime, tz: tzinfo
) -> tuple[ReasonCode, str] | None:
    """Why a wallbox on solar+target is not (yet) charging regardless of surplus."""
    plan = status.plan
    charging = cfg.car_charging
    if plan is None or charging is None or plan.mode is not ChargeMode.SOLAR_TARGET:
        return None
    if plan.deadline is None:
        return None
    if plan.need_wh <= 0:
        return ReasonCode.TARGET_MET, f"{target_text(plan, now, tz)} met: surplus only"
    start = latest_start(plan, cfg, charging)
    assert start is not None
    return (
        ReasonCode.TARGET_PLANNED,
        f"{target_text(plan, now, tz)}: {units.energy(plan.need_wh)} to go, surplus until "
        f"{when(start, now, tz)}",
    )
