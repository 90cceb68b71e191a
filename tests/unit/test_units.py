"""One way to write powers, energies, durations and percentages, for the engine's reasons and
the web UI alike."""

from __future__ import annotations

import math

import pytest

from emsctl import units


@pytest.mark.parametrize(
    ("watts", "text"),
    [(250, "250 W"), (999, "999 W"), (1000, "1.0 kW"), (-1500, "-1.5 kW"), (2349, "2.3 kW")],
)
def test_power_is_shown_in_w_below_a_kilowatt_and_kw_above(watts: float, text: str) -> None:
    assert units.power(watts) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45.9, "45 s"),  # whole seconds, cut: a "left" never shows more than there is
        (60, "1 min"),
        (192, "3 min 12 s"),
        (3600, "1 h"),
        (7500, "2 h 05 min"),
        (86400 + 4 * 3600, "1 d 4 h"),
        (2 * 86400, "2 d"),
        (-5, "0 s"),
    ],
)
def test_durations_read_as_s_min_h_d(seconds: float, text: str) -> None:
    assert units.duration(seconds) == text


@pytest.mark.parametrize(("wh", "text"), [(850, "850 Wh"), (12345, "12.3 kWh")])
def test_energy(wh: float, text: str) -> None:
    assert units.energy(wh) == text


@pytest.mark.parametrize(("pct", "text"), [(62.0, "62%"), (49.96, "50%"), (49.94, "49.9%")])
def test_percent_has_a_decimal_only_where_it_shows(pct: float, text: str) -> None:
    assert units.percent(pct) == text


@pytest.mark.parametrize("fmt", [units.power, units.energy, units.duration, units.percent])
@pytest.mark.parametrize("value", [None, math.inf, -math.inf, math.nan])
def test_a_missing_or_non_finite_value_is_a_dash(fmt: object, value: float | None) -> None:
    assert fmt(value) == units.DASH  # type: ignore[operator]
