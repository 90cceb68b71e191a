"""One glitched sample must not blow up the history chart (the finding: a grid sample of
-4,294,967,295 W drew a gridline per 20 kW and made /history 22 MB; 1e308 made it a 500)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from emsctl.store.records import SampleRecord
from webui import chart

BERLIN = ZoneInfo("Europe/Berlin")
END = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def _day(glitch: dict[str, float]) -> list[SampleRecord]:
    out = []
    for m in range(0, 24 * 60, 5):
        values = {"pv_w": 3000.0, "grid_w": -1500.0, "soc_pct": 70.0}
        if m == 600:
            values.update(glitch)
        out.append(SampleRecord(at=END - timedelta(minutes=m), values=values, loads={}))
    return out


@pytest.mark.parametrize(
    "glitch",
    [
        {"grid_w": -4_294_967_295.0},
        {"grid_w": -1e11},
        {"grid_w": 1e308},
        {"pv_w": math.inf},
        {"pv_w": math.nan},
        {"soc_pct": 6553.5},
    ],
)
def test_a_glitch_leaves_the_chart_small_and_scaled_to_the_real_data(
    glitch: dict[str, float],
) -> None:
    svg = str(chart.render(_day(glitch), ["wb_a"], END, BERLIN))
    assert len(svg) < 100_000
    labels = re.findall(r">(-?[\d.]+) kW<", svg)
    assert 2 <= len(labels) <= 8
    # The axis fits the real 3 kW day, not the glitch.
    assert max(float(x) for x in labels) <= 4


@pytest.mark.parametrize("span", [0.0, 999.0, 6000.0, 61_000.0, 2e6, math.inf, math.nan])
def test_the_axis_step_gives_at_most_six_steps_for_any_span(span: float) -> None:
    step = chart.nice_step(span)
    assert step >= 500.0
    if math.isfinite(span):
        assert span / step <= 6
