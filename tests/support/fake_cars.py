"""Charging by target as the fake controller plays it: the owner's settings in a
MemoryCarStore, checked the way the controller checks them, and a CarView per wallbox.

Each wallbox has a car: WB A's is metered and charging (4.2 kWh so far, Mon-Fri ~11 kWh
learned), WB B's has no meter and waits (~4.2 kWh, estimated). The target in force follows
the owner's one-off target, then the weekly schedule, then WB A's learned energy, then the
default (emsctl.cars.plan itself); the latest start and the expected finish are worked out
from the wallbox's nominal power like the keeper does. A test may pin a wallbox's whole view
in `views`, or make the next setting fail with `refuse`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from emsctl.cars.habits import Habit, Habits
from emsctl.cars.memory import MemoryCarStore
from emsctl.cars.plan import Target, target_in_force
from emsctl.config import CarCharging, Config
from emsctl.controller import one_off_target, weekly_target
from emsctl.model import ChargeMode, LoadId
from emsctl.status import CarSettingError, CarView

#: The energy each wallbox's car has taken in this session so far.
SESSION_WH = 4200.0
#: WB A's learned energy, Monday to Friday.
LEARNED_WH = 11_000.0


@dataclass(frozen=True, slots=True)
class FakeCar:
    started_ago: timedelta
    drawing: bool
    estimated: bool
    learned: bool


CARS: dict[LoadId, FakeCar] = {
    LoadId.WB_A: FakeCar(timedelta(hours=2), drawing=True, estimated=False, learned=True),
    LoadId.WB_B: FakeCar(timedelta(hours=3), drawing=False, estimated=True, learned=False),
}


class FakeCars:
    """The three setters of emsctl.status.ControllerHandle and the wallboxes' views."""

    def __init__(self, config: Config, now: Callable[[], datetime]) -> None:
        self.config = config
        self.now = now
        self.store = MemoryCarStore()
        #: A wallbox's view as a test wants it, instead of the one worked out here.
        self.views: dict[LoadId, CarView] = {}
        #: The message of a CarSettingError the next setting raises (then cleared).
        self.refuse: str | None = None
        #: (load, what, by) of every setting stored, in order.
        self.calls: list[tuple[LoadId, str, str]] = []

    def charging(self, load: LoadId) -> CarCharging:
        """The wallbox's charging config; refused as the controller refuses it."""
        cfg = self.config.loads.get(load)
        if load not in self.config.enabled_loads() or cfg.car_charging is None:
            raise CarSettingError(f"{load.value} does not charge by target")
        if self.refuse is not None:
            message, self.refuse = self.refuse, None
            raise CarSettingError(message)
        return cfg.car_charging

    def set_car_mode(self, load: LoadId, mode: ChargeMode | None, by: str) -> None:
        self.charging(load)
        self.store.set_car_mode(load, mode, by, self.now())
        self.calls.append((load, "mode", by))

    def set_car_target(
        self, load: LoadId, by_time: datetime | None, energy_wh: float | None, by: str
    ) -> None:
        self.charging(load)
        now = self.now()
        target = one_off_target(by_time, energy_wh, now, by)
        self.store.set_one_off_target(load, target, by, now)
        self.calls.append((load, "target", by))

    def set_weekly_target(
        self, load: LoadId, weekday: int, at: time | None, energy_wh: float | None, by: str
    ) -> None:
        self.charging(load)
        entry = weekly_target(weekday, at, energy_wh)
        self.store.set_weekly_target(load, weekday, entry, by, self.now())
        self.calls.append((load, "weekly", by))

    def view(self, load: LoadId, now: datetime) -> CarView | None:
        cfg = self.config.loads.get(load)
        charging = cfg.car_charging
        if charging is None or load not in CARS:
            return None
        if load in self.views:
            return self.views[load]
        car = CARS[load]
        settings = self.store.car_settings(load)
        mode = settings.mode or charging.mode
        target = self._target(load, charging, now)
        need = max(0.0, target.energy_wh - SESSION_WH)
        hours = need / cfg.nominal_w
        latest = target.deadline - timedelta(
            hours=hours * charging.reserve_factor, seconds=charging.reserve_s
        )
        begin = now if car.drawing else max(now, latest)
        learned_days = tuple((d, LEARNED_WH) for d in range(5)) if car.learned else ()
        return CarView(
            mode=mode,
            mode_from="owner" if settings.mode is not None else "config",
            target_source=target.source,
            deadline=target.deadline,
            target_wh=target.energy_wh,
            need_wh=need,
            latest_start=latest,
            expected_finish=begin + timedelta(hours=hours),
            session_started=now - car.started_ago,
            session_wh=SESSION_WH,
            estimated=car.estimated,
            drawing=car.drawing,
            learned="learned: Mon-Fri ~11 kWh" if car.learned else None,
            learned_days=learned_days,
            one_off=settings.one_off,
            weekly=settings.weekly,
            battery_kwh=charging.battery_kwh,
        )

    def _target(self, load: LoadId, charging: CarCharging, now: datetime) -> Target:
        habits = Habits()
        if CARS[load].learned:
            habits = Habits({d: Habit(d, 5, LEARNED_WH) for d in range(5)})
        settings = self.store.car_settings(load)
        return target_in_force(settings, habits, charging, self.config.control.tz, now)
