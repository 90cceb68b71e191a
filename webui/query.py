"""Query-string parameters of the history page and API, checked with messages that say why.

Times without an offset are local (control.timezone); a bare date means that day's start, or its
end when it bounds a period from above, so "until=2025-06-03" includes the 3rd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from emsctl.model import LoadId

PAGE_SIZE = 50
MAX_LIMIT = 500


class BadQuery(ValueError):
    """A parameter is unusable; the message names it (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    load: LoadId | None
    since: datetime | None
    until: datetime | None
    limit: int
    offset: int


def parse_when(name: str, raw: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    raw = raw.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), tzinfo=tz)
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery(
            f"{name}={raw!r}: expected a date (2025-06-03) or an ISO time (2025-06-03T14:00)"
        ) from None
    return at.replace(tzinfo=tz) if at.tzinfo is None else at


def _int(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name}={raw!r}: expected a whole number") from None
    if not lo <= value <= hi:
        raise BadQuery(f"{name}={value}: expected {lo} to {hi}")
    return value


def history_query(
    args: Mapping[str, str],
    tz: ZoneInfo,
    loads: list[LoadId],
    *,
    default_limit: int = PAGE_SIZE,
) -> HistoryQuery:
    """Check load, since, until, limit and offset."""
    load = None
    raw_load = args.get("load") or ""
    if raw_load:
        try:
            load = LoadId(raw_load)
        except ValueError:
            known = ", ".join(x.value for x in loads)
            raise BadQuery(f"load={raw_load!r}: expected one of {known}") from None
    since = parse_when("since", args["since"], tz) if args.get("since") else None
    until = parse_when("until", args["until"], tz, end=True) if args.get("until") else None
    if since is not None and until is not None and since >= until:
        raise BadQuery("since must be before until")
    return HistoryQuery(
        load=load,
        since=since,
        until=until,
        limit=_int("limit", args.get("limit"), default_limit, 1, MAX_LIMIT),
        offset=_int("offset", args.get("offset"), 0, 0, 10_000_000),
    )
