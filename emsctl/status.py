"""What the controller publishes after every tick: an immutable report for the UI and metrics.

The web UI and the metrics exporter read only this (and the store); they never call adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dt_time
from typing import Any, Protocol

from emsctl.cars.types import OneOffTarget, TargetSource, WeeklyTarget
from emsctl.config import Config
from emsctl.model import MEASUREMENTS, ChargeMode, LoadId, Mode, Snapshot, State


@dataclass(frozen=True, slots=True)
class CarView:
    """A wallbox's charging by target (rule 17) as the owner sees it.

    `target_*` is the target in force (the owner's one-off, the weekly schedule, the learned
    habit or the default). `session_wh` is the energy of the session so far (`estimated` for
    a wallbox without a meter). `latest_start` is when charging regardless of surplus must
    begin; `expected_finish` when the car is expected to have what it needs (None: unknown).
    """

    mode: ChargeMode
    #: "owner" when the owner picked the mode, "config" when it is charging.mode.
    mode_from: str
    target_source: TargetSource | None = None
    deadline: datetime | None = None
    target_wh: float | None = None
    need_wh: float = 0.0
    latest_start: datetime | None = None
    expected_finish: datetime | None = None
    session_started: datetime | None = None
    session_wh: float | None = None
    estimated: bool = False
    drawing: bool | None = None
    #: "learned: Mon-Fri 07:10, ~11 kWh" (None: not enough sessions yet).
    learned: str | None = None
    #: The energy learned per weekday of arrival, (weekday, Wh) Monday first, so the UI can
    #: offer it as the weekly schedule for the owner to confirm or correct.
    learned_days: tuple[tuple[int, float], ...] = ()
    one_off: OneOffTarget | None = None
    weekly: tuple[WeeklyTarget, ...] = ()
    battery_kwh: float | None = None
    #: Switch-ons that found no car (the probes at a target's latest start), since start-up.
    probes_failed: int = 0
    #: The car was held through its target's time: when its session ends as gone, unless it
    #: draws before (None otherwise).
    gone_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "mode_from": self.mode_from,
            "target": {
                "source": None if self.target_source is None else self.target_source.value,
                "by": _iso(self.deadline),
                "energy_wh": self.target_wh,
                "need_wh": self.need_wh,
                "latest_start": _iso(self.latest_start),
                "expected_finish": _iso(self.expected_finish),
            },
            "session": {
                "started": _iso(self.session_started),
                "energy_wh": self.session_wh,
                "estimated": self.estimated,
                "drawing": self.drawing,
            },
            "learned": self.learned,
            "learned_days": [{"weekday": d, "energy_wh": wh} for d, wh in self.learned_days],
            "one_off": None
            if self.one_off is None
            else {"by": self.one_off.by.isoformat(), "energy_wh": self.one_off.energy_wh},
            "weekly": [
                {"weekday": w.weekday, "at": w.at.strftime("%H:%M"), "energy_wh": w.energy_wh}
                for w in self.weekly
            ],
            "battery_kwh": self.battery_kwh,
            "probes_failed": self.probes_failed,
            "gone_at": _iso(self.gone_at),
        }


@dataclass(frozen=True, slots=True)
class LoadView:
    """One load as the owner sees it."""

    load: LoadId
    state: State
    since: datetime
    output_on: bool
    reasons: tuple[str, ...]
    relay_on: bool | None
    power_w: float | None
    source: str | None
    error: str | None
    override_mode: Mode | None = None
    override_until: datetime | None = None
    override_by: str | None = None
    manual_until: datetime | None = None
    cooldown_until: datetime | None = None
    gate_pct: float | None = None
    #: Why a Force on is not (yet) effective, e.g. the brake or exclusion.
    blocked_by: str | None = None
    #: A wallbox's charging by target (None: not a wallbox, or charging.enabled is false).
    car: CarView | None = None


@dataclass(frozen=True, slots=True)
class PlanView:
    """The day-ahead plan as the owner and the metrics see it (rule 19)."""

    made_at: datetime | None
    #: Why there is no plan (None while one is in force).
    failed: str | None
    compute_s: float | None
    plans_made: int
    errors: int
    #: Planned runs: load, start, end.
    runs: tuple[tuple[LoadId, datetime, datetime], ...]
    #: The SOC the plan expects at the end of the current slot.
    soc_pct: float | None
    on_now: frozenset[LoadId]

    def to_json(self) -> dict[str, Any]:
        return {
            "made_at": _iso(self.made_at),
            "failed": self.failed,
            "compute_s": self.compute_s,
            "plans_made": self.plans_made,
            "errors": self.errors,
            "runs": [
                {"load": load.value, "from": a.isoformat(), "until": b.isoformat()}
                for load, a, b in self.runs
            ],
            "soc_pct": self.soc_pct,
            "on_now": sorted(x.value for x in self.on_now),
        }


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The house and every load after one tick."""

    at: datetime
    snapshot: Snapshot
    loads: dict[LoadId, LoadView]
    surplus_w: float | None
    max_age_s: float
    dry_run: bool = False
    tick_ms: float | None = None
    errors: dict[str, str] = field(default_factory=dict)
    forecast_remaining_wh: float | None = None
    forecast_fetched_at: datetime | None = None
    #: The day-ahead plan (None: planner off).
    plan: PlanView | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the `/api/status` body)."""
        snap = self.snapshot
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "surplus_w": self.surplus_w,
            "tick_ms": self.tick_ms,
            "measurements": {
                name: {
                    "value": getattr(snap, name),
                    "age_s": snap.ages_s.get(name),
                    "stale": getattr(snap, name) is None and name in snap.ages_s,
                }
                for name in MEASUREMENTS
            },
            "plan": self.plan.to_json() if self.plan is not None else None,
            "forecast": {
                "remaining_today_wh": self.forecast_remaining_wh,
                "fetched_at": _iso(self.forecast_fetched_at),
            },
            "loads": {
                load.value: {
                    "state": v.state.value,
                    "since": v.since.isoformat(),
                    "output_on": v.output_on,
                    "reasons": list(v.reasons),
                    "relay_on": v.relay_on,
                    "power_w": v.power_w,
                    "source": v.source,
                    "error": v.error,
                    "override": None
                    if v.override_mode is None
                    else {
                        "mode": v.override_mode.value,
                        "until": _iso(v.override_until),
                        "by": v.override_by,
                    },
                    "manual_until": _iso(v.manual_until),
                    "cooldown_until": _iso(v.cooldown_until),
                    "gate_pct": v.gate_pct,
                    "blocked_by": v.blocked_by,
                    "car": None if v.car is None else v.car.to_json(),
                }
                for load, v in self.loads.items()
            },
            "errors": dict(self.errors),
        }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


class UnknownLoad(ValueError):
    """An override for a load the running configuration does not drive."""


class CarSettingError(ValueError):
    """A charging mode or target that cannot be set; the message says what and why."""


class ControllerHandle(Protocol):
    """What the web UI may ask of the running controller."""

    @property
    def config(self) -> Config:
        """The configuration the controller runs with now (it changes on SIGHUP)."""
        ...

    def set_override(
        self, load: LoadId, mode: Mode, by: str, expires_at: datetime | None = None
    ) -> int | None:
        """Store the owner's override and apply it at the next tick (asked for now); Auto
        also ends a manual hold. Raises UnknownLoad for a load not driven, StoreError when the
        database refuses it."""
        ...

    def latest(self) -> StatusReport | None:
        """The report of the last tick (None before the first)."""
        ...

    def set_car_mode(self, load: LoadId, mode: ChargeMode | None, by: str) -> None:
        """A wallbox's charging mode (None: the config's), stored and applied at the next tick.
        Raises CarSettingError (not a wallbox, charging by target off), StoreError."""
        ...

    def set_car_target(
        self, load: LoadId, by_time: datetime | None, energy_wh: float | None, by: str
    ) -> None:
        """The one-off target of the wallbox's current session (`by_time` None: clear it).
        Raises CarSettingError for a time not in the future or an energy out of range."""
        ...

    def set_weekly_target(
        self,
        load: LoadId,
        weekday: int,
        at: dt_time | None,
        energy_wh: float | None,
        by: str,
    ) -> None:
        """One weekday of the wallbox's weekly schedule (`at` None: no target that day)."""
        ...

    def request_tick(self) -> None:
        """Run a tick as soon as possible (after an override was stored)."""
        ...

    def now(self) -> datetime:
        """The controller's time: the wall clock, or the simulated clock in the demo. The UI
        stamps overrides and measures ages with it."""
        ...
