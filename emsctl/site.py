"""The site: owns one machine per load and turns (Snapshot, readings, now) into commands.

Both the daemon's controller and the replay simulator drive exactly this object. It does no
I/O: transitions go to listeners, commands go back to the caller, which reports the outcome
through `confirm()`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Protocol

from statemachine import State as MachineState

from emsctl.config import Config
from emsctl.engine import evaluate
from emsctl.machines import LoadMachine
from emsctl.model import (
    OUTPUT_ON,
    UNKNOWN_READING,
    CarPlan,
    Command,
    Decision,
    Event,
    LoadId,
    LoadKind,
    LoadReading,
    LoadStatus,
    Mode,
    Override,
    PlanWord,
    Snapshot,
    State,
    Transition,
    Verdict,
)

log = logging.getLogger(__name__)


class TransitionListener(Protocol):
    def on_transition(self, t: Transition) -> None: ...


@dataclass(frozen=True, slots=True)
class TickResult:
    decision: Decision
    commands: list[Command]
    transitions: list[Transition] = field(default_factory=list)


#: Key measurements stored with every transition.
_KEY_MEASUREMENTS = ("grid_w", "soc_pct", "pv_w", "battery_w", "compressor_w", "outdoor_c")


class LoadFacts(Protocol):
    """A load's record, read-only: what the replay's quiet-tick check reads."""

    @property
    def state(self) -> State: ...

    @property
    def override(self) -> Override | None: ...

    @property
    def command_pending(self) -> bool: ...

    @property
    def cooldown_until(self) -> datetime | None: ...

    @property
    def plan(self) -> CarPlan | None: ...

    @property
    def since(self) -> datetime: ...

    @property
    def on_since(self) -> datetime | None: ...

    def starts_on(self, day: date) -> int: ...


class Site:
    """The loads of one house and their machines."""

    def __init__(
        self,
        config: Config,
        now: datetime,
        restored: Mapping[LoadId, LoadStatus] | None = None,
        listeners: Sequence[TransitionListener] = (),
        *,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        self.listeners = list(listeners)
        self.watch: dict[str, datetime] = {}
        self.last_decision: Decision | None = None
        self._pending: list[Transition] = []
        self._snapshot: Snapshot = Snapshot(at=now)
        self._logged_notes: set[str] = set()
        #: Loads whose last command failed: the failure is logged once per episode.
        self._failing: set[LoadId] = set()
        self._records: dict[LoadId, LoadStatus] = {}
        self.machines: dict[LoadId, LoadMachine] = {}
        restored = restored or {}
        for load in config.enabled_loads():
            cfg = config.loads.get(load)
            st = restored.get(load)
            record = LoadStatus(load=load, state=State.OFF, since=now)
            if st is not None:
                # The reading and a command in flight belong to the process that ended.
                record = replace(st, reading=UNKNOWN_READING, command_pending=False)
                if st.state in OUTPUT_ON and record.on_since is None:
                    # A run restored without its start: count it from the state's entry,
                    # never from now (that would restart its minimum runtime).
                    record.on_since = st.since
            self._records[load] = record
            self.machines[load] = LoadMachine(record, cfg, listeners=[_Recorder(self, load)])

    # -- queries ---------------------------------------------------------------------------

    @property
    def loads(self) -> list[LoadId]:
        """The loads this site drives, in priority order."""
        return list(self._records)

    def status(self, load: LoadId) -> LoadStatus:
        """A copy of the load's record: changing it changes nothing here."""
        return replace(self._records[load])

    def views(self) -> Mapping[LoadId, LoadFacts]:
        """The live records, read-only (for the replay's hot path, which must not copy)."""
        return MappingProxyType(self._records)

    def rebase(self, step: timedelta) -> None:
        """Shift every stored time by a wall-clock step, so that durations stay as they were."""
        for m in self._records.values():
            m.since += step
            m.on_since = _shifted(m.on_since, step)
            m.off_since = _shifted(m.off_since, step)
            m.cooldown_until = _shifted(m.cooldown_until, step)
            m.manual_until = _shifted(m.manual_until, step)
            if m.override is not None:
                m.override = replace(
                    m.override,
                    created_at=m.override.created_at + step,
                    expires_at=_shifted(m.override.expires_at, step),
                )
        # A target's deadline (the "*.target_due" memory) is a time of day the owner set, not
        # a duration: it stays where it is.
        self.watch = {
            k: t if k.endswith(".target_due") else t + step for k, t in self.watch.items()
        }

    def statuses(self) -> dict[LoadId, LoadStatus]:
        return {load: self.status(load) for load in self._records}

    # -- the tick --------------------------------------------------------------------------

    def step(
        self,
        snapshot: Snapshot,
        readings: Mapping[LoadId, LoadReading],
        now: datetime,
        plans: Mapping[LoadId, CarPlan] | None = None,
        planned: Mapping[LoadId, PlanWord] | None = None,
    ) -> TickResult:
        """Evaluate, step the machines, and say which outputs must change. `plans`: the
        wallboxes' charging plans for this tick (rule 17; emsctl.cars.keeper makes them);
        `planned`: the day-ahead plan's word on each load (rule 19; emsctl.planner)."""
        self._snapshot = snapshot
        plans = plans or {}
        planned = planned or {}
        for load, model in self._records.items():
            model.plan = plans.get(load)
            model.planned = planned.get(load)
            reading = readings.get(load, UNKNOWN_READING)
            if self.dry_run and reading.relay_on is not None:
                # Nothing is switched in a dry run: pretend the device follows our commands.
                expected = model.commanded_on
                if expected is None:
                    expected = model.state in OUTPUT_ON
                reading = replace(reading, relay_on=expected, foreign_setpoint=None)
            model.reading = reading
            if model.override is not None and not model.override.active(now):
                model.override = None
        decision = evaluate(snapshot, self.statuses(), self.config, now, self.watch)
        self.watch = dict(decision.watch)
        self.last_decision = decision
        for note in decision.notes:
            if note not in self._logged_notes:
                self._logged_notes.add(note)
                log.info("%s", note)
        for load in self.config.enabled_loads():
            verdict = decision.verdicts[load]
            if verdict.event is not None:
                self._send(load, verdict.event, verdict, now)
        transitions = self._flush()
        return TickResult(decision=decision, commands=self.commands(), transitions=transitions)

    def _send(self, load: LoadId, event: Event, verdict: Verdict, now: datetime) -> None:
        machine = self.machines[load]
        before = machine.load_model.state
        machine.send(event.value, verdict=verdict, now=now)
        if machine.load_model.state == before:
            log.debug("%s: %s refused by the machine's guards in %s", load, event, before)

    def commands(self) -> list[Command]:
        """Outputs to apply: changes, plus dead-man renewals of running relays."""
        out: list[Command] = []
        for load, m in self._records.items():
            state = m.state
            if state in (State.MANUAL, State.UNAVAILABLE):
                continue
            want = state in OUTPUT_ON
            cfg = self.config.loads.get(load)
            relay = cfg.kind is LoadKind.RELAY
            deadman = cfg.device.deadman_s if (relay and want and cfg.device.deadman_s) else None
            reason = self._reason(load)
            if m.commanded_on is None and m.reading.relay_on == want:
                m.commanded_on = want  # the device already is where we want it
            if m.commanded_on != want:
                out.append(Command(load=load, on=want, reason=reason, deadman_s=deadman))
                if self.dry_run:
                    m.commanded_on = want  # nothing is switched: the "device" follows at once
                else:
                    m.command_pending = True
            elif deadman is not None and (m.reading is None or m.reading.reachable):
                # No renewal for a device that did not answer this tick's read: it would
                # wait out a second timeout in the same tick, and the dead-man timer left
                # on the relay covers a short outage.
                out.append(
                    Command(load=load, on=True, reason=reason, deadman_s=deadman, renew=True)
                )
        return out

    def _reason(self, load: LoadId) -> str:
        d = self.last_decision
        if d is None or load not in d.verdicts:
            return ""
        return d.verdicts[load].reason

    def confirm(
        self,
        load: LoadId,
        command: Command,
        reading: LoadReading | None,
        error: str | None,
        now: datetime,
    ) -> None:
        """The actuator's outcome for `command` (reading after switching, or the error)."""
        m = self._records[load]
        m.command_pending = False
        if error is None and (reading is None or reading.relay_on == command.on):
            m.commanded_on = command.on
        if reading is not None:
            m.reading = reading
        what = "renewing the dead-man timer" if command.renew else f"switching {_on(command.on)}"
        if error is not None:
            if load not in self._failing:
                self._failing.add(load)
                log.warning("%s: %s failed: %s", load, what, error)
            else:
                log.debug("%s: %s failed again: %s", load, what, error)
        elif load in self._failing:
            self._failing.discard(load)
            log.info("%s: %s worked again", load, what)

    # -- overrides -------------------------------------------------------------------------

    def set_override(
        self,
        load: LoadId,
        override: Override | None,
        now: datetime,
        *,
        reason: str = "set to Auto by the owner",
    ) -> list[Transition]:
        """Apply an owner's override (None or AUTO = back to automatic).

        AUTO also ends a detected manual hold: the owner has looked at it. `reason` is what
        the transition back to automatic records (an override whose time ran out says so).
        """
        m = self._records[load]
        if override is None or override.mode is Mode.AUTO:
            m.override = None
            if m.state is State.MANUAL:
                self._send(
                    load, Event.MANUAL_END, Verdict.by_people(load, Event.MANUAL_END, reason), now
                )
            elif m.state in (State.FORCED_ON, State.FORCED_OFF):
                self._send(load, Event.AUTO, Verdict.by_people(load, Event.AUTO, reason), now)
        else:
            m.override = override
            if m.state is State.MANUAL:
                # The owner's explicit choice ends the hold; the override applies next step.
                m.manual_until = now
        return self._flush()

    # -- transitions -----------------------------------------------------------------------

    def _record(
        self, load: LoadId, source: str, target: str, *, event: str, verdict: Verdict, now: datetime
    ) -> None:
        snap = self._snapshot
        t = Transition(
            at=now,
            load=load,
            source=State(source),
            target=State(target),
            event=event,
            reasons=verdict.reasons,
            measurements={k: getattr(snap, k) for k in _KEY_MEASUREMENTS},
        )
        self._pending.append(t)
        if event == Event.START.value:
            self._count_start(load, now)
        log.info("%s: %s -> %s (%s): %s", load.value, source, target, event, "; ".join(t.reasons))

    def _count_start(self, load: LoadId, now: datetime) -> None:
        """Rule 18: one more start by the rules on the local day of `now`."""
        record = self._records[load]
        day = now.astimezone(self.config.control.tz).date()
        record.starts_today = record.starts_on(day) + 1
        record.starts_day = day

    def _flush(self) -> list[Transition]:
        out, self._pending = self._pending, []
        for t in out:
            for listener in self.listeners:
                listener.on_transition(t)
        return out


class _Recorder:
    """Machine listener that hands each transition to the site."""

    def __init__(self, site: Site, load: LoadId) -> None:
        self.site = site
        self.load = load

    def after_transition(
        self,
        event: str,
        source: MachineState,
        target: MachineState,
        verdict: Verdict,
        now: datetime,
    ) -> None:
        self.site._record(
            self.load,
            str(source.value),
            str(target.value),
            event=str(event),
            verdict=verdict,
            now=now,
        )


def _shifted(at: datetime | None, step: timedelta) -> datetime | None:
    return None if at is None else at + step


def _on(on: bool) -> str:
    return "on" if on else "off"
