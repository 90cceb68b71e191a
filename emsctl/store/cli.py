"""`emsctl db upgrade|current|downgrade|check`, `emsctl history` and `emsctl stats` (the cars'
charging sessions: `emsctl car WALLBOX sessions`, emsctl.cars.cli).

The database is `store.path` of the config (`--config`), or `--db PATH`. With `--db` and no
readable config file, the built-in defaults give the time zone and the loads' nominal power.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy.exc import SQLAlchemyError

from emsctl import clock
from emsctl.config import Config
from emsctl.model import LoadId
from emsctl.store import migrate
from emsctl.store.db import StoreError
from emsctl.store.records import DayStats, HistoryRow
from emsctl.store.repo import Store

FORMATS = ("table", "csv", "json")
_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def register(sub: Any) -> None:
    from emsctl.cli import add_config_arg

    def common(p: argparse.ArgumentParser) -> None:
        add_config_arg(p)
        p.add_argument("--db", metavar="PATH", help="database file (default: store.path)")

    db = sub.add_parser("db", help="the database: migrate, show or check its schema revision")
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    p = dbsub.add_parser("upgrade", help="create the database or migrate it to the newest schema")
    common(p)
    p.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    p.set_defaults(func=_db_upgrade)
    p = dbsub.add_parser("current", help="show the database's schema revision and the newest")
    common(p)
    p.set_defaults(func=_db_current)
    p = dbsub.add_parser("downgrade", help="migrate back to an older schema (back up first)")
    common(p)
    p.add_argument("revision", help="target revision, e.g. 'base' or '-1'")
    p.set_defaults(func=_db_downgrade)
    p = dbsub.add_parser("check", help="compare the schema with this version's tables")
    common(p)
    p.set_defaults(func=_db_check)

    p = sub.add_parser(
        "history",
        help="what each load did and why, newest first",
        description="What each load did and why, newest first: its state changes and the "
        "owner's overrides. The cars' charging sessions (energy, target, how each ended) are "
        "listed by `emsctl car WALLBOX sessions`.",
    )
    common(p)
    p.add_argument("--load", choices=[x.value for x in LoadId], help="only this load")
    p.add_argument(
        "--since",
        default=None,
        help="e.g. 2d, 12h, 30m, 1w or 2026-06-01 (default 2d, or the database's last days "
        "when those are empty, as in a demo's database)",
    )
    p.add_argument("--until", default=None, help="same forms as --since (default: now)")
    p.add_argument(
        "--limit", type=_bounded(1, 100_000), default=200, help="at most this many rows (200)"
    )
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=_history)

    p = sub.add_parser("stats", help="per load and day: runtime, energy, switch-ons, stops")
    common(p)
    p.add_argument(
        "--days",
        type=_bounded(1, MAX_DAYS),
        default=7,
        help="days back, today included (default 7; on a database whose last days are empty, "
        "the days it holds)",
    )
    p.add_argument("--load", choices=[x.value for x in LoadId], help="only this load")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=_stats)


# --------------------------------------------------------------------------- helpers

#: Ten years: more than any retention (store.retention_days is at most 3650).
MAX_DAYS = 3660


def _bounded(lo: int, hi: int) -> Any:
    """An argparse type: a whole number in lo..hi, refused with a one-line message."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v}: between {lo} and {hi:,}")
        return v

    return parse


def _span_note(
    span: tuple[datetime, datetime] | None, tz: ZoneInfo, what: str, before: datetime, hint: str
) -> tuple[datetime, datetime] | None:
    """When the default period is empty and the database ends before it (a demo's database,
    a copied backup): the period the database holds, said on stderr."""
    if span is None or span[1] >= before:
        return None
    first, last = (t.astimezone(tz) for t in span)
    print(
        f"nothing in {what}; the database holds {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} "
        f"(showing that; {hint})",
        file=sys.stderr,
    )
    return span


#: A database whose last record is older than this is no longer written (a copy, a stopped
#: daemon): stats say so, since runs still open at its end are counted only up to it.
STALE_AFTER = timedelta(hours=1)


def _config(args: argparse.Namespace) -> Config:
    from emsctl.cli import config_or_exit

    if getattr(args, "db", None) and not os.path.exists(args.config):
        return Config()
    return config_or_exit(args.config)


def _db_path(args: argparse.Namespace, cfg: Config) -> str:
    return str(args.db or cfg.store.path)


def _fail(exc: StoreError) -> int:
    """The file named (--db or store.path) is not a usable EMS database: bad input, exit 2.
    SQLite's integrity check reports one problem a line; here they share one."""
    print("emsctl: " + "; ".join(str(exc).splitlines()), file=sys.stderr)
    return 2


def _query_failed(path: str, exc: SQLAlchemyError) -> int:
    """A read that failed after the file was opened (locked for long, an I/O error)."""
    cause = getattr(exc, "orig", None) or exc
    print(
        f"emsctl: database {path}: cannot be read ({str(cause).splitlines()[0]})", file=sys.stderr
    )
    return 1


def _revision_problem(action: str, revision: str, exc: Exception) -> int:
    """An Alembic revision that does not exist or cannot be reached: one line, exit 2."""
    walked = migrate.script_directory().walk_revisions()  # newest first
    known = ", ".join(["base", *reversed([r.revision for r in walked])])
    print(
        f"emsctl db {action}: revision {revision!r}: {str(exc).splitlines()[0]} "
        f"(revisions: {known}, or head, -1, +1)",
        file=sys.stderr,
    )
    return 2


def parse_when(value: str, now: datetime, tz: ZoneInfo) -> datetime:
    """'2d', '12h', '30m', '1w' before now, or a local date / date-time (ISO)."""
    try:
        when = _parse_when(value, now, tz)
        when.astimezone(UTC)  # the database's times are UTC: the moment must exist there too
    except OverflowError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: outside the calendar (years 1 to 9999); e.g. 2d or 2026-06-01"
        ) from None
    return when


def _parse_when(value: str, now: datetime, tz: ZoneInfo) -> datetime:
    m = _REL.match(value)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected e.g. 2d, 12h, 30m, 1w, 2026-06-01 or 2026-06-01T08:00"
        ) from None
    if parsed.tzinfo is None:
        if len(value.strip()) == 10:
            parsed = datetime.combine(parsed.date(), time(0))
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}"


# --------------------------------------------------------------------------- db


def _db_upgrade(args: argparse.Namespace) -> int:
    cfg = _config(args)
    path = _db_path(args, cfg)
    try:
        with Store.open(path, migrate_to_head=False) as store:
            before = store.revision()
            migrate.upgrade(store.engine, args.revision)
            after = store.revision()
    except StoreError as exc:
        return _fail(exc)
    except (CommandError, RevisionError) as exc:
        return _revision_problem("upgrade", args.revision, exc)
    if before == after:
        print(f"{path}: already at revision {after}")
    else:
        print(f"{path}: migrated from {before or 'empty'} to {after}")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    cfg = _config(args)
    path = _db_path(args, cfg)
    head = migrate.head_revision()
    try:
        with Store.open(path, create=False, migrate_to_head=False) as store:
            current = store.revision()
    except StoreError as exc:
        return _fail(exc)
    if current == head:
        print(f"{path}: revision {current} (newest)")
    else:
        print(
            f"{path}: revision {current or 'none (empty)'}; newest is {head}: "
            "run `emsctl db upgrade` (the daemon also does it at start-up)"
        )
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    cfg = _config(args)
    path = _db_path(args, cfg)
    try:
        with Store.open(path, create=False, migrate_to_head=False) as store:
            before = store.revision()
            migrate.downgrade(store.engine, args.revision)
            after = store.revision()
    except StoreError as exc:
        return _fail(exc)
    except (CommandError, RevisionError) as exc:
        return _revision_problem("downgrade", args.revision, exc)
    print(f"{path}: downgraded from {before} to {after or 'base (no tables)'}")
    return 0


def _db_check(args: argparse.Namespace) -> int:
    cfg = _config(args)
    path = _db_path(args, cfg)
    try:
        with Store.open(path, create=False, migrate_to_head=False) as store:
            diffs = migrate.drift(store.engine)
    except StoreError as exc:
        return _fail(exc)
    if diffs:
        print(f"{path}: the schema differs from this version's tables:")
        for d in diffs:
            print(f"  {d}")
        return 1
    print(f"{path}: the schema matches this version's tables")
    return 0


# --------------------------------------------------------------------------- history, stats


def _history(args: argparse.Namespace) -> int:
    cfg = _config(args)
    tz = cfg.control.tz
    now = clock.now()
    try:
        since = parse_when(args.since or "2d", now, tz)
        until = parse_when(args.until, now, tz) if args.until else None
    except argparse.ArgumentTypeError as exc:
        print(f"emsctl history: {exc}", file=sys.stderr)
        return 2
    path = _db_path(args, cfg)
    try:
        with Store.open(path, create=False) as store:
            rows = store.history(args.load, since, until, limit=args.limit, now=now)
            if not rows and args.since is None and args.until is None:
                span = _span_note(
                    store.span(), tz, "the last 2 days", since, "--since/--until pick a period"
                )
                if span is not None:
                    end = span[1] + timedelta(seconds=1)
                    rows = store.history(args.load, span[0], end, limit=args.limit, now=end)
    except StoreError as exc:
        return _fail(exc)
    except SQLAlchemyError as exc:
        return _query_failed(path, exc)
    write_history(rows, args.format, tz, sys.stdout)
    return 0


def _what(r: HistoryRow) -> str:
    if r.kind == "transition":
        return f"{r.source} -> {r.target}"
    return {
        "override": f"override {r.target}",
        "override_cleared": f"override {r.target} cleared",
        "override_expired": f"override {r.target} expired",
    }.get(r.kind, r.kind)


def write_history(rows: Sequence[HistoryRow], fmt: str, tz: ZoneInfo, out: TextIO) -> None:
    if fmt == "json":
        json.dump([r.as_dict() for r in rows], out, indent=1, ensure_ascii=False)
        out.write("\n")
        return
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["at_utc", "load", "kind", "source", "target", "event", "reasons", "by"])
        for r in rows:
            w.writerow(
                [
                    r.at.isoformat(),
                    r.load,
                    r.kind,
                    r.source or "",
                    r.target or "",
                    r.event or "",
                    "; ".join(r.reasons),
                    r.by or "",
                ]
            )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"History ({tz.key}), newest first", show_lines=False)
    for col in ("time", "load", "change", "event", "why", "by"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r.at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M"),
            r.load,
            _what(r),
            r.event or "",
            "; ".join(r.reasons),
            r.by or "",
        )
    Console(file=out, width=max(100, _width(out))).print(table)
    if not rows:
        out.write("(nothing in this period)\n")


def _width(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 140


def _stats(args: argparse.Namespace) -> int:
    cfg = _config(args)
    tz = cfg.control.tz
    path = _db_path(args, cfg)
    try:
        with Store.open(path, create=False) as store:
            now = clock.now()
            # A database that ended before the period (a demo's, a copied backup) would show
            # its last states running on to today: show the days it holds instead.
            what = f"the last {args.days} days"
            held = store.span()
            span = _span_note(
                held, tz, what, now - timedelta(days=args.days), "--days counts back from today"
            )
            if span is not None:
                days = min(
                    MAX_DAYS,
                    (span[1].astimezone(tz).date() - span[0].astimezone(tz).date()).days + 1,
                )
                rows = store.stats(days, cfg, span[1], load=args.load)
            else:
                days, end = args.days, None
                if held is not None:
                    # No rows of zeros for days before the database began: they cost a query
                    # that grows with days x transitions (--days 3660 on a year's database).
                    held_days = (now.astimezone(tz).date() - held[0].astimezone(tz).date()).days
                    if held_days + 1 < days:
                        days = max(1, held_days + 1)
                        print(
                            f"the database begins {held[0].astimezone(tz):%Y-%m-%d %H:%M}: "
                            f"showing the {days} day(s) since",
                            file=sys.stderr,
                        )
                    # Nothing is known after the last record: a run still open then ends there.
                    end = held[1]
                    if now - end > STALE_AFTER:
                        print(
                            f"the database ends at {end.astimezone(tz):%Y-%m-%d %H:%M}: a run "
                            "still open then is counted up to it",
                            file=sys.stderr,
                        )
                rows = store.stats(days, cfg, now, load=args.load, data_until=end)
    except StoreError as exc:
        return _fail(exc)
    except SQLAlchemyError as exc:
        return _query_failed(path, exc)
    write_stats(rows, args.format, sys.stdout)
    return 0


def _stops(d: DayStats) -> str:
    return ", ".join(f"{s.event} x{s.count}" for s in d.stops)


def write_stats(rows: Sequence[DayStats], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump([r.as_dict() for r in rows], out, indent=1, ensure_ascii=False)
        out.write("\n")
        return
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                "day",
                "load",
                "runtime_s",
                "energy_wh",
                "energy_measured",
                "switch_ons",
                "short_cycles",
                "stops",
            ]
        )
        for r in rows:
            w.writerow(
                [
                    r.day.isoformat(),
                    r.load,
                    f"{r.runtime_s:.0f}",
                    f"{r.energy_wh:.0f}",
                    int(r.energy_measured),
                    r.switch_ons,
                    r.short_cycles,
                    _stops(r),
                ]
            )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Per load and day")
    for col, just in (
        ("day", "left"),
        ("load", "left"),
        ("runtime h:mm", "right"),
        ("energy kWh", "right"),
        ("switch-ons", "right"),
        ("short cycles", "right"),
        ("stopped by", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        energy = f"{r.energy_wh / 1000:.2f}" + ("" if r.energy_measured else " (est.)")
        table.add_row(
            r.day.strftime("%a %Y-%m-%d"),
            r.load,
            _hms(r.runtime_s),
            energy,
            str(r.switch_ons),
            str(r.short_cycles),
            _stops(r),
        )
    Console(file=out, width=max(100, _width(out))).print(table)
