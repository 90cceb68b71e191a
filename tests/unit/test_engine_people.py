"""What the engine does around people: detected manual switching, the owner's overrides,
cooldowns and devices that need a person (unavailable)."""

from __future__ import annotations

import pytest

from emsctl.engine import evaluate, manual_change, relay_expected
from emsctl.model import Event, LoadReading, LoadStatus, Mode, Override, State

from .corekit import (
    CFG,
    DHW,
    SG,
    T0,
    WA,
    WB,
    decide,
    reading,
    s,
    snap,
    status,
    statuses,
    verdict,
)

HOUR_AGO = T0 - s(3600)


def _ov(mode: Mode, expires_in: float | None = None) -> Override:
    expires = None if expires_in is None else T0 + s(expires_in)
    return Override(mode=mode, created_at=T0 - s(60), expires_at=expires)


# --------------------------------------------------------------------------- manual detection


@pytest.mark.parametrize(
    ("st", "why"),
    [
        (
            status(WA, State.OFF, read=reading(True, source="button")),
            "switched on by hand (button)",
        ),
        (status(WA, State.ON, since=HOUR_AGO, read=reading(False)), "switched off by hand"),
        (
            # A dead-man timer does not switch a relay on: that was a person.
            status(WA, State.OFF, read=reading(True, source="timer")),
            "switched on by hand (timer)",
        ),
        (
            status(WA, State.FORCED_OFF, read=reading(True, source="app")),
            "switched on by hand (app)",
        ),
        (
            status(DHW, State.OFF, read=reading(False, foreign_setpoint=55.0)),
            "target set to 55 by someone else",
        ),
    ],
    ids=["on_by_button", "off_by_hand", "on_with_timer_source", "against_force_off", "dhw_app"],
)
def test_a_read_back_the_ems_did_not_command_is_a_person(st: LoadStatus, why: str) -> None:
    assert manual_change(st) == why
    v = verdict(decide(snap(grid=-5000, soc=95), statuses(st)), st.load)
    assert v.event is Event.DETECT_MANUAL
    assert v.hold_until == T0 + s(14400)
    assert v.reasons == (f"{why}; leaving it alone for 4 h",)


@pytest.mark.parametrize(
    "st",
    [
        status(WA, State.ON, since=HOUR_AGO),  # agrees
        status(WA, State.OFF, read=reading(True), command_pending=True),  # our command in flight
        status(WA, State.ON, since=HOUR_AGO, read=reading(False, source="timer")),  # dead-man
        status(WA, State.ON, since=HOUR_AGO, read=reading(False, source="init")),  # power cut
        status(WA, State.OFF, read=reading(True, source="ems")),  # our own, after a restart
        status(WA, State.OFF, read=reading(None, error="timeout")),  # unknown
        status(WA, State.MANUAL, read=reading(True), manual_until=T0 + s(60)),  # already manual
    ],
    ids=[
        "agrees",
        "pending",
        "deadman_timer",
        "power_cut_init",
        "ours_after_restart",
        "unreadable",
        "already_manual",
    ],
)
def test_no_person_is_seen_where_the_device_can_explain_itself(st: LoadStatus) -> None:
    assert manual_change(st) is None
    assert verdict(decide(snap(grid=-500, soc=95), statuses(st)), WA).event is not (
        Event.DETECT_MANUAL
    )


def test_before_the_first_command_the_state_tells_what_the_relay_should_be() -> None:
    # Restored `on` after a restart, no command confirmed yet.
    on = status(WA, State.ON, since=HOUR_AGO, commanded_on=None, read=reading(True))
    assert relay_expected(on) is True
    assert manual_change(on) is None
    off_by_hand = status(WA, State.ON, since=HOUR_AGO, read=reading(False))
    off_by_hand = LoadStatus(**{**_fields(off_by_hand), "commanded_on": None})
    assert manual_change(off_by_hand) == "switched off by hand"


def test_the_last_command_wins_over_the_state_for_the_expected_relay() -> None:
    # The machine went off this tick, the off command is not confirmed yet: relay still on.
    st = status(WA, State.OFF, read=reading(True), commanded_on=True)
    assert relay_expected(st) is True
    assert manual_change(st) is None


def _fields(st: LoadStatus) -> dict[str, object]:
    return {name: getattr(st, name) for name in st.__slots__}


def test_a_person_beats_an_active_override() -> None:
    st = status(
        WB, State.FORCED_ON, since=HOUR_AGO, read=reading(False), override=_ov(Mode.FORCE_ON)
    )
    assert verdict(decide(snap(), statuses(st)), WB).event is Event.DETECT_MANUAL


@pytest.mark.parametrize(
    ("left_s", "event"), [(1, None), (0, Event.MANUAL_END), (-1, Event.MANUAL_END)]
)
def test_manual_hold_ends_at_manual_until(left_s: float, event: Event | None) -> None:
    st = status(WA, State.MANUAL, since=HOUR_AGO, relay_on=True, manual_until=T0 + s(left_s))
    v = verdict(decide(snap(), statuses(st)), WA)
    assert v.event is event
    if event is None:
        assert v.reasons == ("manual: EMS leaves it alone (1 s left)",)
    else:
        assert v.reasons == ("manual hold expired",)


def test_manual_without_an_end_is_held_from_its_start_for_manual_hold_s() -> None:
    st = status(WA, State.MANUAL, since=T0 - s(14399), relay_on=True)
    assert verdict(decide(snap(), statuses(st)), WA).reasons == (
        "manual: EMS leaves it alone (1 s left)",
    )
    st = status(WA, State.MANUAL, since=T0 - s(14400), relay_on=True)
    assert verdict(decide(snap(), statuses(st)), WA).event is Event.MANUAL_END


def test_manual_hold_end_waits_for_a_reading_of_the_device() -> None:
    # Ending the hold adopts the relay as it is; unknown is not "off".
    st = status(WA, State.MANUAL, read=reading(None, error="timeout"), manual_until=T0)
    v = verdict(decide(snap(), statuses(st)), WA)
    assert v.event is None
    assert v.reasons == ("manual hold expired; waiting for a reading of the device (timeout)",)


def test_manual_load_is_left_alone_by_every_rule() -> None:
    st = status(WA, State.MANUAL, since=HOUR_AGO, relay_on=True, manual_until=T0 + s(600))
    for sn in (snap(soc=30), snap(grid=None), snap(grid=5000)):
        assert verdict(decide(sn, statuses(st)), WA).event is None


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    "state", [State.OFF, State.ARMING, State.ON, State.DISARMING, State.COOLDOWN]
)
def test_force_off_switches_off_from_any_automatic_state(state: State) -> None:
    st = status(WA, state, since=T0 - s(30), override=_ov(Mode.FORCE_OFF))
    v = verdict(decide(snap(), statuses(st)), WA)
    assert v.event is Event.FORCE_OFF
    assert v.reasons[-1] == "forced off by the owner"


def test_force_on_switches_on_from_any_automatic_state_ignoring_rules() -> None:
    # 1 kW import, SOC below WB B's gate, just switched (settling), min_off not over.
    for state in (State.OFF, State.ARMING, State.ON, State.COOLDOWN, State.FORCED_OFF):
        st = status(WB, state, since=T0 - s(30), off_since=T0 - s(30), override=_ov(Mode.FORCE_ON))
        v = verdict(decide(snap(grid=1000, soc=50), statuses(st)), WB)
        assert v.event is Event.FORCE_ON, state
        assert v.reasons[-1] == "forced on by the owner"


def test_forced_states_stay_while_the_override_holds() -> None:
    st = status(WB, State.FORCED_ON, since=HOUR_AGO, override=_ov(Mode.FORCE_ON, 1))
    assert verdict(decide(snap(grid=5000, soc=50), statuses(st)), WB).event is None
    st = status(WB, State.FORCED_OFF, since=HOUR_AGO, override=_ov(Mode.FORCE_OFF))
    assert verdict(decide(snap(grid=-9000, soc=99), statuses(st)), WB).event is None


@pytest.mark.parametrize("state", [State.FORCED_ON, State.FORCED_OFF])
@pytest.mark.parametrize(
    "override",
    [None, _ov(Mode.FORCE_ON, 0), _ov(Mode.AUTO)],
    ids=["cleared", "expired_now", "auto"],
)
def test_forced_state_returns_to_automatic_when_the_override_ends(
    state: State, override: Override | None
) -> None:
    st = status(WB, state, since=HOUR_AGO, override=override)
    v = verdict(decide(snap(), statuses(st)), WB)
    assert v.event is Event.AUTO
    assert v.reasons == ("override ended",)


def test_override_is_active_until_its_expiry() -> None:
    ov = _ov(Mode.FORCE_ON, 60)
    assert ov.active(T0 + s(59))
    assert not ov.active(T0 + s(60))
    assert _ov(Mode.FORCE_OFF).active(T0 + s(10**8))
    assert not _ov(Mode.AUTO).active(T0)


# --------------------------------------------------------------------------- cooldown


@pytest.mark.parametrize(
    ("left_s", "event"), [(1, None), (0, Event.COOL_DOWN_END), (-1, Event.COOL_DOWN_END)]
)
def test_cooldown_ends_at_cooldown_until(left_s: float, event: Event | None) -> None:
    st = status(SG, State.COOLDOWN, since=HOUR_AGO, cooldown_until=T0 + s(left_s))
    v = verdict(decide(snap(grid=-5000, soc=90), statuses(st)), SG)
    assert v.event is event
    assert not v.start_ok
    assert v.reasons == (("cooldown: 1 s left",) if event is None else ("cooldown over",))


def test_cooldown_without_an_end_is_over() -> None:
    st = status(SG, State.COOLDOWN, since=HOUR_AGO)
    assert verdict(decide(snap(), statuses(st)), SG).event is Event.COOL_DOWN_END


# --------------------------------------------------------------------------- unavailable


@pytest.mark.parametrize("load", [DHW, WA])
def test_a_device_that_needs_a_person_makes_its_load_unavailable(load: object) -> None:
    bad = LoadReading(available=False, error="login revoked: run emsctl viessmann login")
    st = status(load, State.ON, since=HOUR_AGO, read=bad)  # type: ignore[arg-type]
    v = verdict(decide(snap(), statuses(st)), load)  # type: ignore[arg-type]
    assert v.event is Event.LOSE
    assert v.reasons == ("login revoked: run emsctl viessmann login",)
    st = status(load, State.UNAVAILABLE, since=HOUR_AGO, read=bad)  # type: ignore[arg-type]
    assert verdict(decide(snap(), statuses(st)), load).event is None  # type: ignore[arg-type]


def test_an_off_load_whose_device_is_unavailable_does_not_start() -> None:
    st = status(DHW, State.OFF, read=LoadReading(available=False))
    v = verdict(decide(snap(grid=-5000, soc=90), statuses(st)), DHW)
    assert not v.start_ok
    assert v.event is Event.LOSE
    assert "device unavailable" in v.reasons


def test_unavailable_load_returns_to_off_when_its_device_answers() -> None:
    st = status(DHW, State.UNAVAILABLE, since=HOUR_AGO, read=reading(False))
    v = verdict(decide(snap(grid=-5000, soc=90), statuses(st)), DHW)
    assert v.event is Event.REGAIN
    assert v.reasons == ("device available again",)


def test_unreachable_device_does_not_start() -> None:
    st = status(WA, State.ARMING, since=HOUR_AGO, read=LoadReading())
    v = verdict(decide(snap(grid=-9000, soc=95), statuses(st)), WA)
    assert v.event is Event.DISARM_START
    assert "device unreachable: no reading" in v.reasons


# --------------------------------------------------------------------------- determinism


def test_evaluation_does_not_depend_on_the_order_of_the_statuses() -> None:
    sts = statuses(
        status(SG, State.ARMING, since=T0 - s(300)),
        status(WA, State.DISARMING, since=T0 - s(400), on_since=HOUR_AGO, power_w=2000),
    )
    reverse = dict(reversed(list(sts.items())))
    sn = snap(grid=-2000, soc=80)
    assert evaluate(sn, sts, CFG, T0) == evaluate(sn, reverse, CFG, T0)


def test_a_relay_back_on_after_a_power_cut_is_still_a_person() -> None:
    # "init" only explains a relay that came back OFF; one that is on was switched by hand.
    st = status(WA, State.OFF, read=reading(True, source="init"))
    assert manual_change(st) == "switched on by hand (init)"
