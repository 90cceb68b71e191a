"""Cut whole local days out of the year scenario into a bundled scenario (gzip CSV).

    python bench/cut_scenario.py 2026-04-01 7 emsctl/sim/scenarios/s6_april_week.csv.gz

The rows are copied as they are (UTC timestamps, every column); the days are local days in
Europe/Berlin, from midnight to midnight.
"""

from __future__ import annotations

import argparse
import gzip
import io
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
TZ = ZoneInfo("Europe/Berlin")


def cut(first: date, days: int, out: Path, source: Path = YEAR) -> int:
    """Write the rows of `days` local days from `first`; returns how many rows."""
    start = datetime.combine(first, time(0), tzinfo=TZ)
    end = datetime.combine(first + timedelta(days=days), time(0), tzinfo=TZ)
    lo = start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M")
    hi = end.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M")
    rows = 0
    # No time stamp or file name in the gzip header: the same cut gives the same bytes.
    with (
        gzip.open(source, "rt", encoding="utf-8") as src,
        open(out, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
        io.TextIOWrapper(gz, encoding="utf-8", newline="") as dst,
    ):
        dst.write(next(src))
        for line in src:
            stamp = line[:16]
            if lo <= stamp < hi:
                dst.write(line)
                rows += 1
            elif stamp >= hi:
                break
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=date.fromisoformat, help="first local day, YYYY-MM-DD")
    ap.add_argument("days", type=int)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    n = cut(args.first, args.days, args.out)
    print(f"{args.out}: {n} rows")


if __name__ == "__main__":
    main()
