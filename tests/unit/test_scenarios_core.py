"""Whole situations played minute by minute through the real Site under freezegun.

Expected switching times are worked out by hand from the house's config (tests/unit/corekit.py):
on_delay 4 min, off_delay 6 min, settle 3 min; min_on SG-Ready 30 min, DHW and wallboxes
15 min; min_off SG-Ready 10 min, wallboxes 5 min; brake below 45 %; fail-safe after 10 min
without data; idle release after 10 min on and 5 min idle (cooldown 1 h); no-car release after
3 min on and 5 min below 100 W (retry after 1 h); manual hold 4 h. Gates 50/50/70/90 %,
keep down to gate - 3 %. Starts: SG-Ready, DHW and WB A need 2 kW, WB B 4 kW.

All times are UTC on Monday 16 March 2026 (Berlin is UTC+1). The plant draws 300 W of house
load, 2 kW of compressor while SG-Ready or the DHW boost is on, 2 kW on WB A and 4 kW on WB B
while their relays are on, unless a test says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from emsctl.model import LoadStatus, Mode, Override, State

from .corekit import CFG, loads_patch, make_config
from .houseplay import (
    DHW,
    SG,
    WA,
    WB,
    Plant,
    Play,
    between,
    const,
    play,
    running,
    steps,
)


def at(h: int, m: int) -> datetime:
    return datetime(2026, 3, 16, h, m, tzinfo=UTC)


def t(h: int, m: int) -> time:
    return time(h, m)


NO_DHW = make_config(loads_patch(dhw={"enabled": False}))


def test_sunny_morning_starts_loads_in_priority_order_one_per_settle_period() -> None:
    # 9 kW to spare. SOC: 48 % until 07:00, 50 % from 07:00, 70 % from 07:02, 90 % from 07:20.
    plant = Plant(
        CFG,
        pv_w=const(9300),
        soc_pct=steps(48, {t(7, 0): 50, t(7, 2): 70, t(7, 20): 90}),
    )
    site, rec = play(plant, at(6, 55), t(9, 0))
    # 07:00 SOC reaches 50 %: SG-Ready and DHW arm (each reserves 2 kW of the 9 kW).
    # 07:02 SOC reaches 70 %: WB A arms on the 5 kW left.
    assert rec.when(SG, "arm") == [t(7, 0)]
    assert rec.when(DHW, "arm") == [t(7, 0)]
    assert rec.when(WA, "arm") == [t(7, 2)]
    # 07:04 SG-Ready's on_delay is over: it takes the tick's start (DHW is ready too).
    # 07:07 settle (3 min) over: DHW, which armed before WB A. 07:10: WB A.
    assert rec.switched_on(SG) == [t(7, 4)]
    assert rec.switched_on(DHW) == [t(7, 7)]
    assert rec.switched_on(WA) == [t(7, 10)]
    # 07:20 SOC reaches 90 %, but WB A runs: WB B may not join it.
    assert rec.switched_on(WB) == []
    assert rec.moves(WB) == []
    assert "exclusive with wb_a, which is running" in site.last_decision.verdicts[WB].reasons  # type: ignore[union-attr]
    assert all(rec.switched_off(x) == [] for x in (SG, DHW, WA, WB))
    # Running relays get their dead-man timer renewed every tick; the DHW setpoint does not.
    renewed = {c.load for when, c in rec.renewals if when == at(9, 0)}
    assert renewed == {SG, WA}
    assert all(c.deadman_s == 300 for _, c in rec.renewals)


def _cloud(start: time, end: time, sun: float, shade: float) -> Plant:
    cloudy = between(start, end)
    return Plant(CFG, pv_w=lambda now: shade if cloudy(now) else sun, soc_pct=const(80))


def test_passing_cloud_shorter_than_off_delay_switches_nothing_off() -> None:
    # SG-Ready and WB A have run since 09:00; 700 W export. A cloud 10:10-10:15 (5 min, less
    # than the 6 min off_delay) takes PV from 5 kW to 1 kW: 3.3 kW import.
    plant = _cloud(t(10, 10), t(10, 15), sun=5000, shade=1000)
    plant.relays.update({SG: True, WA: True})
    restored = {SG: running(SG, at(9, 0)), WA: running(WA, at(9, 0))}
    _, rec = play(plant, at(10, 0), t(11, 0), restored=restored)
    for load in (SG, WA):
        assert rec.when(load, "weaken") == [t(10, 10)]
        assert rec.when(load, "recover") == [t(10, 15)]
        assert rec.switched_off(load) == []
        assert rec.switched_on(load) == []  # and no restart either


def test_long_cloud_sheds_in_reverse_priority_after_off_delay_honouring_min_runtime() -> None:
    # Running: DHW since 09:00, WB A since 09:30, SG-Ready since 10:00 (min runtime to 10:30).
    # From 10:10 PV falls from 7 kW to 0.5 kW for good: 3.8 kW import.
    plant = _cloud(t(10, 10), t(23, 59), sun=7000, shade=500)
    plant.relays.update({SG: True, DHW: True, WA: True})
    restored = {
        SG: running(SG, at(10, 0)),
        DHW: running(DHW, at(9, 0)),
        WA: running(WA, at(9, 30)),
    }
    _, rec = play(plant, at(10, 5), t(11, 0), restored=restored)
    # 10:10: budget = -3.8 + 2 (compressor, DHW's as the lower heat-pump load) + 2 (WB A)
    # = 0.2 kW. SG-Ready (owning nothing) keeps; DHW and WB A weaken.
    assert rec.when(DHW, "weaken") == [t(10, 10)]
    assert rec.when(WA, "weaken") == [t(10, 10)]
    # 10:16 off_delay over for both: the lowest priority goes first.
    assert rec.switched_off(WA) == [t(10, 16)]
    # 10:19 settled: DHW. The compressor goes on for SG-Ready, now its owner: it weakens
    # at 10:20, its off_delay ends 10:26, but its minimum runtime only at 10:30.
    assert rec.switched_off(DHW) == [t(10, 19)]
    assert rec.when(SG, "weaken") == [t(10, 20)]
    assert rec.switched_off(SG) == [t(10, 30)]
    assert all(tr.event == "shed" for tr in rec.transitions if tr.target is State.OFF)


def test_soc_below_brake_switches_every_ems_load_off_in_the_same_tick() -> None:
    # SG-Ready since 11:55 and WB A since 11:58 are far from their minimum runtimes; a person
    # switched the DHW boost on by hand at 11:50. SOC: 80 %, 46 % at 12:03, 44 % at 12:05.
    plant = Plant(CFG, pv_w=const(6000), soc_pct=steps(80, {t(12, 3): 46, t(12, 5): 44}))
    plant.relays.update({SG: True, WA: True, DHW: True})
    restored = {
        SG: running(SG, at(11, 55)),
        WA: running(WA, at(11, 58)),
        DHW: LoadStatus(load=DHW, state=State.MANUAL, since=at(11, 50), manual_until=at(15, 50)),
    }
    _, rec = play(plant, at(12, 0), t(12, 30), restored=restored)
    # 12:03: below the gates' hysteresis, both start their off_delay...
    assert rec.when(SG, "weaken") == [t(12, 3)]
    assert rec.when(WA, "weaken") == [t(12, 3)]
    # ...12:05 below the brake: both off at once, minimum runtimes and off_delay ignored.
    assert rec.switched_off(SG) == [t(12, 5)]
    assert rec.switched_off(WA) == [t(12, 5)]
    braked = [tr for tr in rec.transitions if tr.event == "brake"]
    assert {tr.load for tr in braked} == {SG, WA}
    assert all(tr.reasons[0] == "emergency brake: soc 44% < 45%" for tr in braked)
    # The person's DHW boost is left alone, and nothing starts while the SOC stays low.
    assert rec.moves(DHW) == []
    assert [c for _, c in rec.commands if c.load is DHW] == []
    assert rec.switched_on(SG) == rec.switched_on(WA) == []


def test_wb_b_stays_off_while_wb_a_runs_even_when_eligible() -> None:
    # WB A runs since 10:00; SOC reaches 90 % at 10:30 with 9.7 kW to spare.
    plant = Plant(NO_DHW, pv_w=const(12000), soc_pct=steps(80, {t(10, 30): 90}))
    plant.relays[WA] = True
    _, rec = play(plant, at(10, 0), t(11, 30), restored={WA: running(WA, at(10, 0))})
    assert rec.moves(WB) == []
    assert not plant.relays[WB]
    assert rec.switched_off(WA) == []


def test_car_not_charging_releases_wb_a_retries_after_cooldown_and_wb_b_gets_the_surplus() -> None:
    # WB A since 10:00; its car is full at 10:30 (0 W from then on). SOC 95 % until 11:00,
    # then 85 % (below WB B's 90 - 3 %, above WB A's gate). PV 7 kW.
    plant = Plant(
        NO_DHW,
        pv_w=const(7000),
        soc_pct=steps(95, {t(11, 0): 85}),
        car_a_w=steps(2000, {t(10, 30): 0}),
    )
    plant.relays[WA] = True
    _, rec = play(plant, at(10, 0), t(11, 50), restored={WA: running(WA, at(10, 0))})
    # Below 100 W from 10:30, on for more than 3 min: released at 10:35, cooldown to 11:35.
    release = [tr for tr in rec.transitions if tr.event == "release"]
    assert [(tr.at.time(), tr.load, tr.target) for tr in release] == [
        (t(10, 35), WA, State.COOLDOWN),
        (t(11, 46), WA, State.COOLDOWN),
    ]
    assert release[0].reasons[0].startswith("car not charging: 0 W < 100 W for 5 min")
    # WB B may start once WB A's relay is off: arms 10:36, starts 10:40 (settled at 10:38).
    assert rec.when(WB, "arm") == [t(10, 36)]
    assert rec.switched_on(WB) == [t(10, 40)]
    # 11:00 SOC 85 %: WB B weakens; off_delay over at 11:06 (its min runtime ended 10:55).
    assert rec.switched_off(WB) == [t(11, 6)]
    # 11:35 cooldown over; WB A arms 11:36 and retries at 11:40. The car is still full:
    # watched from 11:41 (its first tick on), released again at 11:46.
    assert rec.when(WA, "cooldown_end") == [t(11, 35)]
    assert rec.switched_on(WA) == [t(11, 40)]
    assert rec.switched_off(WA) == [t(10, 35), t(11, 46)]


def test_compressor_idle_releases_sg_ready_early_then_cools_down() -> None:
    # SG-Ready since 13:00 (min runtime to 13:30). The buffer is full at 13:05: the
    # compressor idles at 40 W until it runs again from 14:00.
    plant = Plant(
        NO_DHW,
        pv_w=const(6000),
        compressor_on_w=steps(2000, {t(13, 5): 40, t(14, 0): 2000}),
    )
    plant.relays[SG] = True
    _, rec = play(plant, at(13, 0), t(14, 30), restored={SG: running(SG, at(13, 0))})
    # Idle from 13:05; on for 10 min and idle for 5 min at 13:10: released before its
    # minimum runtime, cooldown 1 h.
    assert rec.switched_off(SG) == [t(13, 10)]
    assert rec.moves(SG)[0] == (t(13, 10), "release", State.COOLDOWN)
    # 14:10 cooldown over; arms 14:11 and starts 14:15 (its min_off of 10 min long over).
    assert rec.when(SG, "cooldown_end") == [t(14, 10)]
    assert rec.switched_on(SG) == [t(14, 15)]


def _pressed(load: object, on: bool):  # type: ignore[no-untyped-def]
    def act(_site, plant: Plant, _now: datetime) -> None:  # type: ignore[no-untyped-def]
        plant.press(load, on)  # type: ignore[arg-type]

    return act


def test_manual_switch_is_left_alone_until_the_hold_expires() -> None:
    # 800 W short of WB A's 2 kW: the EMS would never run it. A person switches it on at 12:00.
    plant = Plant(CFG, pv_w=const(1500), soc_pct=const(80))
    _, rec = play(plant, at(11, 55), t(16, 30), actions={t(12, 0): _pressed(WA, True)})
    assert rec.moves(WA)[0] == (t(12, 0), "detect_manual", State.MANUAL)
    assert rec.transitions[0].reasons == ("switched on by hand (button); leaving it alone for 4 h",)
    # Four hours without a single command to WB A, not even a dead-man renewal.
    assert [
        when for when, c in rec.commands + rec.renewals if c.load is WA and when < at(16, 0)
    ] == []
    # 16:00 the hold ends: adopted as running (its minimum runtime starts now), then the
    # EMS's own rules: weakens 16:01, off_delay to 16:07, min runtime to 16:15.
    assert rec.moves(WA)[1] == (t(16, 0), "manual_end", State.ON)
    assert rec.when(WA, "weaken") == [t(16, 1)]
    assert rec.switched_off(WA) == [t(16, 15)]


def test_manual_switch_ends_when_the_owner_sets_auto() -> None:
    def auto(site, _plant, now: datetime) -> None:  # type: ignore[no-untyped-def]
        site.set_override(WA, Override(Mode.AUTO, created_at=now), now)

    plant = Plant(CFG, pv_w=const(1500), soc_pct=const(80))
    actions = {t(12, 0): _pressed(WA, True), t(12, 30): auto}
    _, rec = play(plant, at(11, 55), t(13, 0), actions=actions)
    assert rec.moves(WA)[:2] == [
        (t(12, 0), "detect_manual", State.MANUAL),
        (t(12, 30), "manual_end", State.ON),
    ]
    # Adopted at 12:30: weakens 12:31, shed when its minimum runtime ends at 12:45.
    assert rec.switched_off(WA) == [t(12, 45)]


def _force(load: object, until: datetime | None):  # type: ignore[no-untyped-def]
    def act(site, _plant, now: datetime) -> None:  # type: ignore[no-untyped-def]
        site.set_override(load, Override(Mode.FORCE_ON, created_at=now, expires_at=until), now)

    return act


def test_ui_force_on_yields_to_the_brake_and_comes_back_after_it() -> None:
    # The owner forces WB B on at 12:00 until 14:00. SOC 60 %, 44 % from 12:30, 60 % at 13:00.
    plant = Plant(CFG, pv_w=const(2000), soc_pct=steps(60, {t(12, 30): 44, t(13, 0): 60}))
    _, rec = play(plant, at(11, 59), t(14, 30), actions={t(12, 0): _force(WB, at(14, 0))})
    # On at once; off by the brake at 12:30; on again when the SOC recovers at 13:00. At
    # 14:00 the force ends and the EMS adopts WB B: 60 % is below its gate, so it weakens at
    # 14:01 and goes after off_delay at 14:07 (its runtime counts from 13:00).
    assert rec.switched_on(WB) == [t(12, 0), t(13, 0)]
    assert rec.switched_off(WB) == [t(12, 30), t(14, 7)]
    assert [m[1:] for m in rec.moves(WB)] == [
        ("force_on", State.FORCED_ON),
        ("brake", State.OFF),
        ("force_on", State.FORCED_ON),
        ("auto", State.ON),
        ("weaken", State.DISARMING),
        ("shed", State.OFF),
    ]


def test_ui_force_on_beats_the_brake_when_configured() -> None:
    cfg = make_config({"control": {"force_beats_brake": True}})
    plant = Plant(cfg, pv_w=const(2000), soc_pct=steps(60, {t(12, 30): 44, t(13, 0): 60}))
    _, rec = play(plant, at(11, 59), t(14, 30), actions={t(12, 0): _force(WB, at(14, 0))})
    assert rec.switched_on(WB) == [t(12, 0)]
    assert rec.switched_off(WB) == [t(14, 7)]


def test_stale_grid_data_stops_starts_and_sheds_fail_safe() -> None:
    # SG-Ready since 09:00 and WB A since 09:50 run. Grid and SOC readings are missing from
    # 10:00 to 10:30, exactly when PV rises from 6 kW to 9 kW (DHW could start on it).
    plant = Plant(
        CFG,
        pv_w=steps(6000, {t(10, 0): 9000}),
        soc_pct=const(80),
        stale=between(t(10, 0), t(10, 30)),
    )
    plant.relays.update({SG: True, WA: True})
    restored = {SG: running(SG, at(9, 0)), WA: running(WA, at(9, 50))}
    _, rec = play(plant, at(9, 55), t(10, 45), restored=restored)
    # No start and no stop decision while the data is missing...
    assert [m for m in rec.moves(DHW) if m[0] < t(10, 30)] == []
    assert rec.when(SG, "weaken") == rec.when(WA, "weaken") == []
    # ...until the fail-safe after 10 min: lowest priority first (WB A's minimum runtime
    # ended 10:05), SG-Ready once settled at 10:13.
    assert rec.switched_off(WA) == [t(10, 10)]
    assert rec.switched_off(SG) == [t(10, 13)]
    shed = [tr for tr in rec.transitions if tr.event == "shed"]
    assert len(shed) == 2
    assert [tr.reasons for tr in shed] == [
        ("fail-safe: no fresh grid/soc data for 10 min",),
        ("fail-safe: no fresh grid/soc data for 13 min",),
    ]
    # 10:30 data is back with 8.7 kW to spare: SG-Ready, DHW and WB A arm and start one
    # per settle period.
    assert rec.switched_on(SG) == [t(10, 34)]
    assert rec.switched_on(DHW) == [t(10, 37)]
    assert rec.switched_on(WA) == [t(10, 40)]


def test_per_phase_export_decides_a_single_phase_load() -> None:
    # Only WB A (on L1) matters here. PV 9 kW, the battery takes 4 kW; the house draws 2.4 kW,
    # all on L1, except 10:30-11:00 when it draws 300 W.
    cfg = make_config(
        {
            "loads": {
                "sg_ready": {"enabled": False},
                "dhw": {"enabled": False},
                "wb_a": {"phase": "L1"},
            }
        }
    )
    light = between(t(10, 30), t(11, 0))
    plant = Plant(
        cfg,
        pv_w=const(9000),
        soc_pct=const(75),
        house_w=lambda now: 300 if light(now) else 2400,
        per_phase=True,
        house_share=(1.0, 0.0, 0.0),
    )
    site, rec = play(plant, at(10, 0), t(11, 30))
    # Until 10:30 the total export is 2.6 kW (+4 kW charging), but L1 imports 733 W:
    # L1 surplus = -733 + 4000/3 = 600 W < 2 kW. From 10:30 L1 has 2.7 kW: arm, start 10:34.
    assert rec.when(WA, "arm") == [t(10, 30)]
    assert rec.switched_on(WA) == [t(10, 34)]
    # 11:00 the house's 2.4 kW return on L1: L1 imports 1.4 kW beyond the battery's share
    # while the total still exports; off_delay over at 11:06.
    assert rec.when(WA, "weaken") == [t(11, 0)]
    assert rec.switched_off(WA) == [t(11, 6)]
    assert site.last_decision is not None and site.last_decision.notes == ()


def test_without_a_phase_the_same_house_runs_wb_a_on_the_total() -> None:
    cfg = make_config({"loads": {"sg_ready": {"enabled": False}, "dhw": {"enabled": False}}})
    plant = Plant(
        cfg,
        pv_w=const(9000),
        soc_pct=const(75),
        house_w=const(2400),
        per_phase=True,
        house_share=(1.0, 0.0, 0.0),
    )
    _, rec = play(plant, at(10, 0), t(11, 30))
    assert rec.switched_on(WA) == [t(10, 4)]
    assert rec.switched_off(WA) == []


def test_sg_ready_is_not_eligible_above_max_outdoor() -> None:
    # 16 degC until 11:00, 14 degC until 12:00, then 16 degC again. PV 6 kW, SOC 60 %.
    plant = Plant(
        CFG,
        pv_w=const(6000),
        outdoor_c=steps(16, {t(11, 0): 14, t(12, 0): 16}),
    )
    site, rec = play(plant, at(10, 0), t(12, 30))
    # DHW has no outdoor limit and starts on the surplus at 10:04; SG-Ready waits.
    assert rec.switched_on(DHW) == [t(10, 4)]
    assert rec.when(SG, "arm") == [t(11, 0)]
    assert rec.switched_on(SG) == [t(11, 4)]
    # Warmer again at 12:00: stop condition, shed after off_delay (min runtime ended 11:34).
    assert rec.when(SG, "weaken") == [t(12, 0)]
    assert rec.switched_off(SG) == [t(12, 6)]
    assert "outdoor 16.0°C > 15°C" in site.last_decision.verdicts[SG].reasons  # type: ignore[union-attr]


def test_restart_in_the_middle_of_a_minimum_runtime_does_not_restart_it() -> None:
    # PV 4 kW: SG-Ready alone starts at 07:04 (armed 07:00). The daemon stops after 07:10
    # and starts again at 07:12 from what was persisted (as the store restores it: the last
    # command unknown). From 07:15 PV is 1 kW: SG-Ready weakens and, 30 min after 07:04,
    # goes at 07:34 (not 30 min after the restart).
    plant = Plant(CFG, pv_w=steps(4000, {t(7, 15): 1000}), soc_pct=const(60))
    first, rec1 = play(plant, at(7, 0), t(7, 10))
    assert rec1.switched_on(SG) == [t(7, 4)]
    persisted = {
        load: LoadStatus(
            load=load,
            state=st.state,
            since=st.since,
            on_since=st.on_since,
            off_since=st.off_since,
            override=st.override,
        )
        for load, st in first.statuses().items()
    }
    assert persisted[SG].state is State.ON
    _, rec2 = play(plant, at(7, 12), t(7, 40), restored=persisted)
    assert rec2.switched_on(SG) == []  # the relay was on: nothing to switch
    assert rec2.when(SG, "weaken") == [t(7, 15)]
    assert rec2.switched_off(SG) == [t(7, 34)]


def test_restore_without_a_run_start_counts_from_the_state_entry() -> None:
    plant = Plant(CFG, pv_w=const(1000), soc_pct=const(60))
    plant.relays[SG] = True
    restored = {SG: LoadStatus(load=SG, state=State.ON, since=at(7, 4))}
    _, rec = play(plant, at(7, 12), t(7, 40), restored=restored)
    assert rec.switched_off(SG) == [t(7, 34)]


def test_plays_record_what_happened_in_order() -> None:
    # The harness itself: commands are applied to the plant, renewals kept apart.
    rec = Play()
    plant = Plant(CFG, pv_w=const(4000), soc_pct=const(60))
    play(plant, at(7, 0), t(7, 5), record=rec)
    assert plant.relays[SG]
    assert [tr.at for tr in rec.transitions] == sorted(tr.at for tr in rec.transitions)
    assert rec.transitions[-1].measurements["soc_pct"] == 60
    assert rec.renewals and all(c.renew for _, c in rec.renewals)
