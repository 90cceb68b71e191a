"""Reasons in the metrics: `ems_load_reason_info{load, code}` labels with the closed set of
reason codes, so the number of time series stays bounded however the reasons' figures change;
the human sentences stay in the verdicts (and so in /api/status and the web UI)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from emsctl.config import load_config
from emsctl.controller import Controller, Devices
from emsctl.metrics import Metrics
from emsctl.model import Decision, LoadId, ReasonCode, Snapshot, State, Verdict
from emsctl.sim.adapters import SimHouse
from emsctl.sim.demo import DEMO_CONFIG
from emsctl.sim.scenario import load
from emsctl.site import Site, TickResult
from emsctl.status import LoadView, StatusReport

from .test_engine_properties import TEXTS

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "emsctl" / "engine"
DOC = ROOT / "docs" / "decision-logic.md"
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)

#: Labels whose values are numbers by nature: histogram buckets and the build's version.
NUMERIC_LABELS = {"le", "version"}


def _closed(value: str) -> bool:
    """A label value like a name from a closed set: `wb_a`, `grid_l1_w`, `min_runtime`."""
    return re.fullmatch(r"[a-z][a-z0-9_.]*", value) is not None and not re.search(r"\d\d", value)


def _series(metrics: Metrics) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the exposition, as a scrape sees it."""
    text = generate_latest(metrics.registry).decode()
    return [
        (s.name, dict(s.labels), s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    ]


@pytest.mark.parametrize(
    ("config", "scenario"),
    [
        (DEMO_CONFIG, "s2_spring_fast_clouds"),
        (ROOT / "configs" / "ems-config.yaml", "s1_clear_summer"),
    ],
    ids=["demo-clouds", "house-summer"],
)
def test_a_simulated_day_keeps_the_reason_series_bounded(config: Path, scenario: str) -> None:
    cfg = load_config(config)
    house = SimHouse(load(scenario), cfg)
    metrics = Metrics()
    site = Site(cfg, house.now)
    devices = Devices(
        collector=house.collector, actuators=dict(house.actuators), forecast=house.forecaster
    )
    ctl = Controller(cfg, site, devices, metrics=metrics, now=lambda: house.now)
    loads = {x.value for x in cfg.enabled_loads()}
    codes = {c.value for c in ReasonCode}
    seen: set[tuple[str, str]] = set()
    ticks = 0
    while not house.done:
        ctl.tick()
        ticks += 1
        current: dict[str, set[str]] = {x: set() for x in loads}
        for name, labels, value in _series(metrics):
            # No label carries free text or a figure that changes from tick to tick.
            assert all(_closed(v) for k, v in labels.items() if k not in NUMERIC_LABELS), (
                name,
                labels,
            )
            if name != "ems_load_reason_info":
                continue
            assert set(labels) == {"load", "code"}, labels
            assert labels["load"] in loads and labels["code"] in codes, labels
            assert value == 1
            current[labels["load"]].add(labels["code"])
            seen.add((labels["load"], labels["code"]))
        # Exactly the codes of the load's current verdict: the ones that no longer hold are gone.
        decision = site.last_decision
        assert decision is not None
        for load_id, verdict in decision.verdicts.items():
            assert current[load_id.value] == {c.value for c in verdict.codes}, (house.now, verdict)
        house.advance()
    assert ticks == 1440
    assert len(seen) <= len(ReasonCode) * len(loads)
    # In practice a load meets a handful of codes in a day (hundreds of series per load when
    # the sentences were labels).
    assert len(seen) <= 12 * len(loads), sorted(seen)


def _view(load: LoadId) -> LoadView:
    return LoadView(
        load=load,
        state=State.OFF,
        since=T0,
        output_on=False,
        reasons=(),
        relay_on=False,
        power_w=None,
        source=None,
        error=None,
    )


def _verdict(load: LoadId, *reasons: tuple[ReasonCode, str]) -> Verdict:
    return Verdict(
        load=load,
        event=None,
        start_ok=False,
        keep_ok=True,
        reasons=tuple(text for _, text in reasons),
        codes=tuple(code for code, _ in reasons),
        gate_pct=50.0,
        surplus_w=None,
    )


def _observe(metrics: Metrics, *verdicts: Verdict) -> dict[str, set[str]]:
    report = StatusReport(
        at=T0,
        snapshot=Snapshot(at=T0),
        loads={v.load: _view(v.load) for v in verdicts},
        surplus_w=None,
        max_age_s=300,
    )
    decision = Decision(verdicts={v.load: v for v in verdicts}, watch={}, surplus_w=None)
    metrics.observe_tick(report, TickResult(decision=decision, commands=[]), 0.01)
    out: dict[str, set[str]] = {}
    for name, labels, _value in _series(metrics):
        if name == "ems_load_reason_info":
            out.setdefault(labels["load"], set()).add(labels["code"])
    return out


def test_each_code_is_one_series_and_goes_when_it_no_longer_holds() -> None:
    metrics = Metrics()
    sg, wa = LoadId.SG_READY, LoadId.WB_A
    got = _observe(
        metrics,
        _verdict(
            sg,
            (ReasonCode.SOC_GATE, "soc 44% < gate 50%"),
            (ReasonCode.MIN_OFF, "off for 1 min 35 s < min_off 10 min"),
        ),
        _verdict(
            wa,
            (ReasonCode.EXCLUSION, "exclusive with wb_b, which is running"),
            (ReasonCode.EXCLUSION, "exclusive with dhw, which is running"),
        ),
    )
    assert got == {"sg_ready": {"soc_gate", "min_off"}, "wb_a": {"exclusion"}}
    # The figures change, the series do not; a code that no longer holds loses its series.
    got = _observe(
        metrics,
        _verdict(sg, (ReasonCode.MIN_OFF, "off for 1 min 36 s < min_off 10 min")),
        _verdict(wa, (ReasonCode.EXCLUSION, "exclusive with wb_b, which is running")),
    )
    assert got == {"sg_ready": {"min_off"}, "wb_a": {"exclusion"}}
    # A load without reasons, and one no longer driven (after a reload), have none.
    got = _observe(metrics, _verdict(sg))
    assert got == {}


def test_the_engine_gives_every_code_and_no_other() -> None:
    used = set()
    for path in ENGINE.glob("*.py"):
        used.update(re.findall(r"ReasonCode\.([A-Z_]+)", path.read_text(encoding="utf-8")))
    assert used == set(ReasonCode.__members__)


def test_the_decision_logic_doc_lists_every_code_with_its_sentences() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Reason codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| [^|]+ \| (.+) \|$", section, flags=re.MULTILINE)
    listed = [code for code, _ in rows]
    assert sorted(listed) == sorted(c.value for c in ReasonCode)
    assert len(listed) == len(set(listed))
    for code, examples in rows:
        for example in re.findall(r"`([^`]+)`", examples):
            assert re.fullmatch(TEXTS[ReasonCode(code)], example), (code, example)
