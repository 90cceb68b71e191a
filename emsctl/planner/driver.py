"""When to plan and what to plan with: the Planner keeps the current plan, makes a new one when
it is due (every `planner.every_s`, a new forecast, a run began or ended, a waiting car's need
changed), and gives the engine each load's word. Pure: `now` and the measurements come from
the caller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from emsctl.config import Config
from emsctl.model import (
    FORECAST_SLOT_S,
    OUTPUT_ON,
    ChargeMode,
    Forecast,
    LoadId,
    PlanWord,
    Snapshot,
)
from emsctl.planner.greedy import make_plan
from emsctl.planner.profile import LoadProfile
from emsctl.planner.types import BatteryModel, CarClaim, FlexLoad, Plan, PlanInput
from emsctl.planner.words import word
from emsctl.site import LoadFacts


@dataclass(frozen=True, slots=True)
class _Key:
    """What a plan was made for: a new one is due when any of it changes."""

    fetched_at: datetime | None
    running: frozenset[LoadId]
    starts: tuple[int, ...]
    #: Each waiting car's need, to the kWh, and deadline.
    cars: tuple[tuple[int, datetime | None], ...] = ()


class Planner:
    """The plan of one house, renewed as its inputs change."""

    def __init__(self, config: Config, profile: LoadProfile | None = None) -> None:
        self.config = config
        p = config.planner
        self.cfg = p
        self.tz = config.control.tz
        self.profile = profile or LoadProfile(self.tz, p.default_load_w)
        self.battery = BatteryModel(
            capacity_wh=config.control.battery_capacity_wh,
            reserve_wh=p.battery_reserve_wh,
            max_charge_w=p.battery_max_charge_w,
            max_discharge_w=p.battery_max_discharge_w,
            efficiency=p.battery_efficiency,
            inverter_ac_w=p.inverter_ac_w,
        )
        self.loads = [
            load
            for load in config.enabled_loads()
            if p.blocks_per_day.get(load, 0) > 0 and config.loads.get(load).car_charging is None
        ]
        self.plan: Plan | None = None
        self.made = 0
        self.failed: str | None = None
        self._key: _Key | None = None
        self._tried_at: datetime | None = None

    def due(self, now: datetime, fc: Forecast | None, statuses: Mapping[LoadId, LoadFacts]) -> bool:
        # After a plan that could not be made, again after every_s or when an input changes.
        plan = self.plan  # read once: a planner thread swaps it whole
        last = plan.made_at if plan is not None else self._tried_at
        if last is None or (now - last).total_seconds() >= self.cfg.every_s:
            return True
        return self._key != self._key_of(now, fc, statuses)

    def _key_of(
        self, now: datetime, fc: Forecast | None, statuses: Mapping[LoadId, LoadFacts]
    ) -> _Key:
        today = now.astimezone(self.tz).date()
        running = frozenset(x for x in self.loads if statuses[x].state in OUTPUT_ON)
        starts = tuple(statuses[x].starts_on(today) for x in self.loads)
        cars = tuple(
            (int(st.plan.need_wh // 1000), st.plan.deadline)
            for st in statuses.values()
            if st.plan is not None and not st.plan.awaiting
        )
        return _Key(fc.fetched_at if fc is not None else None, running, starts, cars)

    def update(
        self,
        now: datetime,
        snapshot: Snapshot,
        statuses: Mapping[LoadId, LoadFacts],
    ) -> Plan | None:
        """A new plan when one is due and the inputs allow it; the plan in force."""
        fc = snapshot.forecast
        if not self.due(now, fc, statuses):
            return self.current(now)
        self._key = self._key_of(now, fc, statuses)
        self._tried_at = now
        inp = self.inputs(now, snapshot, statuses)
        if inp is None:
            self.plan = None
            return None
        plan = self.plan = make_plan(inp, now)
        self.made += 1
        self.failed = None
        return plan

    def current(self, now: datetime) -> Plan | None:
        """The plan in force, or None when there is none or it is stale."""
        plan = self.plan  # read once: a planner thread swaps it whole
        return plan if self.fresh(plan, now) else None

    def fresh(self, plan: Plan | None, now: datetime) -> bool:
        """Whether `plan` may be followed at `now` (there is one and it is not stale)."""
        return plan is not None and (now - plan.made_at).total_seconds() <= self.cfg.stale_s

    def inputs(
        self, now: datetime, snapshot: Snapshot, statuses: Mapping[LoadId, LoadFacts]
    ) -> PlanInput | None:
        """What to plan with, or None (and `failed` says why) when a plan cannot be made."""
        fc = snapshot.forecast
        soc = snapshot.soc_pct
        if fc is None or fc.slots_start is None or not fc.slot_wh:
            self.failed = "no forecast of the day's shape"
            return None
        if soc is None:
            self.failed = "no state of charge"
            return None
        start = _slot_floor(now)
        skip = int((start - fc.slots_start).total_seconds() // FORECAST_SLOT_S)
        n = min(len(fc.slot_wh) - skip, int(self.cfg.horizon_h * 3600 // FORECAST_SLOT_S))
        if skip < 0 or n < 4:
            self.failed = "the forecast does not cover the next hour"
            return None
        pv = tuple(fc.slot_wh[skip : skip + n])
        today = now.astimezone(self.tz).date()
        days = _days(start, n, self.tz, today)
        flex = tuple(self._flex(load, statuses[load], days[-1] + 1, now) for load in self.loads)
        return PlanInput(
            start=start,
            pv_wh=pv,
            load_wh=self.profile.expect_wh(start, n),
            day=days,
            stored_wh=self.battery.capacity_wh * soc / 100.0,
            battery=self.battery,
            loads=flex,
            min_spare=self.cfg.min_spare,
            start_fraction=self.cfg.start_fraction,
            import_eur_kwh=self.config.tariff.import_eur_kwh,
            feed_in_eur_kwh=self.config.tariff.feed_in_eur_kwh,
            cars=self._cars(statuses, start, n),
        )

    def _cars(
        self, statuses: Mapping[LoadId, LoadFacts], start: datetime, n: int
    ) -> tuple[CarClaim, ...]:
        """The cars that wait for surplus (rule 17) and what they still need before when."""
        out: list[CarClaim] = []
        for load, st in statuses.items():
            plan = st.plan
            if plan is None or plan.awaiting or plan.need_wh <= 0 or plan.deadline is None:
                continue
            if plan.mode not in (ChargeMode.SOLAR, ChargeMode.SOLAR_TARGET):
                continue
            until = int((plan.deadline - start).total_seconds() // FORECAST_SLOT_S)
            power = plan.power_w or self.config.loads.get(load).nominal_w
            out.append(CarClaim(power, plan.need_wh, max(0, min(n, until))))
        return tuple(out)

    def _flex(self, load: LoadId, st: LoadFacts, ndays: int, now: datetime) -> FlexLoad:
        cfg = self.config.loads.get(load)
        per_day = self.cfg.blocks_per_day.get(load, 0)
        most = cfg.max_starts_per_day
        today = now.astimezone(self.tz).date()
        left = per_day if most is None else min(per_day, most - st.starts_on(today))
        # A run going on now counts against today's blocks: it is one of them.
        if st.state in OUTPUT_ON:
            left -= 1
        blocks = (max(0, left),) + (per_day if most is None else min(per_day, most),) * (ndays - 1)
        size = max(1, -(-int(cfg.min_on_s) // FORECAST_SLOT_S))
        gap = -(-int(cfg.min_off_s + self._cooldown(load)) // FORECAST_SLOT_S)
        running = 0
        if st.state in OUTPUT_ON:
            # The run goes on at least to its minimum runtime, and through this slot.
            since = st.since if st.on_since is None else st.on_since
            to_go = cfg.min_on_s - (now - since).total_seconds()
            into_slot = now.timestamp() % FORECAST_SLOT_S
            running = max(1, -(-int(to_go + into_slot) // FORECAST_SLOT_S))
        gate_wh = self.battery.capacity_wh * cfg.gate_pct / 100.0
        return FlexLoad(load, cfg.nominal_w, size, gap, blocks, running, gate_wh)

    def _cooldown(self, load: LoadId) -> float:
        secs = self.config.loads.get(load).release_cooldown_s
        return secs or 0.0

    def words(self, now: datetime) -> dict[LoadId, PlanWord]:
        """Each planned load's word for this tick (none without a plan in force)."""
        plan = self.current(now)
        if plan is None:
            return {}
        out: dict[LoadId, PlanWord] = {}
        for load in self.loads:
            w = word(
                plan,
                load,
                now,
                nominal_w=self.config.loads.get(load).nominal_w,
                start_fraction=self.cfg.start_fraction,
                min_spare=self.cfg.min_spare,
                tz=self.tz,
            )
            if w is not None:
                if w.hold and not self.cfg.hold:
                    w = replace(w, hold=False)
                out[load] = w
        return out


def _slot_floor(at: datetime) -> datetime:
    ts = int(at.timestamp())
    return datetime.fromtimestamp(ts - ts % FORECAST_SLOT_S, tz=at.tzinfo)


def _days(start: datetime, n: int, tz: ZoneInfo, today: date) -> tuple[int, ...]:
    """The local day of each of `n` slots from `start`, 0 for `today`."""
    step = timedelta(seconds=FORECAST_SLOT_S)
    out: list[int] = []
    k = 0
    base = today.toordinal()
    while k < n:
        at = start + k * step
        day = at.astimezone(tz).date()
        midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
        upto = min(n, k + int((midnight - at).total_seconds() // FORECAST_SLOT_S))
        out.extend([day.toordinal() - base] * max(1, upto - k))
        k = max(upto, k + 1)
    return tuple(out[:n])
