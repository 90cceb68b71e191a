"""The Site around the engine and the machines: commands and their confirmation, the dead-man
renewals, overrides set by the owner, restoring after a restart, and dry runs."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from emsctl.model import (
    Command,
    LoadId,
    LoadReading,
    LoadStatus,
    Mode,
    Override,
    Snapshot,
    State,
    Transition,
)
from emsctl.site import Site

from .corekit import CFG, DHW, SG, T0, WA, WB, loads_patch, make_config, s, snap

OFF = LoadReading(relay_on=False)
ON = LoadReading(relay_on=True)


class _Heard:
    def __init__(self) -> None:
        self.heard: list[Transition] = []

    def on_transition(self, t: Transition) -> None:
        self.heard.append(t)


def _readings(**relays: bool | None) -> dict[LoadId, LoadReading]:
    out = dict.fromkeys(LoadId, OFF)
    for name, on in relays.items():
        out[LoadId(name)] = LoadReading(relay_on=on)
    return out


def _changes(cmds: list[Command]) -> list[tuple[LoadId, bool]]:
    return [(c.load, c.on) for c in cmds if not c.renew]


def _start_sg(site: Site) -> datetime:
    """Drive SG-Ready from off to on (armed at T0, started at T0 + 4 min)."""
    sunny = snap(grid=-2500, soc=60)
    assert site.step(sunny, _readings(), T0).commands == []
    now = T0 + s(240)
    return now


def test_a_fresh_site_has_every_enabled_load_off() -> None:
    site = Site(make_config(loads_patch(dhw={"enabled": False})), T0)
    assert set(site.statuses()) == {SG, WA, WB}
    assert all(st.state is State.OFF and st.since == T0 for st in site.statuses().values())


def test_devices_already_off_need_no_command_and_unknown_ones_are_switched_off() -> None:
    site = Site(CFG, T0)
    result = site.step(snap(grid=0), _readings(wb_b=None), T0)
    assert _changes(result.commands) == [(WB, False)]
    assert site.status(SG).commanded_on is False
    assert site.status(WB).command_pending


def test_start_sends_a_command_with_dead_man_and_reason_then_renews_it() -> None:
    heard = _Heard()
    site = Site(CFG, T0, listeners=[heard])
    sunny = snap(grid=-2500, soc=60)
    site.step(sunny, _readings(), T0)
    result = site.step(sunny, _readings(), T0 + s(240))
    assert [(t.load, t.event, t.target) for t in result.transitions] == [(SG, "start", State.ON)]
    assert heard.heard[-1] == result.transitions[0]
    assert type(result.transitions[0].event) is str
    assert result.transitions[0].measurements == {
        "grid_w": -2500,
        "soc_pct": 60,
        "pv_w": None,
        "battery_w": 0.0,
        "compressor_w": 2000.0,
        "outdoor_c": 10.0,
    }
    (cmd,) = result.commands
    assert (cmd.load, cmd.on, cmd.deadman_s, cmd.renew) == (SG, True, 300, False)
    assert cmd.reason == "surplus 2.5 kW >= start 2.0 kW; start condition held 4 min"
    assert site.status(SG).command_pending
    site.confirm(SG, cmd, ON, None, T0 + s(240))
    assert site.status(SG).commanded_on is True
    assert not site.status(SG).command_pending
    # Next tick: only the renewal of the dead-man timer.
    again = site.step(sunny, _readings(sg_ready=True), T0 + s(300))
    assert [(c.load, c.on, c.renew, c.deadman_s) for c in again.commands] == [(SG, True, True, 300)]


def test_setpoint_load_and_relays_without_dead_man_get_no_renewal() -> None:
    cfg = make_config(
        {
            "control": {"priority": ["dhw", "sg_ready", "wb_a", "wb_b"]},
            "loads": {"sg_ready": {"device": {"deadman_s": 0}}},
        }
    )
    restored = {
        DHW: LoadStatus(load=DHW, state=State.ON, since=T0 - s(600), commanded_on=True),
        SG: LoadStatus(load=SG, state=State.ON, since=T0 - s(600), commanded_on=True),
    }
    site = Site(cfg, T0, restored=restored)
    result = site.step(snap(grid=-3000, soc=60), _readings(dhw=True, sg_ready=True), T0)
    assert result.commands == []


def test_an_unconfirmed_command_is_repeated_and_not_mistaken_for_a_person() -> None:
    site = Site(CFG, T0)
    sunny = snap(grid=-2500, soc=60)
    site.step(sunny, _readings(), T0)
    (cmd,) = site.step(sunny, _readings(), T0 + s(240)).commands
    # The device failed to answer; the relay is still off.
    site.confirm(SG, cmd, None, "DeviceUnreachable: timed out", T0 + s(240))
    assert site.status(SG).commanded_on is False
    result = site.step(sunny, _readings(), T0 + s(300))
    assert _changes(result.commands) == [(SG, True)]
    assert site.status(SG).state is State.ON
    # The device answered but did not switch: tried again, still not a person's doing.
    site.confirm(SG, result.commands[0], OFF, None, T0 + s(300))
    assert site.status(SG).reading == OFF
    result = site.step(sunny, _readings(), T0 + s(360))
    assert _changes(result.commands) == [(SG, True)]
    assert site.status(SG).state is State.ON


def test_confirm_without_a_reading_trusts_the_command() -> None:
    site = Site(CFG, T0)
    cmd = Command(load=WB, on=False, reason="")
    site.confirm(WB, cmd, None, None, T0)
    assert site.status(WB).commanded_on is False


def test_failed_switching_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    site = Site(CFG, T0)
    with caplog.at_level(logging.WARNING, logger="emsctl.site"):
        site.confirm(WA, Command(load=WA, on=True, reason=""), None, "AuthFailed: 401", T0)
    assert "wb_a: switching on failed: AuthFailed: 401" in caplog.text


def test_a_person_switching_takes_the_load_out_of_the_commands() -> None:
    site = Site(CFG, T0)
    site.step(snap(grid=500), _readings(), T0)
    result = site.step(
        snap(grid=500), {**_readings(), WA: LoadReading(relay_on=True, source="button")}, T0 + s(60)
    )
    assert [(t.load, t.target) for t in result.transitions] == [(WA, State.MANUAL)]
    assert site.status(WA).manual_until == T0 + s(60 + 14400)
    assert site.status(WA).commanded_on is None
    assert [c for c in result.commands if c.load is WA] == []


def test_auto_from_the_owner_ends_a_manual_hold_at_once() -> None:
    heard = _Heard()
    site = Site(CFG, T0, listeners=[heard])
    site.step(snap(grid=500), _readings(wb_a=True), T0)
    assert site.status(WA).state is State.MANUAL
    done = site.set_override(WA, Override(Mode.AUTO, created_at=T0 + s(60)), T0 + s(60))
    assert [(t.event, t.target, t.reasons) for t in done] == [
        ("manual_end", State.ON, ("set to Auto by the owner",))
    ]
    assert heard.heard[-1] == done[0]
    assert site.status(WA).on_since == T0 + s(60)
    # The EMS now owns the relay: it is on as the device is, so only a renewal is sent.
    result = site.step(snap(grid=-500), _readings(wb_a=True), T0 + s(120))
    assert [(c.load, c.renew) for c in result.commands] == [(WA, True)]


def test_clearing_an_override_hands_a_forced_load_back_at_once() -> None:
    site = Site(CFG, T0)
    site.set_override(WB, Override(Mode.FORCE_ON, created_at=T0), T0)
    result = site.step(snap(grid=500, soc=60), _readings(), T0)
    assert [(t.event, t.target) for t in result.transitions] == [("force_on", State.FORCED_ON)]
    assert _changes(result.commands) == [(WB, True)]
    done = site.set_override(WB, None, T0 + s(60))
    assert [(t.event, t.target) for t in done] == [("auto", State.ON)]
    assert site.status(WB).override is None
    site.set_override(SG, Override(Mode.FORCE_OFF, created_at=T0), T0)
    site.step(snap(grid=500, soc=60), _readings(), T0 + s(120))
    assert site.status(SG).state is State.FORCED_OFF
    assert [t.target for t in site.set_override(SG, None, T0 + s(180))] == [State.OFF]


def test_clearing_without_an_override_changes_nothing() -> None:
    site = Site(CFG, T0)
    assert site.set_override(SG, None, T0) == []
    assert site.status(SG).state is State.OFF


def test_an_override_expires_by_itself() -> None:
    site = Site(CFG, T0)
    site.set_override(WB, Override(Mode.FORCE_ON, created_at=T0, expires_at=T0 + s(3600)), T0)
    site.step(snap(grid=500, soc=95), _readings(), T0)
    assert site.status(WB).state is State.FORCED_ON
    result = site.step(snap(grid=500, soc=95), _readings(wb_b=True), T0 + s(3600))
    assert [(t.event, t.target) for t in result.transitions] == [("auto", State.ON)]
    assert site.status(WB).override is None


def test_an_owners_force_during_a_manual_hold_ends_the_hold_first() -> None:
    site = Site(CFG, T0)
    site.step(snap(grid=500), _readings(wb_b=True), T0)
    assert site.status(WB).state is State.MANUAL
    assert site.set_override(WB, Override(Mode.FORCE_OFF, created_at=T0), T0 + s(60)) == []
    first = site.step(snap(grid=500), _readings(wb_b=True), T0 + s(60))
    assert [t.target for t in first.transitions] == [State.ON]
    second = site.step(snap(grid=500), _readings(wb_b=True), T0 + s(120))
    assert [t.target for t in second.transitions] == [State.FORCED_OFF]
    assert _changes(second.commands) == [(WB, False)]


def test_restore_keeps_state_entry_times_and_override() -> None:
    force = Override(Mode.FORCE_ON, created_at=T0 - s(600))
    restored = {
        SG: LoadStatus(load=SG, state=State.DISARMING, since=T0 - s(60), on_since=T0 - s(900)),
        WB: LoadStatus(load=WB, state=State.FORCED_ON, since=T0 - s(600), override=force),
        WA: LoadStatus(load=WA, state=State.COOLDOWN, since=T0 - s(60), cooldown_until=T0 + s(60)),
    }
    site = Site(CFG, T0, restored=restored)
    st = site.statuses()
    assert (st[SG].state, st[SG].since, st[SG].on_since) == (
        State.DISARMING,
        T0 - s(60),
        T0 - s(900),
    )
    assert st[WB].override == force
    assert st[WB].on_since == T0 - s(600)  # a run restored without its start
    assert st[WA].cooldown_until == T0 + s(60)
    assert st[DHW].state is State.OFF


def test_dry_run_pretends_devices_follow_its_commands() -> None:
    site = Site(CFG, T0, dry_run=True)
    sunny = snap(grid=-2500, soc=60)
    # Whatever the devices say, a dry run sees them as commanded: no manual detection, no
    # commands repeated without confirmation.
    odd = {**_readings(wb_a=True), DHW: LoadReading(relay_on=False, foreign_setpoint=55.0)}
    site.step(sunny, odd, T0)
    assert site.status(WA).state is State.OFF
    assert site.status(DHW).state is not State.MANUAL
    result = site.step(sunny, odd, T0 + s(240))
    assert _changes(result.commands) == [(SG, True)]
    again = site.step(sunny, odd, T0 + s(300))
    assert _changes(again.commands) == []
    assert [(c.load, c.renew) for c in again.commands] == [(SG, True)]
    assert site.status(WA).state is State.OFF


def test_dry_run_keeps_an_unreadable_device_unreadable() -> None:
    site = Site(CFG, T0, dry_run=True)
    site.step(snap(), _readings(wb_a=None), T0)
    assert site.status(WA).reading.relay_on is None


def test_a_note_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    site = Site(make_config(loads_patch(wb_a={"phase": "L1"})), T0)
    with caplog.at_level(logging.INFO, logger="emsctl.site"):
        for i in range(3):
            site.step(snap(grid=-9000, soc=80), _readings(), T0 + s(60 * i))
    assert caplog.text.count("wb_a: no L1 data, judging the total export") == 1


def test_loads_without_readings_count_as_unread() -> None:
    site = Site(CFG, T0)
    result = site.step(snap(grid=-9000, soc=95), {}, T0)
    assert all(v.start_ok is False for v in result.decision.verdicts.values())
    assert "device unreachable: not read" in result.decision.verdicts[SG].reasons
    assert {c.load for c in result.commands} == set(LoadId)


def test_a_tick_with_nothing_to_do_sends_no_events(caplog: pytest.LogCaptureFixture) -> None:
    site = Site(CFG, T0)
    with caplog.at_level(logging.DEBUG, logger="emsctl.site"):
        result = site.step(Snapshot(at=T0), _readings(), T0)
    assert result.transitions == []
    assert "refused" not in caplog.text
    assert site.last_decision is result.decision
