"""Rule 16: measurements outside their physical range are glitches, so they count as missing.

Pure: the controller calls `screen` on every snapshot and reading and keeps the one piece of
state the rule needs, the last plausible state of charge (`SocMemory`) for the brake.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from emsctl.config import Limits, PlausibilityConfig
from emsctl.model import MEASUREMENTS, LoadReading, Snapshot

_PHASES = frozenset({"grid_l1_w", "grid_l2_w", "grid_l3_w"})


def limits_of(name: str, cfg: PlausibilityConfig) -> Limits:
    """The limits that apply to a Snapshot measurement."""
    limits: Limits = cfg.grid_phase_w if name in _PHASES else getattr(cfg, name)
    return limits


def plausible(value: float, limits: Limits) -> bool:
    return math.isfinite(value) and limits.min <= value <= limits.max


def screen(snapshot: Snapshot, cfg: PlausibilityConfig) -> tuple[Snapshot, dict[str, float]]:
    """The snapshot with every implausible value set to None, and those values by name."""
    bad: dict[str, float] = {}
    for name in MEASUREMENTS:
        value = getattr(snapshot, name)
        if value is not None and not plausible(value, limits_of(name, cfg)):
            bad[name] = value
    if not bad:
        return snapshot, bad
    cleared: dict[str, Any] = dict.fromkeys(bad)
    return replace(snapshot, **cleared), bad


def screen_reading(reading: LoadReading, cfg: PlausibilityConfig) -> tuple[LoadReading, bool]:
    """A device reading with an implausible power set to None; True when it was."""
    p = reading.power_w
    if p is None or plausible(p, cfg.load_power_w):
        return reading, False
    return replace(reading, power_w=None), True


class SocMemory:
    """The last plausible state of charge, offered to the brake while the current one is not.

    A battery does not empty in minutes: for up to `max_age_s` the last plausible value is a
    sound basis to shed loads on (never to start one: starts need the current value).
    """

    def __init__(self, max_age_s: float) -> None:
        self.max_age = timedelta(seconds=max_age_s)
        self._last: tuple[datetime, float] | None = None

    def update(self, snapshot: Snapshot, implausible: bool) -> Snapshot:
        """Remember a plausible SOC; with an implausible one, attach the remembered value."""
        if snapshot.soc_pct is not None:
            self._last = (snapshot.at, snapshot.soc_pct)
            return snapshot
        if not implausible or self._last is None:
            return snapshot
        at, soc = self._last
        if snapshot.at - at > self.max_age:
            return snapshot
        return replace(snapshot, soc_held_pct=soc)
