"""The load state machine (python-statemachine); guards check the timers the rules rely on.

Relay loads and the DHW setpoint load share one machine: they behave the same at the state
level, and what differs (dead-man renewals, write intervals) lives in the commands/actuators.

The machines hold state and timestamps on a `LoadModel`; they never read the wall clock (every
event carries `now`) and never do I/O (persistence attaches as a listener).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from statemachine import State as S
from statemachine import StateMachine

from emsctl.config import LoadConfig
from emsctl.model import OUTPUT_ON, LoadId, LoadReading, Override, Release, State, Verdict


@dataclass
class LoadModel:
    """The persisted facts of one load; the machine keeps `state` here."""

    load: LoadId
    state: str
    since: datetime
    on_since: datetime | None = None
    off_since: datetime | None = None
    cooldown_until: datetime | None = None
    manual_until: datetime | None = None
    commanded_on: bool | None = None
    command_pending: bool = False
    override: Override | None = None
    reading: LoadReading | None = None


class LoadMachine(StateMachine):
    """One flexible load: SG-Ready, the DHW boost, a wallbox.

    Hysteresis is the time spent in `arming` (on_delay_s) and `disarming` (off_delay_s);
    minimum runtime guards leaving `on`/`disarming` except by brake, early release or a person.
    """

    allow_event_without_transition = True

    off = S("off", value="off", initial=True)
    arming = S("arming", value="arming")
    on = S("on", value="on")
    disarming = S("disarming", value="disarming")
    cooldown = S("cooldown", value="cooldown")
    manual = S("manual", value="manual")
    forced_on = S("forced on", value="forced_on")
    forced_off = S("forced off", value="forced_off")
    unavailable = S("unavailable", value="unavailable")

    arm = off.to(arming)
    cancel_arm = arming.to(off)
    start = arming.to(on, cond=["on_delay_elapsed", "min_off_elapsed"])
    weaken = on.to(disarming)
    recover = disarming.to(on)
    shed = disarming.to(off, cond=["off_delay_elapsed", "min_on_elapsed"]) | on.to(
        off, cond=["is_failsafe", "min_on_elapsed"]
    )
    release = on.to(cooldown, cond="is_early_release") | disarming.to(
        cooldown, cond="is_early_release"
    )
    brake = on.to(off) | disarming.to(off) | forced_on.to(off)
    cooldown_end = cooldown.to(off, cond="cooldown_over")
    detect_manual = (
        off.to(manual)
        | arming.to(manual)
        | on.to(manual)
        | disarming.to(manual)
        | cooldown.to(manual)
        | forced_on.to(manual)
        | forced_off.to(manual)
    )
    manual_end = manual.to(on, cond="relay_is_on") | manual.to(off)
    force_on = (
        off.to(forced_on)
        | arming.to(forced_on)
        | on.to(forced_on)
        | disarming.to(forced_on)
        | cooldown.to(forced_on)
        | forced_off.to(forced_on)
    )
    force_off = (
        off.to(forced_off)
        | arming.to(forced_off)
        | on.to(forced_off)
        | disarming.to(forced_off)
        | cooldown.to(forced_off)
        | forced_on.to(forced_off)
    )
    auto = forced_on.to(on) | forced_off.to(off)
    lose = (
        off.to(unavailable)
        | arming.to(unavailable)
        | on.to(unavailable)
        | disarming.to(unavailable)
        | cooldown.to(unavailable)
        | manual.to(unavailable)
        | forced_on.to(unavailable)
        | forced_off.to(unavailable)
    )
    # A device that still runs what the EMS commanded before it was lost (the DHW boost
    # after a restored login, a relay whose dead-man timer has not run out) goes on
    # running: switching it off to start it again would cost a cycle.
    regain = unavailable.to(on, cond="runs_our_command") | unavailable.to(off)

    def __init__(self, model: LoadModel, cfg: LoadConfig, listeners: list[Any] | None = None):
        self.cfg = cfg
        super().__init__(model=model, state_field="state", listeners=listeners or [])

    @property
    def load_model(self) -> LoadModel:
        m: LoadModel = self.model
        return m

    # -- guards: timers ------------------------------------------------------------------

    def _for(self, since: datetime, now: datetime) -> float:
        return (now - since).total_seconds()

    def on_delay_elapsed(self, now: datetime) -> bool:
        return self._for(self.load_model.since, now) >= self.cfg.on_delay_s

    def off_delay_elapsed(self, now: datetime) -> bool:
        return self._for(self.load_model.since, now) >= self.cfg.off_delay_s

    def min_on_elapsed(self, now: datetime) -> bool:
        # A run restored without its start counts from the state's entry, never from "now".
        m = self.load_model
        return self._for(m.on_since or m.since, now) >= self.cfg.min_on_s

    def min_off_elapsed(self, now: datetime) -> bool:
        off = self.load_model.off_since
        return off is None or self._for(off, now) >= self.cfg.min_off_s

    def cooldown_over(self, now: datetime) -> bool:
        until = self.load_model.cooldown_until
        return until is None or now >= until

    # -- guards: the verdict ---------------------------------------------------------------

    def is_failsafe(self, verdict: Verdict) -> bool:
        return verdict.release is Release.FAILSAFE

    def is_early_release(self, verdict: Verdict) -> bool:
        return verdict.release in (Release.COMPRESSOR_IDLE, Release.CAR_NOT_CHARGING)

    def relay_is_on(self) -> bool:
        reading = self.load_model.reading
        return reading is not None and reading.relay_on is True

    def runs_our_command(self) -> bool:
        return self.relay_is_on() and self.load_model.commanded_on is True

    # -- bookkeeping -------------------------------------------------------------------------

    def after_transition(self, source: S, target: S, verdict: Verdict, now: datetime) -> None:
        m = self.load_model
        # A load adopted from a person's manual switching starts its runtime at adoption.
        was_on = State(source.value) in OUTPUT_ON
        is_on = State(target.value) in OUTPUT_ON
        m.since = now
        if target.value == State.UNAVAILABLE:
            # The run's start is kept: a run the device goes on with resumes on regain with
            # its minimum runtime counted from its real start.
            if was_on:
                m.off_since = now
        elif source.value == State.UNAVAILABLE:
            if is_on:
                m.on_since = m.on_since or now
            elif m.on_since is not None:
                m.on_since = None
        elif is_on and not was_on:
            m.on_since = now
        elif was_on and not is_on:
            m.on_since = None
            m.off_since = now
        if target.value == State.COOLDOWN:
            m.cooldown_until = now + timedelta(seconds=verdict.cooldown_s)
        else:
            m.cooldown_until = None
        if target.value == State.MANUAL:
            m.manual_until = verdict.hold_until
            # From here on the device's own state is the reference, not our last command.
            m.commanded_on = None
        else:
            m.manual_until = None
