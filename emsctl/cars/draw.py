"""Whether the car at a wallbox draws, and with what power: by the wallbox's meter, or for a
wallbox without one by the step in the house's consumption when it switches or the car starts
or stops (a car on a relay wallbox draws about the wallbox's nominal power or nothing).

An estimate can be fooled by a house load of a few kW that starts at the wrong moment, so a
step counts only when it is about the wallbox's nominal power, a start only when the step
holds on two ticks in a row, and the step down when the relay switches off checks it: no
step down, no car (`off_verdict` False).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: A step between these shares of the nominal power is the car starting or stopping: a car
#: on a relay wallbox draws its nominal power, a house load's step is any size.
STEP_SHARE = 0.75
STEP_MAX_SHARE = 1.3
#: How long after switching a car may take to show in the measurements before it counts as
#: not drawing (a car wakes up in seconds; the measurements reach Prometheus a scrape later).
JUDGE_S = 150.0


@dataclass(slots=True)
class DrawWatch:
    """One wallbox's car, tick by tick. `drawing` None: cannot be told (relay off, or just
    switched on and still judging, or no data); `power_w` the car's power while it draws
    (metered, or the nominal power for an estimate). After the relay went off with a car
    believed to draw, `off_verdict` says once whether the step down confirmed it."""

    nominal_w: float
    metered: bool
    below_w: float = 100.0
    drawing: bool | None = None
    power_w: float | None = None
    #: When the relay was last seen switching on (None while off).
    on_since: datetime | None = None
    #: Set once after a switch-off of a drawing car: True confirmed, False no car was there.
    off_verdict: bool | None = None
    #: When the car began to draw, as well as it can be told: the switch-on when the step
    #: came while judging it, else the first tick of the step (a start is confirmed a tick
    #: later, and the tick before it is energy too).
    drawing_since: datetime | None = None
    _base_w: float | None = None
    _last_w: float | None = None
    _was_on: bool = False
    _rising: bool = False
    _low: bool = False
    _rise_at: datetime | None = None
    _now: datetime | None = None
    _prev_at: datetime | None = None
    _off_at: datetime | None = None
    _on_w: float | None = None

    @property
    def estimated(self) -> bool:
        return not self.metered

    def observe(
        self, now: datetime, relay_on: bool | None, meter_w: float | None, rest_w: float | None
    ) -> None:
        """This tick's relay state, the wallbox's metered power (None without a meter or a
        reading) and the house's consumption without the loads EMS knows the power of."""
        self.off_verdict = None
        if relay_on is None:
            return  # the device was not read: nothing new
        self._prev_at, self._now = self._now, now
        if not relay_on:
            self._off(now, rest_w)
            return
        if not self._was_on:
            self._was_on = True
            self.on_since = now
            self.drawing = None
            self._rising = self._low = False
            self._off_at = None
        judged = self.on_since is None or (now - self.on_since).total_seconds() >= JUDGE_S
        if self.metered:
            self._metered(meter_w, judged)
        else:
            self._stepped(rest_w, judged)

    def _off(self, now: datetime, rest_w: float | None) -> None:
        if self._was_on:
            self._was_on = False
            if self.drawing and not self.metered:
                self._off_at, self._on_w = now, self._last_w
            elif self.drawing:
                self.off_verdict = True
        self.on_since = None
        self.drawing = None
        self.power_w = None
        if self._off_at is not None and rest_w is not None and self._on_w is not None:
            if self._is_step(self._on_w - rest_w):
                self.off_verdict, self._off_at = True, None
            elif (now - self._off_at).total_seconds() >= JUDGE_S:
                self.off_verdict, self._off_at = False, None
        if rest_w is not None:
            self._base_w = rest_w
        self._last_w = rest_w

    def _metered(self, meter_w: float | None, judged: bool) -> None:
        if meter_w is None:
            return
        if meter_w >= self.below_w:
            if not self.drawing:
                self.drawing_since = self._now
            self.drawing, self.power_w = True, meter_w
        elif judged or self.drawing:
            self.drawing, self.power_w = False, None

    def _is_step(self, watts: float) -> bool:
        return STEP_SHARE * self.nominal_w <= watts <= STEP_MAX_SHARE * self.nominal_w

    def _stepped(self, rest_w: float | None, judged: bool) -> None:
        if rest_w is None:
            return
        last, self._last_w = self._last_w, rest_w
        if self.drawing:
            # A step down of the car's size; or, should that step have been lost among other
            # changes, a consumption too low to hold the car for two ticks in a row.
            low = rest_w < STEP_SHARE * self.nominal_w
            if (last is not None and self._is_step(last - rest_w)) or (low and self._low):
                self.drawing = False
            self._low = low
        else:
            ref = self._base_w if self.drawing is None else last
            up = ref is not None and self._is_step(rest_w - ref)
            if up and self._rising:
                self.drawing = True
                self._rising = False
                self.drawing_since = self._rise_at
            elif up:
                # Once more on the next tick: a house load's short spike is not a car.
                self._rising = True
                self._rise_at = self.on_since if self.drawing is None else self._prev_at
                if self.drawing is False:
                    self._last_w = last
            else:
                self._rising = False
                if self.drawing is None and judged:
                    self.drawing = False
        self.power_w = self.nominal_w if self.drawing else None
