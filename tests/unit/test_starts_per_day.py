"""Rule 18, max starts per day: the engine holds a load back once it started its maximum on the
local day, the Site counts the rules' starts and begins anew at local midnight, and a restart
counts the day's starts again from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from emsctl.config import Config
from emsctl.model import LoadId, LoadReading, LoadStatus, Mode, Override, ReasonCode, State
from emsctl.site import Site
from emsctl.store import Store
from emsctl.store.listener import StoreListener

from .corekit import SG, decide, make_config, snap, status, statuses, verdict

#: 08:00 in Berlin (CET) on a winter day.
MORNING = datetime(2026, 1, 15, 7, 0, tzinfo=UTC)


def _config(most: int | None = 2) -> Config:
    off = {"enabled": False}
    return make_config(
        {
            "loads": {
                "sg_ready": {
                    "on_delay_s": 60,
                    "off_delay_s": 60,
                    "min_on_s": 120,
                    "min_off_s": 0,
                    "max_starts_per_day": most,
                    "idle_release": {"enabled": False},
                },
                "dhw": off,
                "wb_a": off,
                "wb_b": off,
            },
            "control": {"settle_s": 60, "priority": ["sg_ready"], "exclusive": []},
        }
    )


def test_a_load_that_started_its_maximum_today_does_not_start() -> None:
    cfg = _config(2)
    today = MORNING.astimezone(cfg.control.tz).date()
    st = status(SG, State.ARMING, since=MORNING - timedelta(minutes=5))
    st.starts_today, st.starts_day = 2, today
    v = verdict(decide(snap(MORNING, grid=-3000), statuses(st), cfg), SG)
    assert not v.start_ok
    assert ReasonCode.MAX_STARTS in v.codes
    assert "started 2 times today (max 2)" in v.reasons


def test_yesterdays_starts_do_not_count_and_below_the_maximum_it_starts() -> None:
    cfg = _config(2)
    today = MORNING.astimezone(cfg.control.tz).date()
    for count, day in ((2, today - timedelta(days=1)), (1, today)):
        st = status(SG, State.ARMING, since=MORNING - timedelta(minutes=5))
        st.starts_today, st.starts_day = count, day
        v = verdict(decide(snap(MORNING, grid=-3000), statuses(st), cfg), SG)
        assert v.start_ok, (count, day, v.reasons)
        assert ReasonCode.MAX_STARTS not in v.codes


def test_no_maximum_no_limit() -> None:
    cfg = _config(None)
    st = status(SG, State.ARMING, since=MORNING - timedelta(minutes=5))
    st.starts_today, st.starts_day = 40, MORNING.astimezone(cfg.control.tz).date()
    assert verdict(decide(snap(MORNING, grid=-3000), statuses(st), cfg), SG).start_ok


class _Relay:
    """SG-Ready's relay follows the site's commands; the sun comes and goes every 10 minutes."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.on = False

    def minute(self, now: datetime, sunny: bool) -> None:
        grid = (-2500.0 if sunny else 1500.0) + (2000.0 if self.on else 0.0)
        reading = {SG: LoadReading(relay_on=self.on)}
        result = self.site.step(snap(now, grid=grid, soc=80), reading, now)
        for cmd in result.commands:
            self.on = cmd.on
            self.site.confirm(cmd.load, cmd, LoadReading(relay_on=cmd.on), None, now)


def _play(site: Site, relay: _Relay, start: datetime, hours: int) -> list[datetime]:
    """Minutes in which SG-Ready's relay went on."""
    ons: list[datetime] = []
    for i in range(hours * 60):
        now = start + timedelta(minutes=i)
        was = relay.on
        relay.minute(now, sunny=(i // 10) % 2 == 0)
        if relay.on and not was:
            ons.append(now)
    return ons


def test_a_cycling_load_starts_at_most_its_maximum_each_local_day() -> None:
    cfg = _config(2)
    site = Site(cfg, MORNING)
    relay = _Relay(site)
    # Two sun-and-cloud cycles an hour from 08:00 local to 08:00 the next day and beyond.
    ons = _play(site, relay, MORNING, 30)
    tz = cfg.control.tz
    days: dict[object, int] = {}
    for at in ons:
        d = at.astimezone(tz).date()
        days[d] = days.get(d, 0) + 1
    assert list(days.values()) == [2, 2], ons
    # The second day's first start comes right after local midnight's sun, not before.
    second = [at for at in ons if at.astimezone(tz).date() != MORNING.astimezone(tz).date()]
    assert second[0].astimezone(tz).hour == 0
    last = site.last_decision
    assert last is not None and ReasonCode.MAX_STARTS in last.verdicts[SG].codes


def test_the_owners_force_on_is_neither_held_back_nor_counted() -> None:
    cfg = _config(1)
    site = Site(cfg, MORNING)
    relay = _Relay(site)
    assert len(_play(site, relay, MORNING, 2)) == 1
    later = MORNING + timedelta(hours=2)
    site.set_override(SG, Override(Mode.FORCE_ON, created_at=later), later)
    relay.minute(later, sunny=False)
    assert relay.on
    assert site.status(SG).starts_on(later.astimezone(cfg.control.tz).date()) == 1


def test_a_restart_keeps_the_days_count(tmp_path: Path) -> None:
    cfg = _config(2)
    store = Store.open(tmp_path / "ems.db")
    try:
        site = Site(cfg, MORNING, listeners=[StoreListener(store)])
        relay = _Relay(site)
        assert len(_play(site, relay, MORNING, 1)) == 2
        restart = MORNING + timedelta(hours=1)
        restored = store.restore_statuses(restart, cfg)
        today = restart.astimezone(cfg.control.tz).date()
        assert restored[SG].starts_on(today) == 2
        again = Site(cfg, restart, restored=restored, listeners=[StoreListener(store)])
        relay2 = _Relay(again)
        relay2.on = relay.on
        assert _play(again, relay2, restart, 3) == []
        # The next day the count is new: a restart after midnight finds no start of that day.
        tomorrow = MORNING + timedelta(days=1)
        assert (
            store.restore_statuses(tomorrow, cfg)[SG].starts_on(
                tomorrow.astimezone(cfg.control.tz).date()
            )
            == 0
        )
    finally:
        store.close()


def test_restore_without_transitions_starts_with_no_starts(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "ems.db")
    try:
        restored = store.restore_statuses(MORNING, _config(2))
        assert SG not in restored or restored[SG].starts_today == 0
        assert (
            LoadStatus(load=LoadId.DHW, state=State.OFF, since=MORNING).starts_on(MORNING.date())
            == 0
        )
    finally:
        store.close()
