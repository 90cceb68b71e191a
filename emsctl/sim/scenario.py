"""Scenario files: 1-minute UTC rows of PV, house load, weather, heat demand and car sessions.

`read_scenario` turns a CSV (gzip by suffix) into compact columns for the plant, keeping which
measurement cells were empty so the simulated collector can report them as missing.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import math
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from itertools import islice
from math import isnan
from operator import attrgetter
from pathlib import Path
from typing import TextIO

#: The columns of a scenario file, in the documented order (docs/simulator.md).
COLUMNS: tuple[str, ...] = (
    "timestamp",
    "pv_w",
    "house_w",
    "outdoor_c",
    "heat_demand_w",
    "dhw_draw_w",
    "car_a_plugged",
    "car_a_need_wh",
    "car_b_plugged",
    "car_b_need_wh",
)
#: Numeric columns (everything but the timestamp).
VALUE_COLUMNS: tuple[str, ...] = COLUMNS[1:]
_FLAGS = frozenset({"car_a_plugged", "car_b_plugged"})
_MAY_BE_NEGATIVE = frozenset({"outdoor_c"})
_STEP = timedelta(minutes=1)
_CHUNK = 8192
_ZERO = timedelta(0)
_tzinfo = attrgetter("tzinfo")

#: Where the package's own scenarios live.
BUNDLED_PACKAGE = "emsctl.sim.scenarios"


class ScenarioError(Exception):
    """A scenario file is unusable; names the file and, where it applies, the line."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class Scenario:
    """A scenario in columns. Value columns are physics inputs without gaps (see `gaps`).

    `gaps` maps a column name to a bytearray with 1 where the file's cell was empty: the plant
    still runs on a value there (the truth file's, else the last known one), the simulated
    collector reports the measurement as missing.
    """

    name: str
    source: str
    start: datetime
    values: dict[str, array[float]]
    gaps: dict[str, bytearray] = field(default_factory=dict)
    truth_source: str | None = None

    @property
    def minutes(self) -> int:
        return len(self.values["pv_w"])

    @property
    def end(self) -> datetime:
        """The end of the last minute (exclusive)."""
        return self.start + self.minutes * _STEP

    def column(self, name: str) -> array[float]:
        return self.values[name]

    def time(self, index: int) -> datetime:
        return self.start + index * _STEP

    def index_of(self, at: datetime) -> int:
        """The row index of the minute containing `at` (clamped to the scenario)."""
        i = int((at - self.start) / _STEP)
        return max(0, min(self.minutes - 1, i))

    def slice(self, first: int, count: int) -> Scenario:
        """Rows first..first+count-1 as a scenario of their own (for the demo and tests)."""
        last = min(self.minutes, first + count)
        return Scenario(
            name=self.name,
            source=self.source,
            start=self.time(first),
            values={k: v[first:last] for k, v in self.values.items()},
            gaps={k: v[first:last] for k, v in self.gaps.items()},
            truth_source=self.truth_source,
        )


# --------------------------------------------------------------------------- reading


@contextmanager
def _open(path: Path) -> Iterator[TextIO]:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fz:
            yield fz
    else:
        with path.open("r", encoding="utf-8", newline="") as f:
            yield f


@contextmanager
def _no_gc() -> Iterator[None]:
    # Hundreds of thousands of short-lived row lists make the cyclic collector run constantly
    # without ever finding a cycle; pausing it makes parsing several times faster.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _header(src: str, row: Sequence[str] | None) -> dict[str, int]:
    if not row:
        raise ScenarioError(src, "empty file: expected a header line " + ",".join(COLUMNS), 1)
    names = [c.strip() for c in row]
    positions: dict[str, int] = {}
    problems: list[str] = []
    for i, name in enumerate(names):
        if name in positions:
            problems.append(f"column {name!r} appears twice")
        elif name not in COLUMNS:
            problems.append(f"unknown column {name!r}")
        positions[name] = i
    missing = [c for c in COLUMNS if c not in positions]
    if missing:
        problems.append("missing column(s) " + ", ".join(missing))
    if problems:
        raise ScenarioError(
            src, "bad header: " + "; ".join(problems) + ". Expected: " + ",".join(COLUMNS), 1
        )
    return positions


def _cell_error(src: str, line: int, name: str, cell: str, why: str) -> ScenarioError:
    return ScenarioError(src, f"column {name}: {cell!r} {why}", line)


def _convert_slow(src: str, name: str, cells: Sequence[str], first_line: int) -> list[float]:
    """Per cell, for a chunk with empty or bad cells: empty -> NaN, anything else must parse."""
    out: list[float] = []
    append = out.append
    nan = math.nan
    for k, cell in enumerate(cells):
        text = cell.strip()
        if not text:
            append(nan)
            continue
        try:
            append(float(text))
        except ValueError:
            raise _cell_error(src, first_line + k, name, cell, "is not a number") from None
    return out


def _check_values(src: str, name: str, vals: Sequence[float], first_line: int) -> None:
    """Reject infinities, negative powers and flags other than 0/1 (NaN = empty cell)."""
    flag = name in _FLAGS
    signed = name in _MAY_BE_NEGATIVE
    # Fast path in C: a finite sum means no NaN and no infinity; then min/max are exact.
    if (
        math.isfinite(sum(vals))
        and (signed or min(vals) >= 0)
        and (not flag or set(vals) <= {0.0, 1.0})
    ):
        return
    for k, v in enumerate(vals):
        if isnan(v):
            continue
        if math.isinf(v):
            raise _cell_error(src, first_line + k, name, str(v), "is not finite")
        if flag and v not in (0.0, 1.0):
            raise _cell_error(src, first_line + k, name, f"{v:g}", "must be 0 or 1")
        if not signed and v < 0:
            raise _cell_error(src, first_line + k, name, f"{v:g}", "must not be negative")


def _check_times(src: str, stamps: Sequence[datetime], prev: datetime | None, line: int) -> None:
    """Every stamp UTC and exactly one minute after the one before (fast path in C)."""
    if set(map(_tzinfo, stamps)) == {UTC}:
        first = stamps[0]
        if prev is None or first - prev == _STEP:
            base = int(first.timestamp())
            seconds = list(map(int, map(datetime.timestamp, stamps)))
            if seconds == list(range(base, base + 60 * len(stamps), 60)):
                return
    for k, t in enumerate(stamps):
        off = t.utcoffset()
        if off is None or off != _ZERO:
            raise ScenarioError(
                src,
                f"timestamp {t.isoformat()} is not UTC (write it as 2026-01-01T00:00:00Z)",
                line + k,
            )
        if prev is not None and t - prev != _STEP:
            if t <= prev:
                why = (
                    f"timestamp {t.isoformat()} is not after the previous row's {prev.isoformat()}"
                )
            else:
                why = (
                    f"timestamp {t.isoformat()} is {(t - prev).total_seconds() / 60:g} minutes "
                    f"after the previous row's; rows must be exactly 1 minute apart"
                )
            raise ScenarioError(src, why, line + k)
        prev = t


def _parse_times(src: str, cells: Sequence[str], line: int) -> list[datetime]:
    parse = datetime.fromisoformat
    try:
        return list(map(parse, cells))
    except ValueError:
        pass
    for k, cell in enumerate(cells):
        try:
            parse(cell)
        except ValueError:
            raise ScenarioError(
                src,
                f"timestamp {cell!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)",
                line + k,
            ) from None
    raise AssertionError("unreachable")


def _read_stream(src: str, f: TextIO) -> tuple[datetime, dict[str, array[float]]]:
    reader = csv.reader(f)
    pos = _header(src, next(reader, None))
    width = len(pos)
    t_index = pos["timestamp"]
    value_index = [(name, pos[name]) for name in VALUE_COLUMNS]
    columns: dict[str, array[float]] = {name: array("d") for name in VALUE_COLUMNS}
    start: datetime | None = None
    prev: datetime | None = None
    line = 2  # the first data row; rows are one line each (no quoted line breaks)
    with _no_gc():
        while True:
            chunk = list(islice(reader, _CHUNK))
            if not chunk:
                break
            if set(map(len, chunk)) != {width}:
                _bad_width(src, chunk, width, line)
            cols = list(zip(*chunk, strict=True))
            stamps = _parse_times(src, cols[t_index], line)
            _check_times(src, stamps, prev, line)
            if start is None:
                start = stamps[0]
            prev = stamps[-1]
            for name, j in value_index:
                cells = cols[j]
                try:
                    vals: Sequence[float] = list(map(float, cells))
                except ValueError:
                    vals = _convert_slow(src, name, cells, line)
                else:
                    # float() accepts 'nan'; only an empty cell may mean "missing".
                    if math.isnan(sum(vals)):
                        for k, v in enumerate(vals):
                            if isnan(v):
                                raise _cell_error(src, line + k, name, cells[k], "is not a number")
                _check_values(src, name, vals, line)
                columns[name].extend(vals)
            line += len(chunk)
    if start is None:
        raise ScenarioError(src, "no data rows after the header")
    return start, columns


def _bad_width(src: str, chunk: Sequence[Sequence[str]], width: int, line: int) -> None:
    for k, row in enumerate(chunk):
        if len(row) != width:
            if not row or (len(row) == 1 and not row[0].strip()):
                raise ScenarioError(src, "empty line inside the data", line + k)
            raise ScenarioError(src, f"{len(row)} cells, the header has {width}", line + k)


def _has_gaps(values: Sequence[float]) -> bool:
    # Values are finite or NaN (checked while reading): a NaN sum means at least one gap.
    return math.isnan(sum(values))


def _fill(values: array[float]) -> bytearray | None:
    """Replace NaN by the last known value (0 before the first); the gap mask, or None."""
    if not _has_gaps(values):
        return None
    mask = bytearray(len(values))
    last = 0.0
    for i, v in enumerate(values):
        if isnan(v):
            mask[i] = 1
            values[i] = last
        else:
            last = v
    return mask


def truth_path(path: Path) -> Path | None:
    """`truth/<stem>_truth.csv[.gz]` next to a scenario: the same days without gaps."""
    stem = path.name.removesuffix(".gz").removesuffix(".csv")
    for suffix in (".csv", ".csv.gz"):
        p = path.parent / "truth" / f"{stem}_truth{suffix}"
        if p.is_file():
            return p
    return None


def read_scenario(path: str | Path, *, truth: Path | bool | None = True) -> Scenario:
    """Read a scenario file. Raises ScenarioError naming the file and line of any problem.

    `truth=True` looks for a gap-free twin next to the file (see `truth_path`) whose values
    the plant uses where the scenario's measurement cells are empty; a Path names it; False or
    None uses the last known value instead.
    """
    p = Path(path)
    src = str(p)
    try:
        with _open(p) as f:
            start, columns = _read_stream(src, f)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, csv.Error) as exc:
        raise ScenarioError(src, f"not a readable CSV file: {exc}") from None
    except OSError as exc:
        raise ScenarioError(src, f"cannot read: {exc.strerror or exc}") from None
    tpath: Path | None
    if truth is True:
        tpath = truth_path(p)
    elif truth is False or truth is None:
        tpath = None
    else:
        tpath = truth
    gaps: dict[str, bytearray] = {}
    truth_values: dict[str, array[float]] | None = None
    if tpath is not None and any(_has_gaps(col) for col in columns.values()):
        truth_scn = read_scenario(tpath, truth=False)
        if truth_scn.start != start or truth_scn.minutes != len(columns["pv_w"]):
            raise ScenarioError(
                str(tpath),
                f"does not cover the same minutes as {src} "
                f"({truth_scn.start.isoformat()} + {truth_scn.minutes} rows vs "
                f"{start.isoformat()} + {len(columns['pv_w'])} rows)",
            )
        truth_values = truth_scn.values
    for name, col in columns.items():
        if truth_values is not None:
            tcol = truth_values[name]
            if _has_gaps(col):
                mask = bytearray(map(isnan, col))
                for i in (i for i, m in enumerate(mask) if m):
                    col[i] = tcol[i]
                gaps[name] = mask
            continue
        m = _fill(col)
        if m is not None:
            gaps[name] = m
    name = p.name.removesuffix(".gz").removesuffix(".csv")
    return Scenario(
        name=name,
        source=src,
        start=start,
        values=columns,
        gaps=gaps,
        truth_source=str(tpath) if truth_values is not None else None,
    )


def read_scenario_text(text: str, name: str = "<text>") -> Scenario:
    """Parse scenario CSV held in memory (tests, the demo's generated days)."""
    start, columns = _read_stream(name, io.StringIO(text))
    gaps = {k: m for k, col in columns.items() if (m := _fill(col)) is not None}
    return Scenario(name=name, source=name, start=start, values=columns, gaps=gaps)


# --------------------------------------------------------------------------- bundled


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped inside the package."""
    root = resources.files(BUNDLED_PACKAGE)
    names = []
    for entry in root.iterdir():
        n = entry.name
        if n.endswith((".csv", ".csv.gz")):
            names.append(n.removesuffix(".gz").removesuffix(".csv"))
    return sorted(names)


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A path as given when it exists, else a bundled scenario by name (with or without .csv)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    root = resources.files(BUNDLED_PACKAGE)
    stem = str(name_or_path).removesuffix(".gz").removesuffix(".csv")
    for suffix in (".csv", ".csv.gz"):
        entry = root.joinpath(stem + suffix)
        if entry.is_file():
            return Path(str(entry))
    known = ", ".join(bundled_scenarios()) or "none"
    raise ScenarioError(
        str(name_or_path), f"no such file, and no bundled scenario of that name (bundled: {known})"
    )


def load(name_or_path: str | Path) -> Scenario:
    """Resolve and read a scenario (file path or bundled name)."""
    return read_scenario(resolve_scenario(name_or_path))
