"""Plain rows the store hands back to the UI, the CLI and the daemon (no ORM objects leak out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from emsctl.model import LoadId, Mode, Override


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """An override as stored: who set it, until when, who or what ended it.

    `mode` is a Mode value ("force_on", "force_off") or, for a detected one, "manual".
    """

    id: int
    load: LoadId
    mode: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    detected: bool = False
    note: str | None = None

    @property
    def override(self) -> Override | None:
        """As the engine sees it; None for a detected manual hold (the machine's `manual`)."""
        if self.mode not in (Mode.FORCE_ON, Mode.FORCE_OFF):
            return None
        return Override(
            mode=Mode(self.mode),
            created_at=self.created_at,
            expires_at=self.expires_at,
            created_by=self.created_by,
        )

    def active(self, now: datetime) -> bool:
        return self.cleared_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One line of a load's history, newest first: a transition or an override's life.

    `kind` is "transition", "override" (set or detected), "override_cleared" or
    "override_expired". For overrides `target` is the mode and `by` the person or source.
    """

    at: datetime
    load: str
    kind: str
    source: str | None
    target: str | None
    event: str | None
    reasons: tuple[str, ...]
    by: str | None = None
    measurements: Mapping[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "load": self.load,
            "kind": self.kind,
            "source": self.source,
            "target": self.target,
            "event": self.event,
            "reasons": list(self.reasons),
            "by": self.by,
            "measurements": dict(self.measurements),
        }


@dataclass(frozen=True, slots=True)
class CommandRecord:
    at: datetime
    load: str
    on: bool
    reason: str
    ok: bool
    error: str | None
    latency_s: float | None
    dry_run: bool
    renew: bool


@dataclass(frozen=True, slots=True)
class LoadSample:
    state: str
    output_on: bool | None
    power_w: float | None


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One tick for the chart: the house's measurements and each load's state."""

    at: datetime
    values: Mapping[str, float | None]
    loads: Mapping[str, LoadSample]


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why a load left an output-on state, counted per event on one day."""

    event: str
    count: int
    last_reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DayStats:
    """One load on one local day.

    `energy_wh` is runtime x the mean power measured while on (samples with power) when
    `energy_measured`, else runtime x the load's nominal power.
    """

    day: date
    load: str
    runtime_s: float
    energy_wh: float
    energy_measured: bool
    switch_ons: int
    short_cycles: int
    stops: tuple[StopReason, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "day": self.day.isoformat(),
            "load": self.load,
            "runtime_s": round(self.runtime_s, 1),
            "energy_wh": round(self.energy_wh, 1),
            "energy_measured": self.energy_measured,
            "switch_ons": self.switch_ons,
            "short_cycles": self.short_cycles,
            "stops": {s.event: s.count for s in self.stops},
            "stop_reasons": {s.event: list(s.last_reasons) for s in self.stops},
        }
