"""Restore at start-up: state and entry time from the last transition; what ended while the
daemon was down is not revived, and the history says so."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emsctl.config import Config
from emsctl.model import LoadId, Mode, Override, State, Transition
from emsctl.store import Store

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
SG, DHW, WA, WB = LoadId.SG_READY, LoadId.DHW, LoadId.WB_A, LoadId.WB_B
CFG = Config()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "ems.db")
    yield s
    s.close()


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def t(minutes: float, load: LoadId, source: State, target: State, event: str) -> Transition:
    return Transition(m(minutes), load, source, target, event, (f"{event} because",))


def test_on_load_resumes_with_its_entry_time_and_run_start(store: Store) -> None:
    store.record_transitions(
        [
            t(0, SG, State.OFF, State.ARMING, "arm"),
            t(4, SG, State.ARMING, State.ON, "start"),
            t(10, SG, State.ON, State.DISARMING, "weaken"),
            t(12, SG, State.DISARMING, State.ON, "recover"),
        ]
    )
    st = store.restore_statuses(m(15), CFG)[SG]
    assert st.state is State.ON
    assert st.since == m(12)
    assert st.on_since == m(4)  # the minimum runtime counts from the switch-on
    assert st.off_since is None
    assert st.commanded_on is None  # the output is re-asserted, not trusted


def test_off_since_is_when_the_last_run_ended(store: Store) -> None:
    store.record_transitions(
        [
            t(0, WA, State.ARMING, State.ON, "start"),
            t(30, WA, State.ON, State.DISARMING, "weaken"),
            t(36, WA, State.DISARMING, State.OFF, "shed"),
        ]
    )
    st = store.restore_statuses(m(40), CFG)[WA]
    assert (st.state, st.since, st.on_since, st.off_since) == (State.OFF, m(36), None, m(36))


def test_forced_on_whose_override_expired_while_down_comes_back_off(store: Store) -> None:
    store.add_override(WB, Mode.FORCE_ON, "ui:anna", m(0), m(60))
    store.record_transitions([t(1, WB, State.OFF, State.FORCED_ON, "force_on")])
    statuses = store.restore_statuses(m(90), CFG)
    st = statuses[WB]
    assert st.state is State.OFF
    assert st.since == m(90)
    assert st.override is None
    assert store.active_overrides(m(90)) == {}
    last = store.history(WB, now=m(90))[0]
    assert (last.kind, last.source, last.target, last.event) == (
        "transition",
        "forced_on",
        "off",
        "restore",
    )
    assert "expired at 2026-01-15 11:00 UTC" in last.reasons[0]


def test_restore_without_record_writes_nothing(store: Store) -> None:
    store.add_override(WB, Mode.FORCE_ON, "ui:anna", m(0), m(60))
    store.record_transitions([t(1, WB, State.OFF, State.FORCED_ON, "force_on")])
    store.restore_statuses(m(90), CFG, record=False)
    assert [r.event for r in store.history(WB, now=m(0))] == ["force_on", "set"]


def test_forced_on_with_override_still_in_force_is_kept_with_it(store: Store) -> None:
    store.add_override(WB, Mode.FORCE_ON, "ui:anna", m(0), m(60))
    store.record_transitions([t(1, WB, State.OFF, State.FORCED_ON, "force_on")])
    st = store.restore_statuses(m(30), CFG)[WB]
    assert (st.state, st.since) == (State.FORCED_ON, m(1))
    assert st.on_since == m(1)
    assert st.override == Override(Mode.FORCE_ON, m(0), m(60), "ui:anna")


def test_forced_on_whose_override_was_cleared_says_by_whom(store: Store) -> None:
    store.add_override(WB, Mode.FORCE_ON, "ui:anna", m(0), None)
    store.record_transitions([t(1, WB, State.OFF, State.FORCED_ON, "force_on")])
    store.clear_override(WB, "ui:ben", m(5))  # written by the UI just before the daemon died
    assert store.restore_statuses(m(6), CFG)[WB].state is State.OFF
    assert "cleared by ui:ben" in store.history(WB, now=m(6))[0].reasons[0]


def test_manual_hold_uses_the_detected_override_expiry(store: Store) -> None:
    store.record_transitions([t(0, WA, State.ON, State.MANUAL, "detect_manual")])
    store.add_override(WA, "manual", "device", m(0), m(240), detected=True)
    st = store.restore_statuses(m(100), CFG)[WA]
    assert (st.state, st.since, st.manual_until) == (State.MANUAL, m(0), m(240))
    assert store.restore_statuses(m(241), CFG, record=False)[WA].state is State.OFF


def test_manual_hold_without_record_falls_back_to_configured_hold(store: Store) -> None:
    store.record_transitions([t(0, WA, State.ON, State.MANUAL, "detect_manual")])
    st = store.restore_statuses(m(1), CFG)[WA]
    assert st.manual_until == m(0) + timedelta(seconds=CFG.control.manual_hold_s)


def test_cooldown_resumes_until_its_configured_end_and_ends_if_passed(store: Store) -> None:
    store.record_transitions([t(0, SG, State.ON, State.COOLDOWN, "release")])
    st = store.restore_statuses(m(10), CFG, record=False)[SG]
    assert (st.state, st.cooldown_until) == (State.COOLDOWN, m(60))  # idle_release 3600 s
    st = store.restore_statuses(m(61), CFG)[SG]
    assert st.state is State.OFF
    assert "cooldown ended" in store.history(SG, now=m(61))[0].reasons[0]


def test_arming_starts_over(store: Store) -> None:
    store.record_transitions([t(0, WA, State.OFF, State.ARMING, "arm")])
    st = store.restore_statuses(m(3), CFG)[WA]
    assert (st.state, st.since) == (State.OFF, m(3))


def test_override_set_before_any_transition_is_attached(store: Store) -> None:
    store.add_override(DHW, Mode.FORCE_OFF, "ui:anna", m(0), None)
    statuses = store.restore_statuses(m(1), CFG)
    assert set(statuses) == {DHW}
    assert statuses[DHW].state is State.OFF
    assert statuses[DHW].override is not None
    assert statuses[DHW].override.mode is Mode.FORCE_OFF


def test_empty_store_restores_nothing(store: Store) -> None:
    assert store.restore_statuses(T0, CFG) == {}


def test_an_override_ended_by_a_person_at_the_device_says_by_hand_once(store: Store) -> None:
    store.add_override(WB, Mode.FORCE_ON, "ui:anna", m(0), None)
    store.record_transitions([t(1, WB, State.OFF, State.FORCED_ON, "force_on")])
    # A person switched it off at the device; the daemon died before its tick was written.
    store.add_override(WB, Mode.FORCE_OFF, "by hand (button)", m(5), m(60), detected=True)
    store.restore_statuses(m(6), CFG)
    reason = store.history(WB, now=m(6))[0].reasons[0]
    assert "cleared by hand (button)" in reason and "by by" not in reason
