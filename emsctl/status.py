"""What the controller publishes after every tick: an immutable report for the UI and metrics.

The web UI and the metrics exporter read only this (and the store); they never call adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from emsctl.config import Config
from emsctl.model import MEASUREMENTS, LoadId, Mode, Snapshot, State


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
                }
                for load, v in self.loads.items()
            },
            "errors": dict(self.errors),
        }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


class UnknownLoad(ValueError):
    """An override for a load the running configuration does not drive."""


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

    def request_tick(self) -> None:
        """Run a tick as soon as possible (after an override was stored)."""
        ...

    def now(self) -> datetime:
        """The controller's time: the wall clock, or the simulated clock in the demo. The UI
        stamps overrides and measures ages with it."""
        ...
