"""Properties of the decision core over random situations (hypothesis).

A situation is a list of regimes: a few minutes of steady-ish weather (the surplus before our
loads, with some jitter), each possibly opened by a person at a button, a dead-man timer
running out, an owner's override or a device fault. The real Site plays them against relays
that follow its commands, and the grid reading follows the relays; after every tick the
invariants of `check_tick` must hold. Settings are modest and derandomized, so the suite stays
fast and every run checks the same cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emsctl.config import Config
from emsctl.engine import DATA_MISSING, evaluate, manual_change
from emsctl.model import (
    EMS_RUNNING,
    OUTPUT_ON,
    Event,
    Forecast,
    LoadId,
    LoadKind,
    LoadReading,
    LoadStatus,
    Mode,
    Override,
    ReasonCode,
    Release,
    Snapshot,
    State,
    Verdict,
)
from emsctl.site import Site, TickResult

from .corekit import WA, loads_patch, make_config

CONFIGS = {
    "house": make_config(),
    "force_beats_brake": make_config({"control": {"force_beats_brake": True}}),
    "phase_l1_no_min_off": make_config(
        loads_patch(wb_a={"phase": "L1", "min_off_s": 0}, sg_ready={"min_off_s": 0})
    ),
    # An off_delay longer than the fail-safe's wait, and short manual holds.
    "slow_off": make_config(
        {
            "control": {"failsafe_after_s": 300, "manual_hold_s": 900},
            "loads": {
                name: {"off_delay_s": 900, "min_on_s": 300}
                for name in ("sg_ready", "dhw", "wb_a", "wb_b")
            },
        }
    ),
    "quick": make_config(
        {
            "control": {"settle_s": 60, "failsafe_after_s": 180, "manual_hold_s": 600},
            # One start a day for every load: rule 18 binds within a short play.
            "loads": {
                name: {
                    "on_delay_s": 60,
                    "off_delay_s": 60,
                    "min_on_s": 120,
                    "max_starts_per_day": 1,
                }
                for name in ("sg_ready", "dhw", "wb_a", "wb_b")
            },
        }
    ),
}

#: Leaving an output-on state before the minimum runtime is allowed only by these.
EARLY_EXITS = {"brake", "release", "detect_manual", "force_off", "lose"}


@dataclass(frozen=True)
class Regime:
    ticks: int
    step_s: int
    surplus: float | None  # before our loads; None: the grid reading is missing
    jitter: float
    soc: float | None
    battery: float
    compressor: float | None
    outdoor: float | None
    l1: float | None
    car_a_w: float
    forecast_wh: float | None
    person: tuple[LoadId, bool] | None
    deadman_runs_out: LoadId | None
    override: tuple[LoadId, Mode, int | None] | None
    fault: tuple[LoadId, str] | None


def _one_in(n: int, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value from `strategy` about once in `n` draws, else None (and None when shrinking)."""
    return st.tuples(st.sampled_from(range(n)), strategy).map(
        lambda pair: pair[1] if pair[0] == n - 1 else None
    )


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value about 14 times in 15, else missing."""
    return st.tuples(st.sampled_from(range(15)), strategy).map(
        lambda pair: None if pair[0] == 14 else pair[1]
    )


loads = st.sampled_from(list(LoadId))
regimes = st.builds(
    Regime,
    ticks=st.sampled_from(range(3, 31)),
    step_s=st.sampled_from([60] * 8 + [30, 120, 300]),
    # sampled_from draws evenly; integers() would crowd at the lower bound.
    surplus=_maybe(st.sampled_from(range(-3000, 11001, 100)).map(float)),
    jitter=st.sampled_from([0.0, 100.0, 400.0, 1500.0]),
    soc=_maybe(st.sampled_from([*range(40, 101), 44.9, 45, 47, 50, 70, 90])),
    battery=st.sampled_from(range(-2000, 4001, 100)).map(float),
    compressor=_maybe(st.sampled_from([0.0, 99.0, 100.0, 1500.0, 2000.0, 2000.0, 2400.0])),
    outdoor=_maybe(st.sampled_from([-5.0, 5.0, 5.0, 15.0, 15.1, 25.0])),
    l1=_maybe(st.sampled_from(range(-4000, 3001, 100)).map(float)),
    car_a_w=st.sampled_from([0.0, 50.0, 100.0, 1800.0, 2000.0, 2000.0]),
    forecast_wh=_one_in(3, st.sampled_from(range(0, 30001, 500)).map(float)),
    person=_one_in(10, st.tuples(loads, st.booleans())),
    deadman_runs_out=_one_in(10, loads),
    override=_one_in(
        8,
        st.tuples(
            loads,
            st.sampled_from([Mode.FORCE_ON, Mode.FORCE_OFF, Mode.AUTO]),
            st.one_of(st.none(), st.integers(1, 90)),
        ),
    ),
    fault=_one_in(10, st.tuples(loads, st.sampled_from(["unreachable", "unavailable", "refuses"]))),
)
situations = st.tuples(
    st.sampled_from(sorted(CONFIGS)),
    st.sampled_from([5, 10, 21]),  # start hour (UTC, June): morning, noon, the car's night
    st.lists(regimes, min_size=1, max_size=14),
)


class Devices:
    """Relays that follow the Site's commands unless a fault says otherwise."""

    def __init__(self) -> None:
        self.relay = dict.fromkeys(LoadId, False)
        self.source: dict[LoadId, str | None] = dict.fromkeys(LoadId)

    def drawn_w(self, r: Regime) -> tuple[float, float]:
        """What our loads draw now in total, and on L1 (WB A's phase)."""
        heat_pump = self.relay[LoadId.SG_READY] or self.relay[LoadId.DHW]
        compressor = (r.compressor if r.compressor is not None else 2000.0) if heat_pump else 0.0
        wb_a = r.car_a_w if self.relay[WA] else 0.0
        wb_b = 4000.0 if self.relay[LoadId.WB_B] else 0.0
        return compressor + wb_a + wb_b, wb_a + (compressor + wb_b) / 3

    def read(self, load: LoadId, r: Regime) -> LoadReading:
        if r.fault == (load, "unreachable"):
            return LoadReading(error="DeviceUnreachable: timed out")
        if r.fault == (load, "unavailable"):
            return LoadReading(available=False, error="AuthFailed: login revoked")
        power = (r.car_a_w if self.relay[load] else 0.0) if load is WA else None
        return LoadReading(relay_on=self.relay[load], power_w=power, source=self.source[load])


@dataclass
class Tick:
    """One tick as seen from outside, for the determinism check."""

    at: datetime
    result: TickResult
    statuses: dict[LoadId, LoadStatus]


def play(name: str, start_hour: int, plan: list[Regime]) -> list[Tick]:
    cfg = CONFIGS[name]
    now = datetime(2026, 6, 1, start_hour, 0, tzinfo=UTC)
    site = Site(cfg, now)
    devices = Devices()
    trace: list[Tick] = []
    for r in plan:
        if r.person is not None:
            load, on = r.person
            devices.relay[load] = on
            devices.source[load] = "button"
        if r.deadman_runs_out is not None and devices.relay[r.deadman_runs_out]:
            devices.relay[r.deadman_runs_out] = False
            devices.source[r.deadman_runs_out] = "timer"
        if r.override is not None and r.override[0] in site.loads:
            load, mode, minutes = r.override
            expires = None if minutes is None else now + timedelta(minutes=minutes)
            site.set_override(load, Override(mode, created_at=now, expires_at=expires), now)
        for i in range(r.ticks):
            drawn, drawn_l1 = devices.drawn_w(r)
            grid = l1 = None
            if r.surplus is not None:
                wobble = r.jitter * (((i * 7919) % 11) - 5) / 5
                grid = -(r.surplus + wobble) + r.battery + drawn
                if r.l1 is not None:
                    l1 = r.l1 + drawn_l1
            snapshot = Snapshot(
                at=now,
                grid_w=grid,
                grid_l1_w=l1,
                soc_pct=r.soc,
                battery_w=r.battery,
                compressor_w=r.compressor,
                outdoor_c=r.outdoor,
                forecast=None
                if r.forecast_wh is None
                else Forecast(fetched_at=now, remaining_today_wh=r.forecast_wh),
            )
            readings = {load: devices.read(load, r) for load in LoadId}
            # What the engine will see: the statuses with this tick's readings, and without
            # an override that has run out.
            pre = {
                load: replace(
                    st,
                    reading=readings[load],
                    override=st.override if st.override and st.override.active(now) else None,
                )
                for load, st in site.statuses().items()
            }
            watch = dict(site.watch)
            result = site.step(snapshot, readings, now)
            check_tick(cfg, now, snapshot, readings, pre, watch, result, site.statuses())
            for cmd in result.commands:
                if r.fault is not None and r.fault[0] is cmd.load:
                    site.confirm(cmd.load, cmd, None, "DeviceUnreachable: timed out", now)
                else:
                    devices.relay[cmd.load] = cmd.on
                    devices.source[cmd.load] = "http"
                    site.confirm(cmd.load, cmd, LoadReading(relay_on=cmd.on), None, now)
            trace.append(Tick(now, result, site.statuses()))
            now += timedelta(seconds=r.step_s)
    return trace


def _peers(cfg: Config, load: LoadId) -> set[LoadId]:
    out: set[LoadId] = set()
    for group in cfg.control.exclusive:
        if load in group:
            out.update(x for x in group if x is not load and x in cfg.enabled_loads())
    return out


def check_tick(
    cfg: Config,
    now: datetime,
    snapshot: Snapshot,
    readings: dict[LoadId, LoadReading],
    pre: dict[LoadId, LoadStatus],
    watch: dict[str, datetime],
    result: TickResult,
    post: dict[LoadId, LoadStatus],
) -> None:
    c = cfg.control
    verdicts = result.decision.verdicts
    moved = {t.load: t for t in result.transitions}
    events = [t.event for t in result.transitions]

    # Verdicts are deterministic: the same inputs give the same decision.
    assert evaluate(snapshot, pre, cfg, now, watch) == result.decision

    fresh = snapshot.grid_w is not None and snapshot.soc_pct is not None
    # Every verdict says why, each reason with its code; the machines accept every event the
    # engine asks for.
    for load, v in verdicts.items():
        assert v.reasons, load
        assert len(v.codes) == len(v.reasons), (load, v.codes, v.reasons)
        assert all(isinstance(code, ReasonCode) for code in v.codes), v.codes
        assert (v.event is None) == (load not in moved), (load, v.event, v.reasons)
        check_codes(v, fresh=fresh)
    assert len(result.transitions) == len(moved)

    # A person's hand is always seen; the owner's Force off always holds the output off.
    for load, status in pre.items():
        if status.reading.available and manual_change(status) is not None:
            assert verdicts[load].event is Event.DETECT_MANUAL, (load, verdicts[load])
        ov = post[load].override
        if ov is not None and ov.mode is Mode.FORCE_OFF and ov.active(now):
            assert post[load].state not in OUTPUT_ON, (load, post[load])

    # Two exclusive loads both on (a person's doing): the EMS keeps neither below the other.
    if fresh:
        order = cfg.enabled_loads()
        for load, v in verdicts.items():
            if pre[load].state not in EMS_RUNNING:
                continue
            for peer in _peers(cfg, load):
                p = pre[peer]
                on = p.state in OUTPUT_ON or p.reading.relay_on is True
                if on and (p.state not in EMS_RUNNING or order.index(peer) < order.index(load)):
                    assert not v.keep_ok, (load, peer, v)

    # No more than one start and one shed per tick, none while the last switch settles.
    assert events.count("start") <= 1 and events.count("shed") <= 1
    switches = [x for st in pre.values() for x in (st.on_since, st.off_since) if x is not None]
    if switches and (now - max(switches)).total_seconds() < c.settle_s:
        assert "start" not in events and "shed" not in events

    for t in result.transitions:
        before = pre[t.load]
        lc = cfg.loads.get(t.load)
        # No start (nor arming) on stale data.
        if t.event in ("arm", "start"):
            assert fresh, t
            assert verdicts[t.load].start_ok
        # Rule 18: the rules never start a load more often in a day than its maximum.
        most = lc.max_starts_per_day
        if t.event == "start" and most is not None:
            day = now.astimezone(c.tz).date()
            assert post[t.load].starts_on(day) == before.starts_on(day) + 1 <= most, t
        # Nothing leaves `on` before its minimum runtime except brake, early release, a person.
        if before.state in EMS_RUNNING and t.target not in OUTPUT_ON:
            ran = (now - (before.on_since or before.since)).total_seconds()
            assert ran >= lc.min_on_s or t.event in EARLY_EXITS, (t, ran)
        if t.event == "shed" and verdicts[t.load].release is Release.FAILSAFE:
            missing = watch.get(DATA_MISSING, now)
            assert not fresh and (now - missing).total_seconds() >= c.failsafe_after_s
        # The EMS turns a load on only while none of its exclusive peers is on.
        if t.event in ("start", "force_on") and before.state not in OUTPUT_ON:
            for peer in _peers(cfg, t.load):
                assert post[peer].state not in OUTPUT_ON, (t, post[peer])
                assert readings[peer].relay_on is not True, (t, readings[peer])

    # The brake leaves nothing running that the EMS drives (an expired manual hold adopted in
    # this tick is braked in the next).
    if snapshot.soc_pct is not None and snapshot.soc_pct < c.brake_soc:
        for load, st in post.items():
            adopted = load in moved and moved[load].event == "manual_end"
            if st.state in EMS_RUNNING:
                assert adopted, (load, st)
            if st.state is State.FORCED_ON:
                assert c.force_beats_brake, (load, st)

    # Commands: one per load at most; never for a load a person holds or that is unavailable;
    # dead-man renewals only for running relays.
    seen: set[LoadId] = set()
    for cmd in result.commands:
        assert cmd.load not in seen
        seen.add(cmd.load)
        state = post[cmd.load].state
        assert state not in (State.MANUAL, State.UNAVAILABLE)
        if cmd.renew:
            assert cmd.on and state in OUTPUT_ON
            assert cfg.loads.get(cmd.load).kind is LoadKind.RELAY
        else:
            assert cmd.on == (state in OUTPUT_ON)


#: The sentences each reason code stands for (figures and names vary, the wording does not).
TEXTS: dict[ReasonCode, str] = {
    ReasonCode.SURPLUS: r"surplus covers the load \(.+\)|surplus .+ >= start .+",
    ReasonCode.NO_SURPLUS: r"(L\d )?(surplus|export) .+ < (load .+ - tolerated import .+|start .+)",
    ReasonCode.SOC_GATE: r"soc .+ < gate .+",
    ReasonCode.ON_DELAY: r"start condition held .+ of .+",
    ReasonCode.START_READY: r"start condition held ((?! of ).)+",
    ReasonCode.OFF_DELAY: r"(fail-safe: )?stop condition held .+ of .+",
    ReasonCode.SHED_READY: r"stop condition held ((?! of ).)+",
    ReasonCode.RECOVERED: r"stop condition cleared",
    ReasonCode.SETTLING: r"settling .+ < .+ after the last switch",
    ReasonCode.WAITING_FOR_SLOT: r"waiting: another load "
    r"(takes this tick's start|is shed this tick)",
    ReasonCode.MIN_RUNTIME: r"min runtime: .+ left",
    ReasonCode.MIN_OFF: r"off for .+ < min_off .+",
    ReasonCode.BRAKE: r"(force on held back: |override ended; )?emergency brake: .+"
    r"|soc .+ < brake .+",
    ReasonCode.EXCLUSION: r"exclusive with .+, which is (running|switching on)"
    r"|force on waits: exclusive with .+|making way for .+, forced on by the owner",
    ReasonCode.OUTDOOR_LIMIT: r"outdoor .+°C > .+°C",
    ReasonCode.OUTDOOR_UNKNOWN: r"outdoor temperature unknown",
    ReasonCode.COMPRESSOR_IDLE: r"compressor idle .+: target reached, releasing; cooldown .+",
    ReasonCode.CAR_NOT_CHARGING: r"car not charging: .+ < .+ for .+; retry in .+",
    ReasonCode.COOLDOWN: r"cooldown: .+ left",
    ReasonCode.COOLDOWN_OVER: r"cooldown over",
    ReasonCode.STALE_DATA: r"no fresh grid/soc data for .+",
    ReasonCode.FAILSAFE: r"fail-safe: no fresh grid/soc data for .+",
    ReasonCode.FORECAST: r"forecast .+ left today >= .+: gate .+ -> .+",
    ReasonCode.CHARGING_WINDOW: r"car charging window \(.+\): charging regardless of surplus",
    ReasonCode.UNREACHABLE: r"device unreachable: .+"
    r"|manual hold expired; waiting for a reading of the device \(.+\)",
    ReasonCode.UNAVAILABLE: r".+",  # the device's own error
    ReasonCode.AVAILABLE_AGAIN: r"device available again(, still running)?",
    ReasonCode.MANUAL: r"(switched (on|off) by hand.*|target set to .+ by someone else); "
    r"leaving it alone for .+|manual: EMS leaves it alone \(.+ left\)",
    ReasonCode.MANUAL_ENDED: r"manual hold expired",
    ReasonCode.FORCED_ON: r"forced on by the owner",
    ReasonCode.FORCED_OFF: r"forced off by the owner",
    ReasonCode.OVERRIDE_ENDED: r"override ended",
    ReasonCode.MODE_OFF: r"charging mode off",
    ReasonCode.MODE_NOW: r"mode now: charging regardless of surplus",
    ReasonCode.TARGET_DUE: r"target (\w{3} )?\d\d:\d\d( \(.+\))?: (.+ to go, must start by "
    r"(\w{3} )?\d\d:\d\d: charging regardless of surplus|energy reached, the car still "
    r"draws: charging on until it is full)",
    ReasonCode.TARGET_PLANNED: r"target (\w{3} )?\d\d:\d\d( \(.+\))?: .+ to go, surplus until "
    r"(\w{3} )?\d\d:\d\d",
    ReasonCode.AWAITING_CAR: r"no car seen: the relay stays on to see one come",
    ReasonCode.CAR_HELD: r"a car came: held, it need not charge now",
    ReasonCode.MAX_STARTS: r"started \d+ times today \(max \d+\)",
    ReasonCode.PLANNED: r"planned \d\d:\d\d-\d\d:\d\d: .+",
    ReasonCode.PLAN_HOLD: r"plan: the battery needs the surplus.*",
    ReasonCode.TARGET_MET: r"target (\w{3} )?\d\d:\d\d( \(.+\))? met: surplus only",
}


def test_every_reason_code_has_its_sentences() -> None:
    assert set(TEXTS) == set(ReasonCode)


def check_codes(v: Verdict, *, fresh: bool) -> None:
    """Each code goes with its sentence, and the codes say what the transition is about (an
    early release's reason comes first)."""
    codes = v.codes
    for code, text in zip(codes, v.reasons, strict=True):
        assert re.fullmatch(TEXTS[code], text), (code, text)
    if v.event is Event.DETECT_MANUAL:
        assert codes == (ReasonCode.MANUAL,), v
    if v.event is Event.LOSE:
        assert codes == (ReasonCode.UNAVAILABLE,), v
    if v.event is Event.FORCE_ON:
        assert ReasonCode.FORCED_ON in codes, v
    if v.event is Event.FORCE_OFF:
        assert ReasonCode.FORCED_OFF in codes, v
    if v.event is Event.START:
        assert ReasonCode.START_READY in codes, v
    if v.release is Release.COMPRESSOR_IDLE:
        assert codes[0] is ReasonCode.COMPRESSOR_IDLE, v
    if v.release is Release.CAR_NOT_CHARGING:
        assert codes[0] is ReasonCode.CAR_NOT_CHARGING, v
    if v.release is Release.BRAKE:
        assert ReasonCode.BRAKE in codes, v
    if v.release is Release.EXCLUSION:
        assert ReasonCode.EXCLUSION in codes, v
    if v.release is Release.FAILSAFE:
        assert ReasonCode.FAILSAFE in codes, v
    if ReasonCode.STALE_DATA in codes or ReasonCode.FAILSAFE in codes:
        assert not fresh, v
    if ReasonCode.SURPLUS in codes or ReasonCode.NO_SURPLUS in codes:
        assert fresh, v


def _automatic(plan: list[Regime]) -> list[Regime]:
    """The same weather without people, overrides or faults."""
    clear = {"person": None, "deadman_runs_out": None, "override": None, "fault": None}
    return [Regime(**{**r.__dict__, **clear}) for r in plan]


SETTINGS = settings(
    max_examples=70,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _regime(ticks: int, surplus: float | None, **kw: Any) -> Regime:
    base: dict[str, Any] = {
        "step_s": 60,
        "jitter": 0.0,
        "soc": 75.0,
        "battery": 0.0,
        "compressor": 2000.0,
        "outdoor": 5.0,
        "l1": None,
        "car_a_w": 2000.0,
        "forecast_wh": None,
        "person": None,
        "deadman_runs_out": None,
        "override": None,
        "fault": None,
    }
    return Regime(ticks=ticks, surplus=surplus, **{**base, **kw})


@SETTINGS
@given(situations)
# Cases worth keeping whatever hypothesis draws:
# - loads disarming when the data goes away, with an off_delay longer than the fail-safe wait;
@example(("slow_off", 10, [_regime(12, 8000), _regime(2, -1000), _regime(12, None)]))
# - a person switches WB B on in the very tick WB A would start (SG-Ready is out: too warm).
@example(
    (
        "house",
        10,
        [
            _regime(7, 8000, outdoor=25.0),
            _regime(3, 8000, outdoor=25.0, person=(LoadId.WB_B, True)),
        ],
    )
)
# - a person switches SG-Ready on in the tick its on_delay runs out; the owner forces DHW off
#   in the tick it would start.
@example(
    (
        "house",
        10,
        [
            _regime(4, 8000),
            _regime(3, 8000, person=(LoadId.SG_READY, True)),
            _regime(3, 8000, override=(LoadId.DHW, Mode.FORCE_OFF, None)),
        ],
    )
)
# - a device whose login is revoked while it runs, and that answers again.
@example(
    (
        "house",
        10,
        [
            _regime(10, 8000),
            _regime(3, 8000, fault=(LoadId.SG_READY, "unavailable")),
            _regime(3, 8000),
        ],
    )
)
def test_invariants_hold_in_random_situations(situation: tuple[str, int, list[Regime]]) -> None:
    play(*situation)


@SETTINGS
@given(situations)
def test_without_people_exclusive_loads_are_never_on_together(
    situation: tuple[str, int, list[Regime]],
) -> None:
    name, hour, plan = situation
    cfg = CONFIGS[name]
    for tick in play(name, hour, _automatic(plan)):
        for group in cfg.control.exclusive:
            on = [x for x in group if tick.statuses[x].state in OUTPUT_ON]
            assert len(on) <= 1, (tick.at, on)


@settings(max_examples=10, derandomize=True, database=None, deadline=None)
@given(situations)
def test_a_replay_of_the_same_situation_decides_the_same(
    situation: tuple[str, int, list[Regime]],
) -> None:
    first = play(*situation)
    second = play(*situation)
    assert [(t.at, t.result.transitions, t.result.commands) for t in first] == [
        (t.at, t.result.transitions, t.result.commands) for t in second
    ]
