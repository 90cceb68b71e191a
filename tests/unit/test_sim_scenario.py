"""Scenario files: good ones parse into columns, bad ones fail naming file, line and cell."""

from __future__ import annotations

import gzip
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emsctl.sim.scenario import (
    COLUMNS,
    ScenarioError,
    bundled_scenarios,
    load,
    read_scenario,
    resolve_scenario,
)
from tests.conftest import SCENARIOS

HEADER = ",".join(COLUMNS)
ROW0 = "2026-05-10T10:00:00Z,1000.5,300,12.5,800,0,1,5000,0,0"
ROW1 = "2026-05-10T10:01:00Z,1100,310,12.6,790,0,1,5000,0,0"
ROW2 = "2026-05-10T10:02:00Z,1200,320,12.7,780,0,1,5000,0,0"


def write(tmp_path: Path, *lines: str, name: str = "s.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def error_of(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        read_scenario(path)
    return info.value


def test_a_good_file_becomes_columns_with_its_start_and_length(tmp_path: Path) -> None:
    scn = read_scenario(write(tmp_path, HEADER, ROW0, ROW1, ROW2))
    assert scn.minutes == 3
    assert scn.start == datetime(2026, 5, 10, 10, 0, tzinfo=UTC)
    assert list(scn.values["pv_w"]) == [1000.5, 1100.0, 1200.0]
    assert list(scn.values["car_a_need_wh"]) == [5000.0] * 3
    assert scn.gaps == {}
    assert scn.name == "s"


def test_columns_may_come_in_any_order(tmp_path: Path) -> None:
    names = list(COLUMNS)
    names[1], names[2] = names[2], names[1]
    row = ROW0.split(",")
    row[1], row[2] = row[2], row[1]
    scn = read_scenario(write(tmp_path, ",".join(names), ",".join(row)))
    assert scn.values["pv_w"][0] == 1000.5
    assert scn.values["house_w"][0] == 300.0


def test_gzip_is_read_by_suffix(tmp_path: Path) -> None:
    p = tmp_path / "s.csv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write("\n".join([HEADER, ROW0, ROW1]) + "\n")
    scn = read_scenario(p)
    assert scn.minutes == 2
    assert scn.name == "s"


def test_empty_cells_are_missing_measurements_and_the_plant_holds_the_last_value(
    tmp_path: Path,
) -> None:
    gap = "2026-05-10T10:01:00Z,,,12.6,790,0,1,5000,0,0"
    scn = read_scenario(write(tmp_path, HEADER, ROW0, gap, ROW2))
    assert list(scn.gaps["pv_w"]) == [0, 1, 0]
    assert list(scn.gaps["house_w"]) == [0, 1, 0]
    assert "outdoor_c" not in scn.gaps
    assert list(scn.values["pv_w"]) == [1000.5, 1000.5, 1200.0]
    assert all(not math.isnan(v) for v in scn.values["house_w"])


def test_a_truth_file_next_to_the_scenario_supplies_the_physics_for_its_gaps() -> None:
    scn = read_scenario(SCENARIOS / "s8_data_gaps.csv")
    truth = read_scenario(SCENARIOS / "truth" / "s8_data_gaps_truth.csv")
    assert scn.truth_source is not None
    assert sum(scn.gaps["pv_w"]) > 100  # a 47-min and a 150-min outage plus dropouts
    assert list(scn.values["pv_w"]) == list(truth.values["pv_w"])
    assert list(scn.values["house_w"]) == list(truth.values["house_w"])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER.replace("pv_w", "pv"), "unknown column 'pv'"),
        (HEADER.replace(",car_b_need_wh", ""), "missing column(s) car_b_need_wh"),
        (HEADER + ",pv_w", "column 'pv_w' appears twice"),
    ],
)
def test_a_bad_header_names_the_problem_on_line_1(
    tmp_path: Path, header: str, expected: str
) -> None:
    err = error_of(write(tmp_path, header, ROW0))
    assert err.line == 1
    assert expected in str(err)
    assert "Expected: timestamp,pv_w" in str(err)
    assert str(tmp_path / "s.csv") in str(err)


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("", encoding="utf-8")
    assert "empty file" in str(error_of(p))


def test_a_header_without_rows_is_an_error(tmp_path: Path) -> None:
    assert "no data rows" in str(error_of(write(tmp_path, HEADER)))


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        (
            "2026-05-10T10:01:00Z,abc,310,12.6,790,0,1,5000,0,0",
            "column pv_w: 'abc' is not a number",
        ),
        (
            "2026-05-10T10:01:00Z,nan,310,12.6,790,0,1,5000,0,0",
            "column pv_w: 'nan' is not a number",
        ),
        ("2026-05-10T10:01:00Z,inf,310,12.6,790,0,1,5000,0,0", "is not finite"),
        ("2026-05-10T10:01:00Z,-5,310,12.6,790,0,1,5000,0,0", "must not be negative"),
        ("2026-05-10T10:01:00Z,1,310,12.6,790,0,2,5000,0,0", "car_a_plugged: '2' must be 0 or 1"),
        ("2026-05-10T10:01:00Z,1,310,12.6,790,0,1,5000,0", "9 cells, the header has 10"),
        ("yesterday,1,310,12.6,790,0,1,5000,0,0", "'yesterday' is not an ISO 8601 time"),
    ],
)
def test_an_unparsable_row_names_its_line_and_cell(
    tmp_path: Path, bad_row: str, expected: str
) -> None:
    err = error_of(write(tmp_path, HEADER, ROW0, bad_row, ROW2))
    assert err.line == 3
    assert expected in str(err)
    assert f"{tmp_path / 's.csv'}, line 3: " in str(err)


def test_negative_outdoor_temperatures_are_fine(tmp_path: Path) -> None:
    row = ROW1.replace(",12.6,", ",-8.5,")
    scn = read_scenario(write(tmp_path, HEADER, ROW0, row))
    assert scn.values["outdoor_c"][1] == -8.5


def test_a_timestamp_going_backwards_is_reported_with_its_line(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, HEADER, ROW0, ROW1, ROW1))
    assert err.line == 4
    assert "is not after the previous row's" in str(err)


def test_a_gap_between_rows_is_reported_with_its_line(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, HEADER, ROW0, ROW2))
    assert err.line == 3
    assert "2 minutes after the previous row's" in str(err)


@pytest.mark.parametrize("stamp", ["2026-05-10T12:01:00+02:00", "2026-05-10T10:01:00"])
def test_a_timestamp_not_in_utc_is_reported_with_its_line(tmp_path: Path, stamp: str) -> None:
    row = ROW1.replace("2026-05-10T10:01:00Z", stamp)
    err = error_of(write(tmp_path, HEADER, ROW0, row))
    assert err.line == 3
    assert "is not UTC" in str(err)


def test_errors_deep_in_a_long_file_carry_the_right_line(tmp_path: Path) -> None:
    # Rows are parsed in chunks; the line number must survive the chunking.
    lines = [HEADER]
    for i in range(70000):
        t = datetime(2026, 1, 1, tzinfo=UTC).timestamp() + 60 * i
        stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        pv = "x" if i == 69000 else "0"
        lines.append(f"{stamp},{pv},300,5,0,0,0,0,0,0")
    err = error_of(write(tmp_path, *lines))
    assert err.line == 69002


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    assert "cannot read" in str(error_of(tmp_path / "nope.csv"))


def test_a_corrupt_gzip_file_is_a_scenario_error(tmp_path: Path) -> None:
    p = tmp_path / "s.csv.gz"
    p.write_bytes(b"not gzip at all")
    assert "not a readable CSV file" in str(error_of(p))


def test_bundled_scenarios_are_found_by_name() -> None:
    names = bundled_scenarios()
    assert {"s1_clear_summer", "s2_spring_fast_clouds", "s5_car_a_arrives_full"} <= set(names)
    for name in names:
        scn = load(name)
        assert scn.minutes >= 1440
    assert resolve_scenario("s2_spring_fast_clouds.csv").name == "s2_spring_fast_clouds.csv"


def test_an_unknown_scenario_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match="bundled: s1_clear_summer"):
        resolve_scenario("no_such_scenario")
