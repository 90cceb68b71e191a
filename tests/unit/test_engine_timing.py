"""Engine rules 3, 4, 5 and 13 at their boundaries: on/off delays, one start and one shed per
tick, settling, minimum runtimes and stale data with its fail-safe."""

from __future__ import annotations

import pytest

from emsctl.engine import DATA_MISSING
from emsctl.model import Event, Release, State
from emsctl.units import duration

from .corekit import (
    DHW,
    SG,
    T0,
    WA,
    WB,
    decide,
    loads_patch,
    make_config,
    s,
    snap,
    status,
    statuses,
    verdict,
)

HOUR_AGO = T0 - s(3600)

# --------------------------------------------------------------------------- rule 3: hysteresis


def test_start_condition_arms_an_off_load() -> None:
    v = verdict(decide(snap(grid=-2000, soc=60)), SG)
    assert v.event is Event.ARM
    assert v.reasons == ("surplus 2.0 kW >= start 2.0 kW",)


@pytest.mark.parametrize(
    ("armed_s", "event"), [(239, None), (240, Event.START), (241, Event.START)]
)
def test_arming_load_starts_once_on_delay_has_passed(armed_s: float, event: Event | None) -> None:
    sts = statuses(status(SG, State.ARMING, since=T0 - s(armed_s)))
    v = verdict(decide(snap(grid=-2000, soc=60), sts), SG)
    assert v.event is event
    if event is None:
        assert "start condition held 3 min 59 s of 4 min" in v.reasons
    else:
        assert f"start condition held {duration(armed_s)}" in v.reasons


def test_arming_load_falls_back_to_off_when_the_start_condition_breaks() -> None:
    sts = statuses(status(SG, State.ARMING, since=T0 - s(200)))
    v = verdict(decide(snap(grid=-1999, soc=60), sts), SG)
    assert v.event is Event.DISARM_START
    assert not v.start_ok


def test_running_load_disarms_when_the_stop_condition_begins() -> None:
    sts = statuses(status(SG, State.ON, since=HOUR_AGO))
    assert verdict(decide(snap(grid=301, soc=60, compressor=2000), sts), SG).event is Event.WEAKEN


def test_disarming_load_recovers_when_the_stop_condition_clears() -> None:
    sts = statuses(status(SG, State.DISARMING, since=T0 - s(300), on_since=HOUR_AGO))
    v = verdict(decide(snap(grid=300, soc=60, compressor=2000), sts), SG)
    assert v.event is Event.RECOVER
    assert "stop condition cleared" in v.reasons


@pytest.mark.parametrize(("weak_s", "event"), [(359, None), (360, Event.SHED), (361, Event.SHED)])
def test_disarming_load_is_shed_once_off_delay_has_passed(
    weak_s: float, event: Event | None
) -> None:
    sts = statuses(status(SG, State.DISARMING, since=T0 - s(weak_s), on_since=HOUR_AGO))
    v = verdict(decide(snap(grid=1000, soc=60, compressor=2000), sts), SG)
    assert v.event is event
    assert v.release is None
    if event is None:
        assert "stop condition held 5 min 59 s of 6 min" in v.reasons


# ------------------------------------------------------------------ rule 5: minimum runtimes


@pytest.mark.parametrize(("on_s", "event"), [(1799, None), (1800, Event.SHED), (1801, Event.SHED)])
def test_shed_waits_for_the_minimum_runtime(on_s: float, event: Event | None) -> None:
    # SG-Ready: min_on 1800 s; the stop condition has held far longer than off_delay.
    sts = statuses(status(SG, State.DISARMING, since=T0 - s(400), on_since=T0 - s(on_s)))
    v = verdict(decide(snap(grid=1000, soc=60, compressor=2000), sts), SG)
    assert v.event is event
    if event is None:
        assert "min runtime: 1 s left" in v.reasons


@pytest.mark.parametrize(("off_s", "ok"), [(599, False), (600, True), (601, True)])
def test_start_waits_for_the_minimum_off_time(off_s: float, ok: bool) -> None:
    sts = statuses(status(SG, State.OFF, since=T0 - s(off_s), off_since=T0 - s(off_s)))
    v = verdict(decide(snap(grid=-2000, soc=60), sts), SG)
    assert v.start_ok is ok
    if not ok:
        assert "off for 9 min 59 s < min_off 10 min" in v.reasons


def test_without_min_off_a_just_stopped_load_may_arm_again() -> None:
    # DHW has min_off_s 0 (the default); settle is what keeps it from starting at once.
    sts = statuses(status(DHW, State.OFF, since=T0 - s(1), off_since=T0 - s(1)))
    assert verdict(decide(snap(grid=-4000, soc=60), sts), DHW).event is Event.ARM


# --------------------------------------------------------------------------- rule 4: slots, settle


def test_only_the_highest_priority_ready_load_starts_in_a_tick() -> None:
    sts = statuses(
        status(SG, State.ARMING, since=T0 - s(300)),
        status(DHW, State.ARMING, since=T0 - s(300)),
    )
    d = decide(snap(grid=-4000, soc=60), sts)
    assert verdict(d, SG).event is Event.START
    assert verdict(d, DHW).event is None
    assert "waiting: another load takes this tick's start" in verdict(d, DHW).reasons


def test_a_person_or_the_owner_beats_the_ticks_start() -> None:
    # SG-Ready and DHW are ready to start. A person switches SG-Ready's relay on in this very
    # tick, and the owner forces DHW off: neither is started by the EMS, and the start slot
    # is not given to either.
    from emsctl.model import Mode, Override

    sts = statuses(
        status(SG, State.ARMING, since=T0 - s(300), relay_on=True),
        status(
            DHW,
            State.ARMING,
            since=T0 - s(300),
            override=Override(Mode.FORCE_OFF, created_at=T0 - s(10)),
        ),
        status(WA, State.ARMING, since=T0 - s(300)),
    )
    d = decide(snap(grid=-9000, soc=80), sts)
    assert verdict(d, SG).event is Event.DETECT_MANUAL
    assert verdict(d, DHW).event is Event.FORCE_OFF
    assert verdict(d, WA).event is Event.START
    assert not any("another load takes" in r for x in (SG, DHW) for r in verdict(d, x).reasons)


def test_a_lower_priority_load_starts_when_the_higher_one_is_not_ready() -> None:
    sts = statuses(
        status(SG, State.ARMING, since=T0 - s(100)),
        status(DHW, State.ARMING, since=T0 - s(300)),
    )
    d = decide(snap(grid=-4000, soc=60), sts)
    assert verdict(d, SG).event is None
    assert verdict(d, DHW).event is Event.START


def test_only_the_lowest_priority_ready_load_is_shed_in_a_tick() -> None:
    sts = statuses(
        status(SG, State.DISARMING, since=T0 - s(400), on_since=HOUR_AGO),
        status(WA, State.DISARMING, since=T0 - s(400), on_since=HOUR_AGO, power_w=2000),
    )
    d = decide(snap(grid=3000, soc=80, compressor=2000), sts)
    assert verdict(d, WA).event is Event.SHED
    assert verdict(d, SG).event is None
    assert "waiting: another load is shed this tick" in verdict(d, SG).reasons


def test_a_start_and_a_shed_may_happen_in_the_same_tick() -> None:
    # WB A leaves (gate), SG-Ready starts on the export: one of each per tick is allowed.
    sts = statuses(
        status(SG, State.ARMING, since=T0 - s(300)),
        status(WA, State.DISARMING, since=T0 - s(400), on_since=HOUR_AGO, power_w=2000),
    )
    d = decide(snap(grid=-2000, soc=60), sts)
    assert verdict(d, SG).event is Event.START
    assert verdict(d, WA).event is Event.SHED


@pytest.mark.parametrize(("ago", "settling"), [(179, True), (180, False), (181, False)])
def test_no_start_while_the_last_switch_settles(ago: float, settling: bool) -> None:
    # WB A switched on `ago` seconds before; SG-Ready is ready to start.
    sts = statuses(
        status(SG, State.ARMING, since=T0 - s(300)),
        status(WA, State.ON, since=T0 - s(ago), power_w=2000),
    )
    v = verdict(decide(snap(grid=-2000, soc=80), sts), SG)
    assert v.event is (None if settling else Event.START)
    if settling:
        assert "settling 2 min 59 s < 3 min after the last switch" in v.reasons


@pytest.mark.parametrize(("ago", "settling"), [(179, True), (180, False), (181, False)])
def test_no_shed_while_the_last_switch_settles(ago: float, settling: bool) -> None:
    # DHW went off `ago` seconds before; SG-Ready is ready to be shed.
    sts = statuses(
        status(SG, State.DISARMING, since=T0 - s(400), on_since=HOUR_AGO),
        status(DHW, State.OFF, since=T0 - s(ago), off_since=T0 - s(ago)),
    )
    v = verdict(decide(snap(grid=1000, soc=60, compressor=2000), sts), SG)
    assert v.event is (None if settling else Event.SHED)
    if settling:
        assert "settling 2 min 59 s < 3 min after the last switch" in v.reasons


def test_arming_and_disarming_go_on_while_settling() -> None:
    # SG-Ready switched on 10 s ago; DHW arms, WB A (import) disarms, nothing waits for settle.
    sts = statuses(
        status(SG, State.ON, since=T0 - s(10)),
        status(WA, State.ON, since=HOUR_AGO, power_w=2000),
    )
    d = decide(snap(grid=400, soc=80, compressor=0), sts)
    assert verdict(d, WA).event is Event.WEAKEN
    sts = statuses(status(SG, State.ON, since=T0 - s(10)))
    d = decide(snap(grid=-2000, soc=80, compressor=2000), sts)
    assert verdict(d, DHW).event is Event.ARM


# --------------------------------------------------------------------------- rule 13: stale data


@pytest.mark.parametrize(("grid", "soc"), [(None, 80.0), (-3000.0, None), (None, None)])
def test_no_start_without_fresh_grid_and_soc(grid: float | None, soc: float | None) -> None:
    sts = statuses(status(SG, State.ARMING, since=T0 - s(300)))
    d = decide(snap(grid=grid, soc=soc), sts)
    for load in (SG, DHW, WA, WB):
        assert not verdict(d, load).start_ok
        assert verdict(d, load).event in (None, Event.DISARM_START)
    assert "no fresh grid/soc data for 0 s" in verdict(d, SG).reasons
    assert verdict(d, SG).event is Event.DISARM_START
    assert DATA_MISSING in d.watch


def test_missing_data_is_remembered_from_its_first_tick() -> None:
    d1 = decide(snap(T0, grid=None))
    assert d1.watch[DATA_MISSING] == T0
    d2 = decide(snap(T0 + s(60), grid=None), watch=d1.watch)
    assert d2.watch[DATA_MISSING] == T0
    assert "no fresh grid/soc data for 1 min" in verdict(d2, SG).reasons
    d3 = decide(snap(T0 + s(120)), watch=d2.watch)
    assert DATA_MISSING not in d3.watch


@pytest.mark.parametrize(
    ("grid", "soc"),
    [
        (None, 46.0),  # the known SOC is below SG-Ready's keep threshold (47 %)
        (5000.0, None),  # the known grid shows a 5 kW import
        (None, None),
    ],
)
def test_running_loads_hold_their_state_while_data_is_missing(
    grid: float | None, soc: float | None
) -> None:
    # Whatever the part still known says, running loads neither weaken nor recover nor are
    # shed until the fail-safe.
    sts = statuses(
        status(SG, State.ON, since=HOUR_AGO),
        status(DHW, State.DISARMING, since=T0 - s(400), on_since=HOUR_AGO),
    )
    d = decide(snap(grid=grid, soc=soc, compressor=2000), sts, watch={DATA_MISSING: T0 - s(599)})
    for load in (SG, DHW):
        v = verdict(d, load)
        assert v.event is None
        assert "no fresh grid/soc data for 9 min 59 s; holding" in v.reasons


@pytest.mark.parametrize(("missing_s", "shed"), [(599, False), (600, True), (601, True)])
def test_fail_safe_sheds_after_failsafe_after_s(missing_s: float, shed: bool) -> None:
    sts = statuses(status(WA, State.ON, since=HOUR_AGO, power_w=2000))
    d = decide(snap(grid=None), sts, watch={DATA_MISSING: T0 - s(missing_s)})
    v = verdict(d, WA)
    assert v.event is (Event.SHED if shed else None)
    assert v.release is (Release.FAILSAFE if shed else None)
    if shed:
        assert f"fail-safe: no fresh grid/soc data for {duration(missing_s)}" in v.reasons


def test_fail_safe_honours_minimum_runtime() -> None:
    sts = statuses(status(SG, State.ON, since=T0 - s(1000)))
    v = verdict(decide(snap(grid=None), sts, watch={DATA_MISSING: T0 - s(600)}), SG)
    assert v.event is None
    assert "min runtime: 13 min 20 s left" in v.reasons


def test_fail_safe_sheds_one_load_per_tick_lowest_priority_first() -> None:
    sts = statuses(
        status(SG, State.ON, since=HOUR_AGO),
        status(DHW, State.ON, since=HOUR_AGO),
        status(WA, State.ON, since=HOUR_AGO, power_w=2000),
    )
    d = decide(snap(grid=None), sts, watch={DATA_MISSING: T0 - s(600)})
    assert [verdict(d, x).event for x in (SG, DHW, WA)] == [None, None, Event.SHED]
    assert "waiting: another load is shed this tick" in verdict(d, DHW).reasons


def test_fail_safe_shed_waits_for_settle() -> None:
    sts = statuses(
        status(SG, State.ON, since=HOUR_AGO),
        status(WA, State.OFF, since=T0 - s(60), off_since=T0 - s(60)),
    )
    v = verdict(decide(snap(grid=None), sts, watch={DATA_MISSING: T0 - s(600)}), SG)
    assert v.event is None
    assert "settling 1 min < 3 min after the last switch" in v.reasons


def test_fail_safe_sheds_a_load_that_was_disarming_when_the_data_went_away() -> None:
    # It has been disarming longer than the data is missing (700 s > off_delay 360 s).
    sts = statuses(status(SG, State.DISARMING, since=T0 - s(700), on_since=HOUR_AGO))
    v = verdict(decide(snap(grid=None), sts, watch={DATA_MISSING: T0 - s(600)}), SG)
    assert v.event is Event.SHED
    assert v.release is Release.FAILSAFE


def test_fail_safe_shed_of_a_disarming_load_still_needs_its_off_delay() -> None:
    # The machine's guard on disarming -> off: with off_delay_s above failsafe_after_s the
    # engine waits rather than spend the tick's shed slot on a refused shed.
    cfg = make_config(loads_patch(sg_ready={"off_delay_s": 1200}))
    sts = statuses(
        status(SG, State.DISARMING, since=T0 - s(700), on_since=HOUR_AGO),
        status(DHW, State.ON, since=HOUR_AGO),
    )
    d = decide(snap(grid=None), sts, cfg, watch={DATA_MISSING: T0 - s(600)})
    assert verdict(d, SG).event is None
    assert "fail-safe: stop condition held 11 min 40 s of 20 min" in verdict(d, SG).reasons
    assert verdict(d, DHW).event is Event.SHED


def test_fail_safe_does_not_touch_loads_that_are_not_ems_driven() -> None:
    sts = statuses(
        status(SG, State.COOLDOWN, cooldown_until=T0 + s(600)),
        status(WA, State.OFF),
    )
    d = decide(snap(grid=None), sts, watch={DATA_MISSING: T0 - s(3600)})
    assert all(v.event is None for v in d.verdicts.values())


def test_brake_still_applies_when_only_grid_data_is_missing() -> None:
    sts = statuses(status(SG, State.ON, since=T0 - s(60)))
    v = verdict(decide(snap(grid=None, soc=44), sts), SG)
    assert v.event is Event.BRAKE
