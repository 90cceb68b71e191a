"""The house's consumption as the plan expects it: a mean per day kind (weekday, Saturday,
Sunday) and 15-minute slot of the local day, learned from what was measured, recent weeks
weighted more (an exponential mean over the days of that kind)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from emsctl.model import FORECAST_SLOT_S
from emsctl.planner.types import SLOT_H

SLOTS_PER_DAY = 86400 // FORECAST_SLOT_S


def day_kind(weekday: int) -> int:
    """0 Monday to Friday, 1 Saturday, 2 Sunday."""
    return 0 if weekday < 5 else weekday - 4


class LoadProfile:
    """Consumption (W) per day kind and slot of the day. `add` takes measurements in time
    order; a slot's mean enters the profile when the slot is over."""

    #: Weight of a new day in the mean: for weekdays about the last two weeks count most.
    ALPHA = 0.15

    def __init__(self, tz: ZoneInfo, default_w: float) -> None:
        self.tz = tz
        self.default_w = default_w
        self.mean: list[list[float | None]] = [[None] * SLOTS_PER_DAY for _ in range(3)]
        self._slot: tuple[int, int] | None = None  # (kind, slot) being summed
        self._slot_end: datetime | None = None
        self._sum = 0.0
        self._count = 0

    def add(self, at: datetime, consumption_w: float) -> None:
        """One measurement of the house's total consumption at `at`."""
        if self._slot_end is None or at >= self._slot_end:
            self._close()
            local = at.astimezone(self.tz)
            slot = (local.hour * 3600 + local.minute * 60) // FORECAST_SLOT_S
            self._slot = (day_kind(local.weekday()), slot)
            start = at - timedelta(seconds=(local.minute * 60 + local.second) % FORECAST_SLOT_S)
            self._slot_end = start.replace(microsecond=0) + timedelta(seconds=FORECAST_SLOT_S)
        self._sum += consumption_w
        self._count += 1

    def _close(self) -> None:
        if self._slot is None or self._count == 0:
            return
        kind, slot = self._slot
        value = self._sum / self._count
        old = self.mean[kind][slot]
        self.mean[kind][slot] = value if old is None else old + self.ALPHA * (value - old)
        self._sum, self._count = 0.0, 0

    def expect_w(self, at: datetime) -> float:
        """The expected consumption in the slot holding `at`."""
        local = at.astimezone(self.tz)
        slot = (local.hour * 3600 + local.minute * 60) // FORECAST_SLOT_S
        v = self.mean[day_kind(local.weekday())][slot]
        if v is None:
            v = self.mean[0][slot]
        return self.default_w if v is None else v

    def expect_wh(self, start: datetime, n: int) -> tuple[float, ...]:
        """Expected Wh in each of `n` slots from `start` (a slot boundary)."""
        step = timedelta(seconds=FORECAST_SLOT_S)
        end = start + n * step
        if start.astimezone(self.tz).utcoffset() != end.astimezone(self.tz).utcoffset():
            # The clocks change within the horizon: each slot on its own local time.
            return tuple(self.expect_w(start + k * step) * SLOT_H for k in range(n))
        local = start.astimezone(self.tz)
        slot = (local.hour * 3600 + local.minute * 60) // FORECAST_SLOT_S
        weekday = local.weekday()
        out: list[float] = []
        mean, default = self.mean, self.default_w
        for _ in range(n):
            v = mean[day_kind(weekday)][slot]
            if v is None:
                v = mean[0][slot]
            out.append((default if v is None else v) * SLOT_H)
            slot += 1
            if slot == SLOTS_PER_DAY:
                slot, weekday = 0, (weekday + 1) % 7
        return tuple(out)
