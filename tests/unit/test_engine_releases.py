"""Engine rules 6, 7, 9, 10, 11 and 15 at their boundaries: the brake, mutual exclusion, the
heating season, the early releases and the night fallback for cars."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from emsctl.engine import idle_key, no_car_key
from emsctl.model import Event, LoadId, LoadStatus, Mode, Override, Release, State
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
    reading,
    s,
    snap,
    status,
    statuses,
    verdict,
)

HOUR_AGO = T0 - s(3600)
FORCE_ON = Override(mode=Mode.FORCE_ON, created_at=T0 - s(60))

# --------------------------------------------------------------------------- rule 6: brake


@pytest.mark.parametrize(("soc", "brake"), [(44.9, True), (45.0, False), (45.1, False)])
def test_brake_switches_every_ems_driven_load_off_in_one_tick(soc: float, brake: bool) -> None:
    # SG-Ready just started (min runtime far from over), DHW disarming, WB A on 2 minutes.
    # The surplus is ample: only the SOC decides. Above the brake the gates' hysteresis
    # already holds (47 % for SG-Ready), so the loads weaken but nothing is switched off.
    sts = statuses(
        status(SG, State.ON, since=T0 - s(60)),
        status(DHW, State.DISARMING, since=T0 - s(30), on_since=T0 - s(600)),
        status(WA, State.ON, since=T0 - s(120), power_w=2000),
    )
    d = decide(snap(grid=-5000, soc=soc), sts)
    for load in (SG, DHW, WA):
        v = verdict(d, load)
        if brake:
            assert v.event is Event.BRAKE
            assert v.release is Release.BRAKE
            assert v.reasons[0] == "emergency brake: soc 44.9% < 45%"
        else:
            assert v.event in (None, Event.WEAKEN)


def test_brake_ignores_settle() -> None:
    sts = statuses(
        status(SG, State.ON, since=T0 - s(5)),
        status(WA, State.ON, since=T0 - s(5), power_w=2000),
    )
    d = decide(snap(grid=-5000, soc=40), sts)
    assert verdict(d, SG).event is Event.BRAKE
    assert verdict(d, WA).event is Event.BRAKE


def test_brake_leaves_manual_loads_alone_and_stops_arming() -> None:
    sts = statuses(
        status(WA, State.MANUAL, since=T0 - s(60), relay_on=True, manual_until=T0 + s(600)),
        status(SG, State.ARMING, since=T0 - s(300)),
    )
    d = decide(snap(grid=-5000, soc=40), sts)
    assert verdict(d, WA).event is None
    assert verdict(d, SG).event is Event.DISARM_START
    assert "soc 40% < brake 45%" in verdict(d, SG).reasons


def test_brake_switches_a_forced_on_load_off() -> None:
    sts = statuses(status(WB, State.FORCED_ON, since=T0 - s(60), override=FORCE_ON))
    v = verdict(decide(snap(grid=-5000, soc=44), sts), WB)
    assert v.event is Event.BRAKE
    assert v.release is Release.BRAKE
    assert v.reasons == ("force on held back: emergency brake: soc 44% < 45%",)


def test_force_beats_brake_when_configured() -> None:
    cfg = make_config({"control": {"force_beats_brake": True}})
    sts = statuses(status(WB, State.FORCED_ON, since=T0 - s(60), override=FORCE_ON))
    assert verdict(decide(snap(grid=-5000, soc=44), sts, cfg), WB).event is None
    sts = statuses(status(WB, State.OFF, override=FORCE_ON))
    assert verdict(decide(snap(grid=-5000, soc=44), sts, cfg), WB).event is Event.FORCE_ON


def test_force_on_waits_while_braking() -> None:
    sts = statuses(status(WB, State.OFF, override=FORCE_ON))
    v = verdict(decide(snap(grid=-5000, soc=44), sts), WB)
    assert v.event is None
    assert "force on held back: emergency brake: soc 44% < 45%" in v.reasons


def test_force_on_ending_while_braking_switches_off_at_once() -> None:
    # force_beats_brake kept WB B on through the brake; its override has just expired: the
    # EMS would adopt it as `on`, but the brake holds, so it goes off in the same tick.
    cfg = make_config({"control": {"force_beats_brake": True}})
    expired = Override(mode=Mode.FORCE_ON, created_at=HOUR_AGO, expires_at=T0)
    sts = statuses(status(WB, State.FORCED_ON, since=HOUR_AGO, override=expired))
    v = verdict(decide(snap(grid=-5000, soc=44), sts, cfg), WB)
    assert v.event is Event.BRAKE
    assert v.release is Release.BRAKE


# --------------------------------------------------------------------------- rule 7: exclusion


@pytest.mark.parametrize(
    "peer",
    [
        status(WA, State.ON, since=HOUR_AGO, power_w=2000),
        status(WA, State.DISARMING, since=T0 - s(60), on_since=HOUR_AGO, power_w=2000),
        status(WA, State.FORCED_ON, since=HOUR_AGO),
        status(WA, State.MANUAL, since=HOUR_AGO, relay_on=True, manual_until=T0 + s(60)),
        # A person switches WB A on in this very tick (detected as manual now).
        status(WA, State.OFF, since=HOUR_AGO, relay_on=True, commanded_on=False),
    ],
    ids=["on", "disarming", "forced_on", "manual_on", "switched_on_by_hand_now"],
)
def test_load_cannot_start_while_an_exclusive_peer_is_on(peer: object) -> None:
    sts = statuses(status(WB, State.ARMING, since=T0 - s(600)), peer)  # type: ignore[arg-type]
    v = verdict(decide(snap(grid=-12000, soc=95), sts), WB)
    assert not v.start_ok
    assert v.event is Event.DISARM_START
    assert "exclusive with wb_a, which is running" in v.reasons


def test_of_two_exclusive_loads_running_by_a_persons_doing_the_lower_one_gives_way() -> None:
    # Both adopted after manual holds: WB B (lower priority) stops the ordinary way.
    sts = statuses(
        status(WA, State.ON, since=HOUR_AGO, power_w=2000),
        status(WB, State.ON, since=HOUR_AGO),
    )
    d = decide(snap(grid=-3000, soc=95), sts)
    assert verdict(d, WA).keep_ok
    assert verdict(d, WB).event is Event.WEAKEN
    assert "exclusive with wb_a, which is running" in verdict(d, WB).reasons


def test_an_ems_driven_load_gives_way_to_a_peer_a_person_switched_on() -> None:
    sts = statuses(
        status(WA, State.ON, since=HOUR_AGO, power_w=2000),
        status(WB, State.MANUAL, since=HOUR_AGO, relay_on=True, manual_until=T0 + s(600)),
    )
    d = decide(snap(grid=-3000, soc=95), sts)
    assert verdict(d, WA).event is Event.WEAKEN
    assert "exclusive with wb_b, which is running" in verdict(d, WA).reasons
    assert verdict(d, WB).event is None


def test_load_may_start_when_its_peer_is_manual_but_off() -> None:
    sts = statuses(
        status(WB, State.ARMING, since=T0 - s(600)),
        status(WA, State.MANUAL, since=HOUR_AGO, relay_on=False, manual_until=T0 + s(60)),
    )
    assert verdict(decide(snap(grid=-12000, soc=95), sts), WB).event is Event.START


def test_force_on_makes_an_ems_driven_peer_stop_at_once() -> None:
    # WB A started 2 minutes ago (min runtime 15 min); the owner forces WB B on.
    sts = statuses(
        status(WA, State.ON, since=T0 - s(120), power_w=2000),
        status(WB, State.OFF, override=FORCE_ON),
    )
    d = decide(snap(grid=-3000, soc=95), sts)
    assert verdict(d, WA).event is Event.BRAKE
    assert verdict(d, WA).release is Release.EXCLUSION
    assert "making way for wb_b, forced on by the owner" in verdict(d, WA).reasons
    assert verdict(d, WB).event is None
    assert "force on waits: exclusive with wb_a" in verdict(d, WB).reasons


def test_force_on_makes_way_also_when_the_peer_comes_later_in_priority() -> None:
    sts = statuses(
        status(WB, State.ON, since=T0 - s(120)),
        status(WA, State.OFF, override=FORCE_ON),
    )
    d = decide(snap(grid=-3000, soc=95), sts)
    assert verdict(d, WB).event is Event.BRAKE
    assert verdict(d, WB).release is Release.EXCLUSION
    assert verdict(d, WA).event is None


def test_peer_making_way_does_not_take_the_ticks_shed_slot() -> None:
    # WB A is ready to be shed anyway; it leaves by making way, and SG-Ready (also ready)
    # still gets the tick's shed.
    sts = statuses(
        status(SG, State.DISARMING, since=T0 - s(400), on_since=HOUR_AGO),
        status(WA, State.DISARMING, since=T0 - s(400), on_since=HOUR_AGO, power_w=2000),
        status(WB, State.OFF, override=FORCE_ON),
    )
    d = decide(snap(grid=3000, soc=95, compressor=2000), sts)
    assert verdict(d, WA).event is Event.BRAKE
    assert verdict(d, WA).release is Release.EXCLUSION
    assert not any("another load is shed" in r for r in verdict(d, WA).reasons)
    assert verdict(d, SG).event is Event.SHED


def test_peer_being_released_early_keeps_its_release_when_a_force_needs_the_way() -> None:
    # WB A's car stopped drawing: it goes to cooldown (retry later), which makes way as well.
    watch = {no_car_key(WA): T0 - s(300)}
    sts = statuses(
        status(WA, State.ON, since=T0 - s(600), power_w=0),
        status(WB, State.OFF, override=FORCE_ON),
    )
    d = decide(snap(grid=-3000, soc=95), sts, watch=watch)
    assert verdict(d, WA).event is Event.RELEASE
    assert verdict(d, WA).release is Release.CAR_NOT_CHARGING


def test_a_person_switching_the_peer_off_is_seen_even_when_a_force_needs_the_way() -> None:
    sts = statuses(
        status(WA, State.ON, since=T0 - s(600), relay_on=False, commanded_on=True),
        status(WB, State.OFF, override=FORCE_ON),
    )
    d = decide(snap(grid=-3000, soc=95), sts)
    assert verdict(d, WA).event is Event.DETECT_MANUAL


@pytest.mark.parametrize(
    "peer",
    [
        status(WA, State.FORCED_ON, since=HOUR_AGO, override=FORCE_ON),
        status(WA, State.MANUAL, since=HOUR_AGO, relay_on=True, manual_until=T0 + s(600)),
    ],
    ids=["forced", "manual"],
)
def test_force_on_waits_for_a_forced_or_manual_peer(peer: object) -> None:
    sts = statuses(peer, status(WB, State.OFF, override=FORCE_ON))  # type: ignore[arg-type]
    d = decide(snap(grid=-3000, soc=95), sts)
    assert verdict(d, WA).event is None
    assert verdict(d, WB).event is None
    assert "force on waits: exclusive with wb_a" in verdict(d, WB).reasons


def test_two_forces_in_one_group_turn_on_only_the_higher_priority_load() -> None:
    sts = statuses(
        status(WA, State.OFF, override=FORCE_ON),
        status(WB, State.OFF, override=FORCE_ON),
    )
    d = decide(snap(grid=-3000, soc=95), sts)
    assert verdict(d, WA).event is Event.FORCE_ON
    assert verdict(d, WB).event is None
    assert "exclusive with wb_a, which is switching on" in verdict(d, WB).reasons


def test_owners_force_beats_an_automatic_start_in_the_same_tick() -> None:
    sts = statuses(
        status(WA, State.ARMING, since=T0 - s(600)),
        status(WB, State.OFF, override=FORCE_ON),
    )
    d = decide(snap(grid=-7000, soc=95), sts)
    assert verdict(d, WA).start_ok
    assert verdict(d, WB).event is Event.FORCE_ON
    assert verdict(d, WA).event is None
    assert "exclusive with wb_b, which is switching on" in verdict(d, WA).reasons


def test_both_peers_on_by_a_persons_doing_are_not_undone_by_exclusion() -> None:
    sts = statuses(
        status(WA, State.MANUAL, since=HOUR_AGO, relay_on=True, manual_until=T0 + s(600)),
        status(WB, State.MANUAL, since=HOUR_AGO, relay_on=True, manual_until=T0 + s(600)),
    )
    d = decide(snap(grid=-3000, soc=95), sts)
    assert verdict(d, WA).event is None and verdict(d, WB).event is None


def test_exclusion_ignores_loads_outside_every_group() -> None:
    sts = statuses(
        status(WA, State.ON, since=HOUR_AGO, power_w=2000),
        status(SG, State.ARMING, since=T0 - s(300)),
    )
    assert verdict(decide(snap(grid=-2000, soc=95), sts), SG).event is Event.START


def test_exclusive_group_naming_a_disabled_load_still_works_for_the_others() -> None:
    cfg = make_config(
        {
            "control": {
                "priority": ["sg_ready", "dhw", "wb_a"],
                "exclusive": [["wb_a", "wb_b"], ["sg_ready", "wb_a"]],
            },
            "loads": {"wb_b": {"enabled": False}},
        }
    )
    sts = statuses(
        status(WA, State.ON, since=HOUR_AGO, power_w=2000),
        status(SG, State.ARMING, since=T0 - s(300)),
    )
    d = decide(snap(grid=-2000, soc=95), sts, cfg)
    assert WB not in d.verdicts
    assert not verdict(d, SG).start_ok


# --------------------------------------------------------------------------- rule 9: outdoor


@pytest.mark.parametrize(
    ("outdoor", "ok", "why"),
    [
        (14.9, True, None),
        (15.0, True, None),
        (15.1, False, "outdoor 15.1°C > 15°C"),
        (None, False, "outdoor temperature unknown"),
    ],
)
def test_sg_ready_starts_only_in_the_heating_season(
    outdoor: float | None, ok: bool, why: str | None
) -> None:
    d = decide(snap(grid=-2000, soc=60, outdoor=outdoor))
    v = verdict(d, SG)
    assert v.start_ok is ok
    if why:
        assert why in v.reasons
    # DHW has no outdoor limit and takes the surplus instead.
    assert verdict(d, DHW).start_ok is not ok


@pytest.mark.parametrize(("outdoor", "keeps"), [(15.0, True), (15.1, False), (None, True)])
def test_running_sg_ready_stops_when_it_gets_warmer_than_max_outdoor(
    outdoor: float | None, keeps: bool
) -> None:
    sts = statuses(status(SG, State.ON, since=HOUR_AGO))
    v = verdict(decide(snap(grid=-500, soc=60, outdoor=outdoor), sts), SG)
    assert v.keep_ok is keeps
    assert v.event is (None if keeps else Event.WEAKEN)


def test_without_max_outdoor_sg_ready_runs_in_summer() -> None:
    cfg = make_config(loads_patch(sg_ready={"max_outdoor_c": None}))
    assert verdict(decide(snap(grid=-2000, soc=60, outdoor=30), cfg=cfg), SG).start_ok


# --------------------------------------------------------------------------- rule 10: idle


def test_idle_compressor_is_watched_from_its_first_idle_tick_while_running() -> None:
    sts = statuses(status(SG, State.ON, since=HOUR_AGO))
    d = decide(snap(grid=-500, soc=60, compressor=99), sts)
    assert d.watch[idle_key(SG)] == T0
    d2 = decide(snap(T0 + s(60), grid=-500, soc=60, compressor=50), sts, watch=d.watch)
    assert d2.watch[idle_key(SG)] == T0
    # At below_w (100 W) the compressor counts as running; a missing value ends the watch too.
    assert idle_key(SG) not in decide(snap(grid=-500, soc=60, compressor=100), sts).watch
    assert idle_key(SG) not in decide(snap(grid=-500, soc=60, compressor=None), sts).watch
    # Not watched while the load is off.
    assert idle_key(SG) not in decide(snap(grid=-500, soc=60, compressor=0)).watch


@pytest.mark.parametrize(
    ("on_s", "idle_s", "released"),
    [(599, 300, False), (600, 299, False), (600, 300, True), (601, 301, True)],
)
def test_idle_compressor_releases_sg_ready_after_grace_and_idle_time(
    on_s: float, idle_s: float, released: bool
) -> None:
    # grace 600 s, idle for 300 s; SG-Ready's min runtime (1800 s) does not hold it.
    sts = statuses(status(SG, State.ON, since=T0 - s(on_s)))
    watch = {idle_key(SG): T0 - s(idle_s)}
    v = verdict(decide(snap(grid=-500, soc=60, compressor=0), sts, watch=watch), SG)
    assert v.event is (Event.RELEASE if released else None)
    if released:
        assert v.release is Release.COMPRESSOR_IDLE
        assert v.cooldown_s == 3600
        assert v.reasons[0] == (
            f"compressor idle {duration(idle_s)} (< 100 W): target reached, releasing; cooldown 1 h"
        )


def test_idle_release_applies_to_a_disarming_load_and_to_the_dhw_boost() -> None:
    sts = statuses(
        status(SG, State.DISARMING, since=T0 - s(60), on_since=HOUR_AGO),
        status(DHW, State.ON, since=HOUR_AGO),
    )
    watch = {idle_key(SG): T0 - s(300), idle_key(DHW): T0 - s(300)}
    d = decide(snap(grid=500, soc=60, compressor=0), sts, watch=watch)
    assert verdict(d, SG).event is Event.RELEASE
    assert verdict(d, DHW).event is Event.RELEASE


def test_idle_release_can_be_disabled() -> None:
    cfg = make_config(loads_patch(sg_ready={"idle_release": {"enabled": False}}))
    sts = statuses(status(SG, State.ON, since=HOUR_AGO))
    d = decide(snap(grid=-500, soc=60, compressor=0), sts, cfg, watch={idle_key(SG): HOUR_AGO})
    assert verdict(d, SG).event is None
    assert idle_key(SG) not in d.watch


# --------------------------------------------------------------------------- rule 11: no car


def test_car_not_drawing_is_watched_only_on_a_metered_running_wallbox() -> None:
    sts = statuses(
        status(WA, State.ON, since=HOUR_AGO, power_w=99),
        status(WB, State.ON, since=HOUR_AGO),
    )
    d = decide(snap(grid=-5000, soc=95), sts)
    assert d.watch[no_car_key(WA)] == T0
    assert no_car_key(WB) not in d.watch
    sts = statuses(status(WA, State.ON, since=HOUR_AGO, power_w=100))
    assert no_car_key(WA) not in decide(snap(grid=-5000, soc=95), sts).watch
    sts = statuses(status(WA, State.ON, since=HOUR_AGO, power_w=None))
    assert no_car_key(WA) not in decide(snap(grid=-5000, soc=95), sts).watch


@pytest.mark.parametrize(
    ("on_s", "low_s", "released"),
    [(179, 300, False), (180, 300, True), (181, 300, True), (300, 299, False), (300, 301, True)],
)
def test_car_not_charging_releases_the_wallbox_after_grace_and_low_time(
    on_s: float, low_s: float, released: bool
) -> None:
    sts = statuses(status(WA, State.ON, since=T0 - s(on_s), power_w=20))
    watch = {no_car_key(WA): T0 - s(low_s)}
    v = verdict(decide(snap(grid=-5000, soc=95), sts, watch=watch), WA)
    assert v.event is (Event.RELEASE if released else None)
    if released:
        assert v.release is Release.CAR_NOT_CHARGING
        assert v.cooldown_s == 3600
        assert v.reasons[0] == (
            f"car not charging: 20 W < 100 W for {duration(low_s)}; retry in 1 h"
        )


def test_car_not_charging_release_can_be_disabled() -> None:
    cfg = make_config(loads_patch(wb_a={"no_car": {"enabled": False}}))
    sts = statuses(status(WA, State.ON, since=HOUR_AGO, power_w=0))
    d = decide(snap(grid=-5000, soc=95), sts, cfg, watch={no_car_key(WA): HOUR_AGO})
    assert verdict(d, WA).event is None
    assert no_car_key(WA) not in d.watch


# --------------------------------------------------------------------------- rule 15: fallback

# June: Berlin is UTC+2, so the 22:00-06:30 local window is 20:00-04:30 UTC.


def _utc(h: int, m: int, day: int = 1) -> datetime:
    return datetime(2026, 6, day, h, m, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (_utc(19, 59), False),
        (_utc(20, 0), True),
        (_utc(20, 1), True),
        (_utc(23, 0), True),
        (_utc(4, 29, 2), True),
        (_utc(4, 30, 2), False),
        (_utc(4, 31, 2), False),
    ],
)
def test_car_fallback_window_is_local_time(at: datetime, inside: bool) -> None:
    # At night: 500 W import, SOC 60 % (below WB A's gate 70 %).
    d = decide(snap(at, grid=500, soc=60))
    v = verdict(d, WA)
    assert v.start_ok is inside
    assert v.event is (Event.ARM if inside else None)
    if inside:
        assert "car charging window (22:00-06:30): charging regardless of surplus" in v.reasons
    # Only wallboxes have a fallback.
    assert not verdict(d, SG).start_ok


def test_car_fallback_window_follows_winter_time() -> None:
    # January: Berlin is UTC+1; 22:00 local is 21:00 UTC.
    assert not verdict(
        decide(snap(datetime(2026, 1, 15, 20, 59, tzinfo=UTC), grid=500)), WA
    ).start_ok
    assert verdict(decide(snap(datetime(2026, 1, 15, 21, 0, tzinfo=UTC), grid=500)), WA).start_ok


def test_car_fallback_never_against_the_brake_exclusion_or_an_unreachable_device() -> None:
    night = _utc(22, 0)
    assert not verdict(decide(snap(night, grid=500, soc=44)), WA).start_ok
    sts = statuses(status(WA, State.OFF), status(WB, State.ON, since=night - s(600)))
    assert not verdict(decide(snap(night, grid=500, soc=60), sts, now=night), WA).start_ok
    sts = statuses(status(WA, State.OFF, read=reading(None, error="timeout")))
    v = verdict(decide(snap(night, grid=500, soc=60), sts), WA)
    assert not v.start_ok
    assert "device unreachable: timeout" in v.reasons


def test_car_fallback_does_not_reserve_surplus() -> None:
    # WB A charges on the fallback; WB B is exclusive anyway, but SG-Ready (higher priority)
    # and the export are unaffected: with WB A first in priority SG-Ready still sees 2 kW.
    cfg = make_config({"control": {"priority": ["wb_a", "sg_ready", "dhw", "wb_b"]}})
    d = decide(snap(_utc(22, 0), grid=-2000, soc=60), cfg=cfg)
    assert verdict(d, WA).start_ok
    assert verdict(d, SG).start_ok


def test_car_fallback_keeps_a_running_wallbox_regardless_of_surplus_and_gate() -> None:
    night = _utc(22, 0)
    sts = statuses(status(WA, State.ON, since=night - s(60), power_w=2000))
    v = verdict(decide(snap(night, grid=3000, soc=50), sts), WA)
    assert v.keep_ok
    assert v.event is None
    assert "car charging window (22:00-06:30): charging regardless of surplus" in v.reasons


def test_car_fallback_disabled_means_surplus_rules_at_night() -> None:
    cfg = make_config(loads_patch(wb_a={"fallback": {"enabled": False}}))
    assert not verdict(decide(snap(_utc(22, 0), grid=500, soc=60), cfg=cfg), WA).start_ok


def test_car_fallback_window_may_lie_within_one_day() -> None:
    cfg = make_config(loads_patch(wb_a={"fallback": {"from": "12:00", "until": "14:00"}}))
    assert verdict(decide(snap(_utc(10, 0), grid=500, soc=60), cfg=cfg), WA).start_ok
    assert not verdict(decide(snap(_utc(12, 0), grid=500, soc=60), cfg=cfg), WA).start_ok


def _exempt(**flags: bool) -> Any:
    fb = {"enabled": True, "from": "22:00", "until": "06:30", **flags}
    return make_config(loads_patch(wb_a={"fallback": fb}, wb_b={"fallback": fb}))


def test_car_fallback_beats_the_brake_when_configured_to() -> None:
    night = _utc(22, 0)
    cfg = _exempt(beats_brake=True)
    # Starts below the brake...
    assert verdict(decide(snap(night, grid=500, soc=44), cfg=cfg), WA).start_ok
    # ...and a running charge is not braked, while SG-Ready (no window) still is.
    sts = statuses(
        status(WA, State.ON, since=night - s(600), power_w=2000),
        status(SG, State.ON, since=night - s(600)),
    )
    d = decide(snap(night, grid=2500, soc=44), sts, cfg=cfg)
    assert verdict(d, WA).event is None
    assert verdict(d, SG).event is Event.BRAKE
    # Outside the window the brake holds as ever.
    day = _utc(10, 0)
    sts = statuses(status(WA, State.ON, since=day - s(600), power_w=2000))
    assert verdict(decide(snap(day, grid=0, soc=44), sts, cfg=cfg), WA).event is Event.BRAKE


def test_car_fallback_ignores_exclusion_when_configured_to() -> None:
    night = _utc(22, 0)
    cfg = _exempt(ignores_exclusion=True)
    # WB B charging: WB A may start alongside it in the window...
    sts = statuses(status(WA, State.OFF), status(WB, State.ON, since=night - s(600)))
    assert verdict(decide(snap(night, grid=4500, soc=60), sts, cfg=cfg, now=night), WA).start_ok
    # ...both may start in the same tick...
    sts = statuses(
        status(WA, State.ARMING, since=night - s(300)),
        status(WB, State.ARMING, since=night - s(300)),
    )
    d = decide(snap(night, grid=500, soc=95), sts, cfg=cfg, now=night)
    assert verdict(d, WA).event is Event.START
    # ...and a running one is not pushed out by its peer.
    sts = statuses(
        status(WA, State.ON, since=night - s(600), power_w=2000),
        status(WB, State.ON, since=night - s(600)),
    )
    d = decide(snap(night, grid=6500, soc=60), sts, cfg=cfg, now=night)
    assert verdict(d, WA).keep_ok and verdict(d, WB).keep_ok
    # By day the exclusion holds again.
    day = _utc(10, 0)
    sts = statuses(status(WA, State.OFF), status(WB, State.ON, since=day - s(600)))
    assert not verdict(decide(snap(day, grid=-9000, soc=95), sts, cfg=cfg, now=day), WA).start_ok


#: The house's car charging window: all day, exempt from the exclusion.
ALL_DAY_EXEMPT = {"enabled": True, "from": "00:00", "until": "00:00", "ignores_exclusion": True}


def _wb_forced_while_wa_charges(at: datetime) -> dict[LoadId, LoadStatus]:
    """WB A charging for two minutes; the owner forced WB B on a minute ago."""
    return statuses(
        status(WA, State.ON, since=at - s(120), power_w=2000),
        status(WB, State.OFF, override=Override(mode=Mode.FORCE_ON, created_at=at - s(60))),
    )


def test_a_force_on_leaves_a_peer_charging_in_an_exempt_window_alone() -> None:
    # WB A's window is all day and exempt from the exclusion, as in the house's config. WB A
    # charges; the owner forces WB B on: WB A goes on charging and WB B starts at once.
    cfg = make_config(
        loads_patch(
            wb_a={"fallback": ALL_DAY_EXEMPT},
            wb_b={"fallback": {"enabled": True, "from": "22:00", "until": "06:30"}},
        )
    )
    day = _utc(10, 0)
    sts = _wb_forced_while_wa_charges(day)
    d = decide(snap(day, grid=3000, soc=60), sts, cfg=cfg, now=day)
    assert verdict(d, WA).event is None
    assert verdict(d, WA).keep_ok
    assert verdict(d, WB).event is Event.FORCE_ON


def test_a_force_on_inside_its_own_exempt_window_does_not_wait_for_the_peer() -> None:
    # WB B's window is exempt, WB A has none: WB B's Force on starts at once instead of
    # stopping WB A and waiting. WB A, outside any window, then yields to the forced peer
    # through its own keep rule, as it would to any forced peer.
    cfg = make_config(
        loads_patch(
            wb_b={"fallback": ALL_DAY_EXEMPT},
        )
    )
    day = _utc(10, 0)
    sts = _wb_forced_while_wa_charges(day)
    d = decide(snap(day, grid=-3000, soc=95), sts, cfg=cfg, now=day)
    assert verdict(d, WB).event is Event.FORCE_ON
    assert verdict(d, WA).event is None
    sts = statuses(
        status(WA, State.ON, since=day - s(180), power_w=2000),
        status(WB, State.FORCED_ON, since=day, override=FORCE_ON),
    )
    d = decide(snap(day, grid=1000, soc=95), sts, cfg=cfg, now=day)
    assert not verdict(d, WA).keep_ok


def test_outside_the_exempt_window_a_force_on_makes_the_peer_stop_as_ever() -> None:
    cfg = _exempt(ignores_exclusion=True)  # 22:00-06:30
    day = _utc(10, 0)
    sts = _wb_forced_while_wa_charges(day)
    d = decide(snap(day, grid=-3000, soc=95), sts, cfg=cfg, now=day)
    assert verdict(d, WA).release is Release.EXCLUSION
    assert verdict(d, WB).event is None


def _all_day() -> Any:
    fb = {"enabled": True, "from": "00:00", "until": "00:00"}
    return make_config(loads_patch(wb_a={"fallback": fb}, wb_b={"fallback": fb}))


@pytest.mark.parametrize("at", [_utc(0, 0), _utc(4, 30), _utc(10, 0), _utc(21, 59), _utc(23, 59)])
def test_a_window_ending_where_it_starts_covers_the_whole_day(at: datetime) -> None:
    # Importing 500 W at SOC 60 %: only the window can start WB A, at any time of day.
    v = verdict(decide(snap(at, grid=500, soc=60), cfg=_all_day()), WA)
    assert v.start_ok
    assert "car charging window (all day): charging regardless of surplus" in v.reasons


def test_a_full_car_in_its_window_keeps_the_relay_on_for_the_next_plug_in() -> None:
    # WB A on in its window, drawing nothing for an hour: the car-not-charging rule neither
    # watches nor releases it there (the charge does not use surplus another load could have).
    day = _utc(10, 0)
    sts = statuses(status(WA, State.ON, since=day - s(3600), power_w=0))
    d = decide(snap(day, grid=500, soc=60), sts, cfg=_all_day(), watch={no_car_key(WA): day})
    assert no_car_key(WA) not in d.watch
    d = decide(
        snap(day, grid=500, soc=60), sts, cfg=_all_day(), watch={no_car_key(WA): day - s(900)}
    )
    assert verdict(d, WA).event is None
    assert verdict(d, WA).keep_ok
    # The same wallbox outside a (night) window is released as ever.
    sts = statuses(status(WA, State.ON, since=day - s(3600), power_w=0))
    d = decide(snap(day, grid=-5000, soc=95), sts, watch={no_car_key(WA): day - s(900)})
    assert verdict(d, WA).release is Release.CAR_NOT_CHARGING
