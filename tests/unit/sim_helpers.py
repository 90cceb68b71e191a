"""Builders of small synthetic scenarios for the simulator's tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from emsctl.sim.scenario import COLUMNS, Scenario, read_scenario_text

Row = dict[str, float]


def scenario_csv(
    minutes: int,
    row: Callable[[int], Row],
    start: datetime = datetime(2026, 3, 20, 6, 0, tzinfo=UTC),
) -> str:
    """CSV text: `row(i)` gives the cells of minute i (missing keys: 0; None: empty)."""
    lines = [",".join(COLUMNS)]
    for i in range(minutes):
        cells = row(i)
        t = start + timedelta(minutes=i)
        out = [t.strftime("%Y-%m-%dT%H:%M:%SZ")]
        for name in COLUMNS[1:]:
            v = cells.get(name, 0.0)
            out.append("" if v is None else f"{v:g}")
        lines.append(",".join(out))
    return "\n".join(lines) + "\n"


def scenario(minutes: int, row: Callable[[int], Row], name: str = "synthetic") -> Scenario:
    return read_scenario_text(scenario_csv(minutes, row), name)
