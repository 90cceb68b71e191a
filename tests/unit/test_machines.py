"""The load state machine on its own: every transition, the timer guards at their boundaries
(the second line of defence behind the engine), and the bookkeeping of entry times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from emsctl.machines import LoadMachine
from emsctl.model import Event, LoadId, LoadReading, LoadStatus, Release, State, Verdict

from .corekit import CFG, T0, WA, s

WA_CFG = CFG.loads.wb_a  # on_delay 240, off_delay 360, min_on 900, min_off 300
HOUR_AGO = T0 - s(3600)


def _verdict(
    release: Release | None = None, cooldown_s: float = 0.0, hold_until: datetime | None = None
) -> Verdict:
    return Verdict(
        load=WA,
        event=None,
        start_ok=True,
        keep_ok=True,
        reasons=("test",),
        gate_pct=70.0,
        surplus_w=0.0,
        release=release,
        cooldown_s=cooldown_s,
        hold_until=hold_until,
    )


class _Listener:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def after_transition(self, event: str, source: Any, target: Any) -> None:
        self.seen.append((event, source.value, target.value))


def machine(state: State = State.OFF, **fields: Any) -> LoadMachine:
    fields.setdefault("since", HOUR_AGO)
    return LoadMachine(LoadStatus(load=WA, state=state, **fields), WA_CFG)


def send(m: LoadMachine, event: Event, now: datetime = T0, verdict: Verdict | None = None) -> State:
    m.send(event.value, verdict=verdict or _verdict(), now=now)
    return State(m.load_model.state)


# --------------------------------------------------------------------------- restoring


def test_a_machine_starts_in_the_state_its_model_holds() -> None:
    assert State(machine().load_model.state) is State.OFF
    m = machine(State.DISARMING, on_since=HOUR_AGO)
    assert m.DISARMING.is_active and m.current_state_value is State.DISARMING
    assert send(m, Event.RECOVER) is State.ON


# --------------------------------------------------------------------------- hysteresis


def test_arm_and_cancel() -> None:
    m = machine()
    assert send(m, Event.ARM) is State.ARMING
    assert m.load_model.since == T0
    assert send(m, Event.DISARM_START, T0 + s(60)) is State.OFF


@pytest.mark.parametrize(("armed_s", "started"), [(239, False), (240, True), (241, True)])
def test_start_is_refused_before_on_delay(armed_s: float, started: bool) -> None:
    m = machine(State.ARMING, since=T0 - s(armed_s))
    assert send(m, Event.START) is (State.ON if started else State.ARMING)


@pytest.mark.parametrize(("off_s", "started"), [(299, False), (300, True), (301, True)])
def test_start_is_refused_before_min_off(off_s: float, started: bool) -> None:
    m = machine(State.ARMING, since=HOUR_AGO, off_since=T0 - s(off_s))
    assert send(m, Event.START) is (State.ON if started else State.ARMING)


def test_start_records_the_run_start() -> None:
    m = machine(State.ARMING, off_since=HOUR_AGO)
    send(m, Event.START)
    assert (m.load_model.since, m.load_model.on_since, m.load_model.off_since) == (
        T0,
        T0,
        HOUR_AGO,
    )


def test_weaken_and_recover_keep_the_run_start() -> None:
    m = machine(State.ON, on_since=HOUR_AGO)
    assert send(m, Event.WEAKEN) is State.DISARMING
    assert send(m, Event.RECOVER, T0 + s(60)) is State.ON
    assert m.load_model.on_since == HOUR_AGO
    assert m.load_model.since == T0 + s(60)


@pytest.mark.parametrize(
    ("weak_s", "on_s", "shed"),
    [(359, 3600, False), (360, 899, False), (360, 900, True)],
)
def test_shed_needs_off_delay_and_min_on(weak_s: float, on_s: float, shed: bool) -> None:
    m = machine(State.DISARMING, since=T0 - s(weak_s), on_since=T0 - s(on_s))
    assert send(m, Event.SHED) is (State.OFF if shed else State.DISARMING)
    if shed:
        assert m.load_model.on_since is None
        assert m.load_model.off_since == T0


def test_min_on_of_a_run_restored_without_its_start_counts_from_the_state_entry() -> None:
    m = machine(State.DISARMING, since=T0 - s(899), on_since=None)
    assert send(m, Event.SHED) is State.DISARMING
    m = machine(State.DISARMING, since=T0 - s(900), on_since=None)
    assert send(m, Event.SHED) is State.OFF


@pytest.mark.parametrize(
    ("release", "on_s", "shed"),
    [(None, 3600, False), (Release.FAILSAFE, 899, False), (Release.FAILSAFE, 900, True)],
)
def test_shed_straight_from_on_only_for_the_fail_safe(
    release: Release | None, on_s: float, shed: bool
) -> None:
    m = machine(State.ON, since=T0 - s(on_s), on_since=T0 - s(on_s))
    assert send(m, Event.SHED, verdict=_verdict(release)) is (State.OFF if shed else State.ON)


# --------------------------------------------------------------------------- releases, brake


@pytest.mark.parametrize("state", [State.ON, State.DISARMING])
@pytest.mark.parametrize("release", [Release.COMPRESSOR_IDLE, Release.CAR_NOT_CHARGING])
def test_early_release_ignores_min_on_and_starts_the_cooldown(
    state: State, release: Release
) -> None:
    m = machine(state, since=T0 - s(10), on_since=T0 - s(10))
    assert send(m, Event.RELEASE, verdict=_verdict(release, cooldown_s=3600)) is State.COOLDOWN
    assert m.load_model.cooldown_until == T0 + s(3600)
    assert m.load_model.off_since == T0


@pytest.mark.parametrize("release", [None, Release.BRAKE, Release.FAILSAFE, Release.EXCLUSION])
def test_release_without_an_early_release_reason_is_refused(release: Release | None) -> None:
    m = machine(State.ON, on_since=HOUR_AGO)
    assert send(m, Event.RELEASE, verdict=_verdict(release)) is State.ON


@pytest.mark.parametrize(("left_s", "over"), [(1, False), (0, True), (-1, True)])
def test_cooldown_ends_only_when_it_is_over(left_s: float, over: bool) -> None:
    m = machine(State.COOLDOWN, cooldown_until=T0 + s(left_s))
    assert send(m, Event.COOL_DOWN_END) is (State.OFF if over else State.COOLDOWN)
    if over:
        assert m.load_model.cooldown_until is None


def test_cooldown_without_an_end_is_over() -> None:
    assert send(machine(State.COOLDOWN), Event.COOL_DOWN_END) is State.OFF


@pytest.mark.parametrize("state", [State.ON, State.DISARMING, State.FORCED_ON])
def test_brake_switches_off_ignoring_min_on(state: State) -> None:
    m = machine(state, since=T0 - s(5), on_since=T0 - s(5))
    assert send(m, Event.BRAKE, verdict=_verdict(Release.BRAKE)) is State.OFF
    assert m.load_model.off_since == T0


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (State.OFF, Event.START),
        (State.OFF, Event.BRAKE),
        (State.OFF, Event.SHED),
        (State.ARMING, Event.WEAKEN),
        (State.MANUAL, Event.FORCE_ON),
        (State.MANUAL, Event.BRAKE),
        (State.UNAVAILABLE, Event.ARM),
    ],
)
def test_an_event_that_does_not_apply_in_a_state_changes_nothing(
    state: State, event: Event
) -> None:
    m = machine(state)
    assert send(m, event) is state
    assert m.load_model.since == HOUR_AGO


# --------------------------------------------------------------------------- people


@pytest.mark.parametrize(
    "state",
    [
        State.OFF,
        State.ARMING,
        State.ON,
        State.DISARMING,
        State.COOLDOWN,
        State.FORCED_ON,
        State.FORCED_OFF,
    ],
)
def test_a_person_takes_over_from_any_state(state: State) -> None:
    m = machine(state, on_since=HOUR_AGO, commanded_on=True, cooldown_until=T0 + s(60))
    hold = T0 + s(14400)
    assert send(m, Event.DETECT_MANUAL, verdict=_verdict(hold_until=hold)) is State.MANUAL
    assert m.load_model.manual_until == hold
    # From now on the device's own state is the reference, not the EMS's last command.
    assert m.load_model.commanded_on is None
    assert m.load_model.cooldown_until is None


@pytest.mark.parametrize(
    ("relay_on", "target"), [(True, State.ON), (False, State.OFF), (None, State.OFF)]
)
def test_manual_end_adopts_the_relay_as_it_is(relay_on: bool | None, target: State) -> None:
    m = machine(State.MANUAL, manual_until=T0, off_since=HOUR_AGO)
    m.load_model.reading = LoadReading(relay_on=relay_on)
    assert send(m, Event.MANUAL_END) is target
    assert m.load_model.manual_until is None
    # An adopted load's minimum runtime starts at adoption.
    assert m.load_model.on_since == (T0 if target is State.ON else None)


def test_manual_end_without_any_reading_goes_off() -> None:
    m = machine(State.MANUAL, manual_until=T0)
    assert send(m, Event.MANUAL_END) is State.OFF


@pytest.mark.parametrize(
    "state", [State.OFF, State.ARMING, State.ON, State.DISARMING, State.COOLDOWN, State.FORCED_OFF]
)
def test_force_on_from_any_automatic_state(state: State) -> None:
    m = machine(state, on_since=HOUR_AGO if state in (State.ON, State.DISARMING) else None)
    assert send(m, Event.FORCE_ON) is State.FORCED_ON
    # A running load keeps its run start; one that was off starts its run now.
    expected = HOUR_AGO if state in (State.ON, State.DISARMING) else T0
    assert m.load_model.on_since == expected


@pytest.mark.parametrize(
    "state", [State.OFF, State.ARMING, State.ON, State.DISARMING, State.COOLDOWN, State.FORCED_ON]
)
def test_force_off_from_any_automatic_state(state: State) -> None:
    m = machine(state)
    assert send(m, Event.FORCE_OFF) is State.FORCED_OFF


def test_auto_hands_forced_loads_back() -> None:
    m = machine(State.FORCED_ON, on_since=HOUR_AGO)
    assert send(m, Event.AUTO) is State.ON
    assert m.load_model.on_since == HOUR_AGO  # the run goes on: min_on counts from the force
    assert send(machine(State.FORCED_OFF), Event.AUTO) is State.OFF


@pytest.mark.parametrize("state", [st for st in State if st is not State.UNAVAILABLE])
def test_lose_and_regain(state: State) -> None:
    m = machine(state)
    assert send(m, Event.LOSE) is State.UNAVAILABLE
    assert send(m, Event.REGAIN, T0 + s(60)) is State.OFF


@pytest.mark.parametrize(
    ("relay_on", "commanded_on", "target"),
    [
        (True, True, State.ON),  # still runs our command: it goes on running
        (False, True, State.OFF),  # it stopped meanwhile (dead-man timer, restart)
        (True, None, State.OFF),  # on, but not by our command: the engine judges a person
        (True, False, State.OFF),
        (None, True, State.OFF),  # no reading of the output
    ],
)
def test_regain_resumes_only_a_run_the_device_still_holds_by_our_command(
    relay_on: bool | None, commanded_on: bool | None, target: State
) -> None:
    m = machine(State.ON, on_since=HOUR_AGO, commanded_on=commanded_on)
    assert send(m, Event.LOSE) is State.UNAVAILABLE
    m.load_model.reading = LoadReading(relay_on=relay_on)
    assert send(m, Event.REGAIN, T0 + s(60)) is target
    if target is State.ON:
        # min_on counts from the run's real start, not from the regain
        assert m.load_model.on_since == HOUR_AGO
        assert m.min_on_elapsed(T0 + s(61))
    else:
        assert m.load_model.on_since is None


def test_listeners_see_every_transition_with_its_event() -> None:
    listener = _Listener()
    m = LoadMachine(
        LoadStatus(load=LoadId.WB_A, state=State.OFF, since=HOUR_AGO), WA_CFG, listeners=[listener]
    )
    send(m, Event.ARM)
    send(m, Event.START, T0 + s(10))  # refused: not heard
    send(m, Event.START, T0 + s(240))
    assert listener.seen == [("arm", "off", "arming"), ("start", "arming", "on")]
