"""`emsctl plan`: the day-ahead plan a running EMS made last (stored in the database), as a
table of the next hours: forecast PV, expected consumption and SOC, and the loads planned on.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from emsctl import clock


def register(sub: Any) -> None:
    from emsctl.cli import add_config_arg

    p = sub.add_parser(
        "plan",
        help="the day-ahead plan: runs and, per hour, PV, consumption, SOC (rule 19)",
        description="The last plan a running EMS made (planner.enabled), from the database.",
    )
    add_config_arg(p)
    p.add_argument("--db", metavar="PATH", help="database file (default: store.path)")
    p.add_argument(
        "--hours",
        type=int,
        default=24,
        choices=range(1, 49),
        metavar="1..48",
        help="how far ahead to show (default 24)",
    )
    p.add_argument("--json", action="store_true", help="the stored plan as JSON")
    p.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    from emsctl.plan_worker import PLAN_KEY
    from emsctl.store.cli import _config, _db_path
    from emsctl.store.db import StoreError
    from emsctl.store.repo import Store

    cfg = _config(args)
    try:
        store = Store.open(_db_path(args, cfg), create=False)
    except StoreError as exc:
        print("emsctl: " + "; ".join(str(exc).splitlines()), file=sys.stderr)
        return 2
    try:
        text = store.kv_get(PLAN_KEY)
    finally:
        store.close()
    if text is None:
        why = "" if cfg.planner.enabled else " (planner.enabled is false in the config)"
        print(f"emsctl plan: no plan stored yet{why}", file=sys.stderr)
        return 1
    if args.json:
        print(text)
        return 0
    write_plan(json.loads(text), cfg.control.tz, clock.now(), args.hours, sys.stdout)
    return 0


def write_plan(plan: dict[str, Any], tz: ZoneInfo, now: datetime, hours: int, out: TextIO) -> None:
    """The plan as text: its age, the runs, then an hourly table."""
    made = datetime.fromisoformat(plan["made_at"])
    age_min = (now - made).total_seconds() / 60
    out.write(f"plan made {made.astimezone(tz):%a %H:%M} ({age_min:.0f} min ago)\n")
    runs = plan["runs"]
    if runs:
        for r in runs:
            out.write(f"  {r['load']:<9} {r['local']}  ({r['spare_wh'] / 1000:.1f} kWh spare)\n")
    else:
        out.write("  no runs planned\n")
    out.write(f"\n{'hour':<11}{'PV kWh':>8}{'use kWh':>9}{'SOC %':>7}{'grid kWh':>10}  planned\n")
    slots = plan["slots"]
    for i in range(0, min(len(slots), hours * 4), 4):
        hour = slots[i : i + 4]
        at = datetime.fromisoformat(hour[0]["at"]).astimezone(tz)
        pv = sum(s["pv_wh"] for s in hour) / 1000
        use = sum(s["load_wh"] for s in hour) / 1000
        grid = sum(s["import_wh"] - s["export_wh"] for s in hour) / 1000
        on = sorted({load for s in hour for load in s["on"]})
        out.write(
            f"{at:%a %H:%M}  {pv:>7.2f}{use:>9.2f}{hour[-1]['soc_pct']:>7.0f}{grid:>+10.2f}  "
            f"{', '.join(on)}\n"
        )
