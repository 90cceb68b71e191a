"""bench/cut_scenario.py reproduces the bundled week from the year file, row for row."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

from bench.cut_scenario import cut

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "emsctl" / "sim" / "scenarios" / "s6_april_week.csv.gz"


def test_the_april_week_is_the_cut_its_docs_name(tmp_path: Path) -> None:
    # docs/simulator.md: "cut with bench/cut_scenario.py 2026-04-01 7".
    out = tmp_path / "week.csv.gz"
    assert cut(date(2026, 4, 1), 7, out) == 7 * 1440
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(BUNDLED.read_bytes())


def test_the_same_cut_gives_the_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    cut(date(2026, 10, 24), 2, a)  # over the end of summer time: a local day of 25 hours
    cut(date(2026, 10, 24), 2, b)
    assert a.read_bytes() == b.read_bytes()
    rows = gzip.decompress(a.read_bytes()).decode().splitlines()
    assert rows[0].startswith("timestamp,")
    assert len(rows) - 1 == 2 * 1440 + 60
    assert rows[1].startswith("2026-10-23T22:00")
    assert rows[-1].startswith("2026-10-25T22:59")
