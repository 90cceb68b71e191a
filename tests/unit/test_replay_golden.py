"""The year replay's transitions, to the minute, are a fixed reference for refactoring.

Every transition of every load (time, load, from, to, event) made on the year
(bench/data/year_2026.csv.gz) is compared with the list recorded in tests/fixtures/replay/,
for two configs: the house's (cars charge at plug-in, so mostly the heat pump's rules) and the
house's with the cars on surplus by day and a night window (the wallboxes' rules: exclusion,
priority, car not charging). A change of the engine, the machines or the site that is meant to keep
behaviour must keep this list; a change of behaviour re-records it on purpose:

    EMS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_replay_golden.py

and the commit says why the decisions changed. Reason texts are not compared (wording may
change without changing a decision).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from emsctl.config import Config, parse_config
from emsctl.sim.runner import run_ems
from emsctl.sim.scenario import read_scenario
from tests.conftest import untraced

ROOT = Path(__file__).resolve().parents[2]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
HOUSE = ROOT / "configs" / "ems-config.yaml"
GOLDEN = ROOT / "tests" / "fixtures" / "replay"
FIELDS = ("at", "load", "source", "target", "event")

Row = tuple[str, str, str, str, str]


def _config(variant: str) -> Config:
    raw: dict[str, Any] = yaml.safe_load(HOUSE.read_text())
    if variant == "cars_on_surplus":
        for wb in ("wb_a", "wb_b"):
            # The window rules alone (rule 15), as before charging by target, with the
            # wallboxes' former thresholds.
            raw["loads"][wb]["charging"] = {"enabled": False}
            raw["loads"][wb].update(
                gate_pct={"wb_a": 70, "wb_b": 90}[wb], start_w=None, max_import_w=300
            )
            raw["loads"][wb]["fallback"] = {
                "enabled": True,
                "from": "22:00",
                "until": "06:30",
                "beats_brake": False,
                "ignores_exclusion": False,
            }
    return parse_config(raw, f"{HOUSE.name} ({variant})")


def _path(variant: str) -> Path:
    return GOLDEN / f"year_2026_{variant}_transitions.csv.gz"


def _replay(variant: str) -> list[Row]:
    with untraced():
        run = run_ems(read_scenario(YEAR), _config(variant))
    return [
        (t.at.isoformat(), t.load.value, t.source.value, t.target.value, t.event)
        for t in run.transitions
    ]


def _write(path: Path, rows: list[Row]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FIELDS)
    writer.writerows(rows)
    # mtime 0: the same list gives the same bytes.
    path.write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))


def _read(path: Path) -> list[Row]:
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        assert tuple(next(reader)) == FIELDS
        return [tuple(r) for r in reader]  # type: ignore[misc]


VARIANTS = ["house", "cars_on_surplus"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_year_replay_makes_the_recorded_transitions_to_the_minute(variant: str) -> None:
    rows = _replay(variant)
    if os.environ.get("EMS_UPDATE_GOLDEN") == "1":
        _write(_path(variant), rows)
    golden = _read(_path(variant))
    if rows == golden:
        return
    first = next(
        (i for i, (a, b) in enumerate(zip(rows, golden, strict=False)) if a != b),
        min(len(rows), len(golden)),
    )
    context = slice(max(0, first - 2), first + 3)
    raise AssertionError(
        f"{len(rows)} transitions, {len(golden)} recorded; the first difference at #{first}:\n"
        f"  now:      {rows[context]}\n  recorded: {golden[context]}\n"
        "A refactoring must not change decisions; a change of behaviour re-records the list "
        "(EMS_UPDATE_GOLDEN=1, see this module's docstring)."
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_recorded_list_is_a_year_of_decisions(variant: str) -> None:
    golden = _read(_path(variant))
    assert len(golden) > 1000
    assert {r[1] for r in golden} == {"sg_ready", "dhw", "wb_a", "wb_b"}
    assert golden[0][0] < "2026-01-02" and golden[-1][0] > "2026-12-01"
