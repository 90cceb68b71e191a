"""The load state machine (python-statemachine); guards check the timers the rules rely on.

Relay loads and the DHW setpoint load share one machine: they behave the same at the state
level, and what differs (dead-man renewals, write intervals) lives in the commands/actuators.

The machines hold state and timestamps on the load's one record (`LoadStatus`, its `state` a
`State`); they never read the wall clock (every event carries `now`) and never do I/O
(persistence attaches as a listener).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from statemachine import State as MachineState
from statemachine import StateMachine
from statemachine.states import States

from emsctl.config import LoadConfig
from emsctl.model import OUTPUT_ON, LoadStatus, Release, State, Verdict


class LoadMachine(StateMachine):
    """One flexible load: SG-Ready, the DHW boost, a wallbox.

    Hysteresis is the time spent in `arming` (on_delay_s) and `disarming` (off_delay_s);
    minimum runtime guards leaving `on`/`disarming` except by brake, early release or a person.

    A `StateMachine`, not a `StateChart`: the machine is flat (no compound or parallel
    states), and an error in a guard or callback must raise where it happens rather than
    become an `error.execution` event (StateChart's default); events that do not apply in a
    state are ignored (the engine may name one a guard then refuses).
    """

    allow_event_without_transition = True

    _ = States.from_enum(State, initial=State.OFF)

    arm = _.OFF.to(_.ARMING)
    cancel_arm = _.ARMING.to(_.OFF)
    start = _.ARMING.to(_.ON, cond=["on_delay_elapsed", "min_off_elapsed"])
    weaken = _.ON.to(_.DISARMING)
    recover = _.DISARMING.to(_.ON)
    shed = _.DISARMING.to(_.OFF, cond=["off_delay_elapsed", "min_on_elapsed"]) | _.ON.to(
        _.OFF, cond=["is_failsafe", "min_on_elapsed"]
    )
    release = _.COOLDOWN.from_(_.ON, _.DISARMING, cond="is_early_release")
    brake = _.OFF.from_(_.ON, _.DISARMING, _.FORCED_ON)
    cooldown_end = _.COOLDOWN.to(_.OFF, cond="cooldown_over")
    # A person's hand, the owner's overrides and a lost device reach a load in any state the
    # EMS drives or holds.
    detect_manual = _.MANUAL.from_(
        _.OFF, _.ARMING, _.ON, _.DISARMING, _.COOLDOWN, _.FORCED_ON, _.FORCED_OFF
    )
    manual_end = _.MANUAL.to(_.ON, cond="relay_is_on") | _.MANUAL.to(_.OFF)
    force_on = _.FORCED_ON.from_(_.OFF, _.ARMING, _.ON, _.DISARMING, _.COOLDOWN, _.FORCED_OFF)
    force_off = _.FORCED_OFF.from_(_.OFF, _.ARMING, _.ON, _.DISARMING, _.COOLDOWN, _.FORCED_ON)
    auto = _.FORCED_ON.to(_.ON) | _.FORCED_OFF.to(_.OFF)
    lose = _.UNAVAILABLE.from_(
        _.OFF, _.ARMING, _.ON, _.DISARMING, _.COOLDOWN, _.MANUAL, _.FORCED_ON, _.FORCED_OFF
    )
    # A device that still runs what the EMS commanded before it was lost (the DHW boost
    # after a restored login, a relay whose dead-man timer has not run out) goes on
    # running: switching it off to start it again would cost a cycle.
    regain = _.UNAVAILABLE.to(_.ON, cond="runs_our_command") | _.UNAVAILABLE.to(_.OFF)

    def __init__(self, model: LoadStatus, cfg: LoadConfig, listeners: list[Any] | None = None):
        self.cfg = cfg
        super().__init__(model=model, state_field="state", listeners=listeners or [])

    @property
    def load_model(self) -> LoadStatus:
        m: LoadStatus = self.model
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
        return verdict.release in (Release.COMPRESSOR_IDLE, Release.CAR_NOT_CHARGING, Release.HOLD)

    def relay_is_on(self) -> bool:
        return self.load_model.reading.relay_on is True

    def runs_our_command(self) -> bool:
        return self.relay_is_on() and self.load_model.commanded_on is True

    # -- bookkeeping -------------------------------------------------------------------------

    def after_transition(
        self, source: MachineState, target: MachineState, verdict: Verdict, now: datetime
    ) -> None:
        m = self.load_model
        # A load adopted from a person's manual switching starts its runtime at adoption.
        was_on = source.value in OUTPUT_ON
        is_on = target.value in OUTPUT_ON
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
