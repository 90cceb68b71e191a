"""What one evaluation knows before it judges any load: the facts of the tick (fresh data, the
brake, the fail-safe, the surplus, the forecast's shift, the settle time), the conditions it
remembers between ticks, and each load's working notes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time

from emsctl import units
from emsctl.config import Config, LoadConfig
from emsctl.engine.target import MustCharge, must_charge
from emsctl.model import (
    EMS_RUNNING,
    Event,
    LoadId,
    LoadStatus,
    ReasonCode,
    Release,
    Snapshot,
)

#: Watch keys (conditions whose start time the engine remembers between ticks).
DATA_MISSING = "data_missing"


def idle_key(load: LoadId) -> str:
    return f"{load.value}.compressor_idle"


def no_car_key(load: LoadId) -> str:
    return f"{load.value}.not_drawing"


def due_key(load: LoadId) -> str:
    """Holds the deadline a wallbox's target is due for (rule 17), not a start time."""
    return f"{load.value}.target_due"


def elapsed(since: datetime | None, now: datetime) -> float:
    """Seconds from `since` to `now` (0 when never)."""
    return 0.0 if since is None else (now - since).total_seconds()


#: One reason of a verdict: its stable code and the sentence for a person.
Reason = tuple[ReasonCode, str]


@dataclass
class Judgement:
    """Working notes for one load during one evaluation; each pass adds to them.

    Reasons are only added through `add`, `first`, `extend` and `decide`, which keep
    `codes[i]` the code of `reasons[i]` (two lists rather than pairs: the verdict takes both
    as they are, and the engine runs half a million times in a year's replay).
    """

    load: LoadId
    status: LoadStatus
    cfg: LoadConfig
    gate: float
    reasons: list[str] = field(default_factory=list)
    codes: list[ReasonCode] = field(default_factory=list)
    start_ok: bool = False
    keep_ok: bool = True
    event: Event | None = None
    release: Release | None = None
    cooldown_s: float = 0.0
    hold_until: datetime | None = None
    #: A person, the owner or a lost device decided this tick (the rules are not asked).
    decided: bool = False
    #: Arming long enough: competes for the tick's start slot (rule 4).
    candidate_start: bool = False
    #: off_delay and min_on satisfied, or the fail-safe's turn: competes for the shed slot.
    candidate_shed: bool = False
    failsafe_shed: bool = False

    def add(self, code: ReasonCode, text: str) -> None:
        """One more reason, after those already given."""
        self.codes.append(code)
        self.reasons.append(text)

    def first(self, code: ReasonCode, text: str) -> None:
        """The reason that decides the transition: before those already given."""
        self.codes.insert(0, code)
        self.reasons.insert(0, text)

    def extend(self, reasons: list[Reason]) -> None:
        for code, text in reasons:
            self.add(code, text)

    def decide(self, event: Event | None, code: ReasonCode, text: str) -> None:
        """A person's (or a device's) decision: its reason replaces the rules' reasons."""
        self.event = event
        self.release = None
        self.decided = True
        self.codes = [code]
        self.reasons = [text]


@dataclass
class Facts:
    """What every pass of one evaluation shares."""

    snapshot: Snapshot
    config: Config
    now: datetime
    #: `now` as local time of day (control.timezone), for the car charging windows.
    local: time
    #: The local day of `now`, for the starts per day (rule 18).
    today: date
    watch: Mapping[str, datetime]
    order: list[LoadId]
    fresh: bool
    brake: bool
    brake_reason: str
    failsafe: bool
    missing_for: float
    surplus: float | None
    shift: float
    shift_reason: str | None
    settle_note: str | None
    #: Wallboxes that charge regardless of surplus this tick (rules 15, 17).
    must: Mapping[LoadId, MustCharge] = field(default_factory=dict)
    #: What loads that want to start may use (rule 2), None without fresh data.
    budget: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def soc(self) -> float | None:
        return self.snapshot.soc_pct


def forecast_shift(snapshot: Snapshot, config: Config) -> tuple[float, str | None]:
    """Rule 14: how many percent to lower the gates, and why."""
    fc = snapshot.forecast
    c = config.control
    if fc is None or snapshot.soc_pct is None or c.forecast_gate_shift_pct <= 0:
        return 0.0, None
    room_wh = c.battery_capacity_wh * max(0.0, 100.0 - snapshot.soc_pct) / 100.0
    need_wh = room_wh * c.forecast_margin
    if fc.remaining_today_wh < need_wh:
        return 0.0, None
    return c.forecast_gate_shift_pct, (
        f"forecast {units.energy(fc.remaining_today_wh)} left today >= "
        f"{c.forecast_margin:g} x battery room {units.energy(room_wh)}"
    )


def effective_gate(cfg: LoadConfig, config: Config, shift: float) -> float:
    """The load's SOC gate after the forecast shift, never within reach of the brake."""
    if shift <= 0:
        return cfg.gate_pct
    floor = config.control.brake_soc + 2 * config.control.gate_hysteresis_pct
    return max(cfg.gate_pct - shift, min(cfg.gate_pct, floor))


def musts(
    statuses: Mapping[LoadId, LoadStatus],
    config: Config,
    now: datetime,
    local: time,
    watch: Mapping[str, datetime],
) -> dict[LoadId, MustCharge]:
    """Rules 15 and 17: the wallboxes that charge regardless of surplus this tick."""
    out: dict[LoadId, MustCharge] = {}
    tz = config.control.tz
    for load in config.enabled_loads():
        st = statuses[load]
        due_for = watch.get(due_key(load))
        must = must_charge(st, config.loads.get(load), now, local, tz, due_for)
        if must is not None:
            out[load] = must
    return out


def not_drawing(st: LoadStatus, cfg: LoadConfig, below_w: float) -> bool:
    """Rule 11: the car draws nothing, by the wallbox's meter or, without one, by the
    estimate of charging by target (emsctl.cars.draw); False while it cannot be told."""
    if cfg.power_source == "meter":
        p = st.reading.power_w
        return p is not None and p < below_w
    return st.plan is not None and st.plan.drawing is False


def update_watch(
    snapshot: Snapshot,
    statuses: Mapping[LoadId, LoadStatus],
    config: Config,
    now: datetime,
    must: Mapping[LoadId, MustCharge],
    watch: Mapping[str, datetime],
) -> dict[str, datetime]:
    """Remember since when each timed condition holds (rules 10, 11, 13)."""
    out: dict[str, datetime] = {}

    def hold(key: str, holds: bool) -> None:
        if holds:
            out[key] = watch.get(key, now)

    hold(DATA_MISSING, snapshot.grid_w is None or snapshot.soc_pct is None)
    for load in config.enabled_loads():
        st = statuses[load]
        cfg = config.loads.get(load)
        m = must.get(load)
        deadline = st.plan.deadline if st.plan is not None else None
        if m is not None and m.code is ReasonCode.TARGET_DUE and deadline is not None:
            out[due_key(load)] = deadline
        running = st.state in EMS_RUNNING
        idle = cfg.idle_rule
        if idle is not None:
            c = snapshot.compressor_w
            hold(idle_key(load), running and c is not None and c < idle.below_w)
        no_car = cfg.no_car_rule
        if no_car is not None:
            # In its charging window (or mode now) the wallbox is not on surplus, so there is
            # nothing to hand on; the relay stays on and a car plugged in later starts at
            # once. A target's start does watch: the car it was started for may have left.
            watched = m is None or m.watch_draw
            low = running and not_drawing(st, cfg, no_car.below_w)
            hold(no_car_key(load), low and watched)
    return out


def read_facts(
    snapshot: Snapshot,
    loads: Mapping[LoadId, LoadStatus],
    config: Config,
    now: datetime,
    watch: Mapping[str, datetime],
) -> Facts:
    """The tick's facts: data freshness (rule 13), the brake (rules 6, 16), the surplus, the
    forecast's shift (rule 14) and whether the last switch still settles (rule 4)."""
    c = config.control
    local_now = now.astimezone(c.tz)
    local = local_now.time()
    must = musts(loads, config, now, local, watch)
    new_watch = update_watch(snapshot, loads, config, now, must, watch)
    soc = snapshot.soc_pct
    fresh = snapshot.grid_w is not None and soc is not None
    missing_for = elapsed(new_watch.get(DATA_MISSING), now)
    # The brake also judges the last plausible SOC while the current value is a glitch (rule 16).
    brake_soc = soc if soc is not None else snapshot.soc_held_pct
    brake_reason = (
        f"emergency brake: soc {units.percent(soc)} < {units.percent(c.brake_soc)}"
        if soc is not None
        else f"emergency brake: last plausible soc {units.percent(brake_soc or 0.0)} "
        f"< {units.percent(c.brake_soc)}"
    )
    surplus = None
    if snapshot.grid_w is not None:
        surplus = -snapshot.grid_w + (snapshot.battery_w or 0.0)
    shift, shift_reason = forecast_shift(snapshot, config)
    last_switch = max(
        (t for st in loads.values() for t in (st.on_since, st.off_since) if t is not None),
        default=None,
    )
    since_switch = elapsed(last_switch, now)
    settling = last_switch is not None and since_switch < c.settle_s
    return Facts(
        snapshot=snapshot,
        config=config,
        now=now,
        local=local,
        today=local_now.date(),
        watch=new_watch,
        must=must,
        order=config.enabled_loads(),
        fresh=fresh,
        brake=brake_soc is not None and brake_soc < c.brake_soc,
        brake_reason=brake_reason,
        failsafe=not fresh and missing_for >= c.failsafe_after_s,
        missing_for=missing_for,
        surplus=surplus,
        shift=shift,
        shift_reason=shift_reason,
        settle_note=(
            f"settling {units.duration(since_switch)} < {units.duration(c.settle_s)} "
            "after the last switch"
            if settling
            else None
        ),
    )
