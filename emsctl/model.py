"""Domain vocabulary shared by every layer: loads, states, snapshots, verdicts and commands.

Plain frozen dataclasses and enums; this module imports nothing of ours and does no I/O.

A verdict's reasons come twice: as sentences for people (`Verdict.reasons`, with live figures)
and as stable codes from the closed `ReasonCode` set (`Verdict.codes`, one per sentence, same
order) for metrics and tools. One code per reason, not one primary code per verdict: several
reasons hold at once and each one matters to the owner; see `Verdict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class LoadId(StrEnum):
    """The flexible loads of the house, named as in the config file."""

    SG_READY = "sg_ready"
    DHW = "dhw"
    WB_A = "wb_a"
    WB_B = "wb_b"


class LoadKind(StrEnum):
    """How a load is actuated: a relay (Shelly) or a setpoint (Viessmann DHW target)."""

    RELAY = "relay"
    SETPOINT = "setpoint"


class State(StrEnum):
    """States of a load's machine. `output_on` below says which ones drive the load on."""

    OFF = "off"
    ARMING = "arming"
    ON = "on"
    DISARMING = "disarming"
    COOLDOWN = "cooldown"
    MANUAL = "manual"
    FORCED_ON = "forced_on"
    FORCED_OFF = "forced_off"
    UNAVAILABLE = "unavailable"


#: States in which the EMS itself keeps the load running (and accounts for its power).
EMS_RUNNING: frozenset[State] = frozenset({State.ON, State.DISARMING})
#: States in which the EMS commands the output on.
OUTPUT_ON: frozenset[State] = frozenset({State.ON, State.DISARMING, State.FORCED_ON})


class Mode(StrEnum):
    """An owner's override from the UI or CLI."""

    AUTO = "auto"
    FORCE_ON = "force_on"
    FORCE_OFF = "force_off"


class Event(StrEnum):
    """Transitions the engine can ask of a machine (the machine's guards still check timers)."""

    ARM = "arm"  # off -> arming: start condition began to hold
    DISARM_START = "cancel_arm"  # arming -> off: start condition no longer holds
    START = "start"  # arming -> on: on_delay elapsed and this load holds the tick's start slot
    WEAKEN = "weaken"  # on -> disarming: stop condition began to hold
    RECOVER = "recover"  # disarming -> on: stop condition no longer holds
    SHED = "shed"  # disarming -> off (or on -> off on fail-safe): the tick's shed slot
    RELEASE = "release"  # on/disarming -> cooldown: early release (idle compressor, no car)
    BRAKE = "brake"  # any output-on state -> off: emergency brake, same tick for all
    COOL_DOWN_END = "cooldown_end"  # cooldown -> off
    DETECT_MANUAL = "detect_manual"  # * -> manual: a person switched the device
    MANUAL_END = "manual_end"  # manual -> on/off when the hold expires or on Auto
    FORCE_ON = "force_on"  # * -> forced_on
    FORCE_OFF = "force_off"  # * -> forced_off
    AUTO = "auto"  # forced_* -> on/off: override cleared or expired
    LOSE = "lose"  # * -> unavailable: the device's API is unusable until a person acts
    REGAIN = "regain"  # unavailable -> on (the device still runs our command) or off


class ChargeMode(StrEnum):
    """How a wallbox charges (rule 17), as owners know the modes from evcc."""

    OFF = "off"  # no charging at all
    SOLAR = "solar"  # on surplus only
    SOLAR_TARGET = "solar+target"  # surplus first, then what the target still needs
    NOW = "now"  # at once, whatever the surplus


class ReasonCode(StrEnum):
    """What a reason of a Verdict is about, as a stable machine code from a closed set.

    The reasons' text carries live figures ("min runtime: 3 min 12 s left"), which suits a
    person but changes every tick; a code never does, so metrics label with it and tools
    match on it. docs/decision-logic.md ("Reason codes") lists each code with its rule and an
    example text. A new kind of reason needs a new member here (and a row there); the text of
    an existing one may change freely.
    """

    SURPLUS = "surplus"  # rule 2: the surplus covers a running load, or is enough to start
    NO_SURPLUS = "no_surplus"  # rules 2, 8: too little surplus (total or on the phase)
    SOC_GATE = "soc_gate"  # rule 1: soc below the load's gate (or gate - hysteresis)
    ON_DELAY = "on_delay"  # rule 3: the start condition holds, on_delay_s not yet passed
    START_READY = "start_ready"  # rule 3: on_delay_s passed, a candidate for the start slot
    OFF_DELAY = "off_delay"  # rule 3: the stop condition holds, off_delay_s not yet passed
    SHED_READY = "shed_ready"  # rule 3: off_delay_s passed, a candidate for the shed slot
    RECOVERED = "recovered"  # rule 3: the stop condition cleared while disarming
    SETTLING = "settling"  # rule 4: the last switch still settles (settle_s)
    WAITING_FOR_SLOT = "waiting_for_slot"  # rule 4: another load has this tick's slot
    MIN_RUNTIME = "min_runtime"  # rule 5: min_on_s not yet passed
    MIN_OFF = "min_off"  # rule 5: min_off_s not yet passed
    BRAKE = "brake"  # rule 6: soc (or the last plausible soc) below brake_soc
    EXCLUSION = "exclusion"  # rule 7: an exclusive peer is on, or switching on
    OUTDOOR_LIMIT = "outdoor_limit"  # rule 9: warmer outside than the load's limit
    OUTDOOR_UNKNOWN = "outdoor_unknown"  # rule 9: no outdoor temperature to judge the limit
    COMPRESSOR_IDLE = "compressor_idle"  # rule 10: early release, the compressor idles
    CAR_NOT_CHARGING = "car_not_charging"  # rule 11: early release, the car draws nothing
    COOLDOWN = "cooldown"  # rules 10, 11: in the cooldown after a release
    COOLDOWN_OVER = "cooldown_over"  # rules 10, 11: the cooldown ended
    STALE_DATA = "stale_data"  # rule 13: grid/soc missing or stale, loads held
    FAILSAFE = "failsafe"  # rule 13: missing for failsafe_after_s, loads are shed
    FORECAST = "forecast"  # rule 14: the forecast lowered the load's gate
    CHARGING_WINDOW = "charging_window"  # rule 15: the car charging window holds
    UNREACHABLE = "unreachable"  # the device cannot be read (timeout, bad answer)
    UNAVAILABLE = "unavailable"  # the device needs a person (revoked login)
    AVAILABLE_AGAIN = "available_again"  # an unavailable device answers again
    MANUAL = "manual"  # a person switched the device; the EMS leaves it alone
    MANUAL_ENDED = "manual_ended"  # the manual hold expired
    FORCED_ON = "forced_on"  # the owner's Force on
    FORCED_OFF = "forced_off"  # the owner's Force off
    OVERRIDE_ENDED = "override_ended"  # the owner's override ended or expired
    MODE_OFF = "mode_off"  # rule 17: the wallbox's charging mode is off
    MODE_NOW = "mode_now"  # rule 17: mode now, charging regardless of surplus
    TARGET_DUE = "target_due"  # rule 17: the target's latest start has come
    TARGET_PLANNED = "target_planned"  # rule 17: surplus until the target's latest start
    TARGET_MET = "target_met"  # rule 17: the target's energy is delivered
    AWAITING_CAR = "awaiting_car"  # rule 17: no car seen, the relay stays on to see one come
    CAR_HELD = "car_held"  # rule 17: a car came and need not charge now: held at once
    MAX_STARTS = "max_starts"  # rule 18: the load started max_starts_per_day times today
    PLANNED = "planned"  # rule 19: the plan has the load on now: it starts on less surplus
    PLAN_HOLD = "plan_hold"  # rule 19: the plan keeps the surplus for the battery: no start


class Release(StrEnum):
    """Why a load was switched off outside the normal shed path."""

    BRAKE = "brake"
    COMPRESSOR_IDLE = "compressor_idle"
    CAR_NOT_CHARGING = "car_not_charging"
    FAILSAFE = "failsafe"
    EXCLUSION = "exclusion"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class LoadReading:
    """What a load's actuator reported this tick.

    `relay_on` is the device's actual output (for the DHW load: whether the boost target is
    set); None when the device could not be read. `power_w` only where a real meter exists.
    `source` is the device's report of who changed the output last (Shelly `source`).
    `error` holds the typed error's text when the device was unreachable or answered badly.
    `available` is False when the device cannot be used until a person acts (revoked login).
    """

    relay_on: bool | None = None
    power_w: float | None = None
    source: str | None = None
    error: str | None = None
    available: bool = True
    #: A value the device reports that is not ours (e.g. the DHW target set in the ViCare app).
    foreign_setpoint: float | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None and self.relay_on is not None


UNKNOWN_READING = LoadReading(error="not read")


@dataclass(frozen=True, slots=True)
class Override:
    """An owner's override as the engine sees it (the store keeps who and why)."""

    mode: Mode
    created_at: datetime
    expires_at: datetime | None = None  # None = until released
    created_by: str = "ui"

    def active(self, now: datetime) -> bool:
        return self.mode is not Mode.AUTO and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class CarPlan:
    """A wallbox's charging plan at one tick (rule 17), made outside the engine from the
    owner's target, a learned habit or the default, and the session so far (emsctl.cars).

    `need_wh` is what the car still needs by `deadline` (0: the target is met; no deadline:
    no target). `drawing` is whether the car draws now as far as the EMS can tell (the meter,
    or an estimate from the house's consumption for a wallbox without one); None while the
    relay is off or nothing is known. `power_w` is the power it charges with, as last seen.
    """

    mode: ChargeMode
    deadline: datetime | None = None
    need_wh: float = 0.0
    #: Where the target comes from, for the reasons ("one-off", "weekly", "learned", ...).
    source: str = ""
    drawing: bool | None = None
    power_w: float | None = None
    #: No car is known to be there: keep the relay on, so that one that comes is seen (a
    #: relay wallbox sees a car only while it may draw).
    awaiting: bool = False
    #: A car just came to the relay kept on for it: if it need not charge now, switch off at
    #: once rather than after the off-delay.
    hold: bool = False
    #: The forecast leaves surplus to wait for before the deadline (or there is no forecast).
    #: Without it, waiting gains nothing and risks the target: the target is due at once.
    sun_ahead: bool = True


@dataclass(frozen=True, slots=True)
class PlanWord:
    """What the day-ahead plan says of one load at one tick (rule 19; emsctl.planner makes it).

    `on`: the current slot is planned on, so the load may start on `start_w` of surplus (less
    than its ordinary threshold) and keep running while the surplus covers all but
    `tolerated_w` of it. `hold`: the current slot is not planned and the energy now is not
    spare by the plan (the battery needs it), so the load waits. `text` is the plan's reason
    for a person ("planned 11:00-13:30: battery full by 12:15 anyway").
    """

    on: bool
    hold: bool
    start_w: float
    tolerated_w: float
    text: str


@dataclass(slots=True)
class LoadStatus:
    """The one record of a load: its machine's state and timers, the owner's override and the
    device's last reading — everything the engine needs besides the house's measurements.

    The site's machine keeps it current (it is the machine's model); everyone else gets a copy
    (`Site.status`) or reads it through a read-only view (`Site.views`).
    """

    load: LoadId
    state: State
    since: datetime  # when the machine entered `state`
    reading: LoadReading = UNKNOWN_READING
    #: Start of the current EMS-driven run (on/disarming/forced_on); None when off.
    on_since: datetime | None = None
    #: When the output last went off (for min_off_s); None when never seen on.
    off_since: datetime | None = None
    #: The output the EMS last commanded and saw confirmed; None before the first command.
    commanded_on: bool | None = None
    #: A command was sent but not yet confirmed by a read-back.
    command_pending: bool = False
    cooldown_until: datetime | None = None
    manual_until: datetime | None = None
    override: Override | None = None
    #: A wallbox's charging plan for this tick (None: no plan, the window rules alone).
    plan: CarPlan | None = None
    #: The day-ahead plan's word on this load for this tick (None: no plan, the rules alone).
    planned: PlanWord | None = None
    #: The rules' starts (event start) on `starts_day`, a local day (rule 18).
    starts_today: int = 0
    starts_day: date | None = None

    def starts_on(self, day: date) -> int:
        """The rules' starts on local `day` (0 when the count belongs to another day)."""
        return self.starts_today if self.starts_day == day else 0


@dataclass(frozen=True, slots=True)
class Forecast:
    """The strategic layer's input: PV still expected today, from a cached forecast.

    `slot_wh` is the forecast's shape for the planner: the PV energy expected in each
    FORECAST_SLOT_S slot from `slots_start` (a slot boundary, UTC) on, as far ahead as the
    source reaches (today and tomorrow for forecast.solar). Empty when the source gives no
    shape; then the planner has nothing to plan with and the rules act alone.
    """

    fetched_at: datetime
    remaining_today_wh: float
    slots_start: datetime | None = None
    slot_wh: tuple[float, ...] = ()


#: Length of one forecast and plan slot, seconds.
FORECAST_SLOT_S = 900


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The house as seen at one tick. A missing or stale value is None, never zero.

    Signs: grid positive = import; battery positive = charging.
    `ages_s` holds the age of each measurement that was present (also for stale ones, so the
    UI can show how old they are).
    """

    at: datetime
    grid_w: float | None = None
    grid_l1_w: float | None = None
    grid_l2_w: float | None = None
    grid_l3_w: float | None = None
    soc_pct: float | None = None
    pv_w: float | None = None
    battery_w: float | None = None
    compressor_w: float | None = None
    outdoor_c: float | None = None
    dhw_c: float | None = None
    ages_s: Mapping[str, float] = field(default_factory=dict)
    forecast: Forecast | None = None
    #: While `soc_pct` is implausible (rule 16): the last plausible SOC, for the brake only.
    soc_held_pct: float | None = None

    def phase_w(self, phase: str) -> float | None:
        if phase == "L1":
            return self.grid_l1_w
        if phase == "L2":
            return self.grid_l2_w
        if phase == "L3":
            return self.grid_l3_w
        raise ValueError(f"unknown phase {phase!r}")


#: Names of the Snapshot's measurements, in display order.
MEASUREMENTS: tuple[str, ...] = (
    "grid_w",
    "grid_l1_w",
    "grid_l2_w",
    "grid_l3_w",
    "soc_pct",
    "pv_w",
    "battery_w",
    "compressor_w",
    "outdoor_c",
    "dhw_c",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The engine's judgement of one load at one tick.

    `start_ok`/`keep_ok` are the raw conditions; `event` is the transition the engine wants
    (None = stay). `reasons` are short human sentences for log, store and UI; `codes` holds
    the ReasonCode of each, in the same order (`codes[i]` is what `reasons[i]` is about).

    Why a code per reason rather than one primary code: a verdict often has several reasons
    that all hold (soc below the gate *and* min_off running *and* an exclusive peer on), and
    which one "decides" depends on the order the passes ran in, not on the house; the metric
    `ems_load_reason_info{load, code}` shows each of them, as the UI shows each sentence. Two
    parallel tuples rather than pairs keep `reasons` as it was for the log, store and UI.
    The engine adds each reason with its code in one call (`Judgement.add`), so the two
    always match (tests/unit/test_engine_properties.py checks it); `codes` is empty only for
    a verdict the engine did not make (the site's own, for an owner's Auto), which never
    reaches the metrics.
    """

    load: LoadId
    event: Event | None
    start_ok: bool
    keep_ok: bool
    reasons: tuple[str, ...]
    gate_pct: float
    surplus_w: float | None
    codes: tuple[ReasonCode, ...] = ()
    release: Release | None = None
    #: Seconds of cooldown after a release.
    cooldown_s: float = 0.0
    #: For MANUAL: until when the EMS leaves the load alone.
    hold_until: datetime | None = None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @classmethod
    def by_people(cls, load: LoadId, event: Event, reason: str) -> Verdict:
        """A transition the owner asks for outside the engine's evaluation (Auto pressed):
        the machine and the record keep it with this reason."""
        return cls(load, event, False, True, (reason,), 0.0, None)


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of one evaluation: a verdict per load, plus the engine's running memory.

    `watch` maps condition names to the time they started holding (compressor idle, car not
    drawing, data missing); the caller passes it back on the next evaluation.
    """

    verdicts: Mapping[LoadId, Verdict]
    watch: Mapping[str, datetime]
    surplus_w: float | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    """An output the actuator layer must apply. `deadman_s` asks the device to switch itself
    off after that many seconds unless renewed (None for a person's own switching)."""

    load: LoadId
    on: bool
    reason: str
    deadman_s: int | None = None
    renew: bool = False  # True when only refreshing the dead-man timer of a running load


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of a load's machine, as persisted and shown to the owner."""

    at: datetime
    load: LoadId
    source: State
    target: State
    event: str
    reasons: tuple[str, ...]
    measurements: Mapping[str, float | None] = field(default_factory=dict)
