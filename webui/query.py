"""Query-string parameters of the history page and API, checked with messages that say why.

Times without an offset are local (control.timezone); a bare date means that day's start, or its
end when it bounds a period from above, so "until=2025-06-03" includes the 3rd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from emsctl.model import LoadId

PAGE_SIZE = 50
MAX_LIMIT = 500
#: The years a time may name (after conversion to UTC): enough for any history, and far from
#: the ends of what a datetime can hold, so the store's arithmetic on them cannot overflow.
MIN_YEAR = 1970
MAX_YEAR = 2999


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
    """The time `raw` names, in UTC; a year outside MIN_YEAR..MAX_YEAR is refused, naming
    `name` (near the ends of what a datetime holds, the conversion to UTC overflowed)."""
    raw = raw.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            at = datetime.combine(day, time(0), tzinfo=tz)
        else:
            at = datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery(
            f"{name}={raw!r}: expected a date (2025-06-03) or an ISO time (2025-06-03T14:00)"
        ) from None
    if not MIN_YEAR <= at.year <= MAX_YEAR:
        raise BadQuery(f"{name}={raw!r}: expected a time between {MIN_YEAR} and {MAX_YEAR}")
    if end and len(raw) == 10:
        at += timedelta(days=1)
    at = at.replace(tzinfo=tz) if at.tzinfo is None else at
    return at.astimezone(UTC)


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
