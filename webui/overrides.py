"""An owner's Auto / Force on / Force off from the page or the API: check it, store it, tick.

Both the HTML form and `POST /api/loads/<id>/override` come through `apply_override`, so the
validation and its messages are the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from emsctl.model import LoadId, Mode
from emsctl.status import UnknownLoad
from webui.context import UiContext

#: The duration choices, in the order the page offers them.
DURATIONS: dict[str, str] = {
    "1h": "1 h",
    "4h": "4 h",
    "midnight": "until midnight",
    "release": "until released",
}
DEFAULT_DURATION = "1h"


class OverrideRejected(ValueError):
    """Bad input: the message says what was wrong and what is accepted (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class OverrideResult:
    load: LoadId
    mode: Mode
    expires_at: datetime | None
    created_by: str
    id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "load": self.load.value,
            "mode": self.mode.value,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "created_by": self.created_by,
            "id": self.id,
        }


def parse_load(ctx: UiContext, raw: str) -> LoadId:
    try:
        load = LoadId(raw)
    except ValueError:
        known = ", ".join(x.value for x in ctx.loads)
        raise OverrideRejected(f"unknown load {raw!r}: expected one of {known}") from None
    if load not in ctx.loads:
        raise OverrideRejected(f"load {raw!r} is disabled in the configuration")
    return load


def parse_mode(raw: object) -> Mode:
    if not isinstance(raw, str):
        raise OverrideRejected(f"mode {raw!r}: expected one of auto, force_on, force_off")
    try:
        return Mode(raw)
    except ValueError:
        raise OverrideRejected(
            f"unknown mode {raw!r}: expected one of auto, force_on, force_off"
        ) from None


def expiry(ctx: UiContext, duration: object, now: datetime) -> datetime | None:
    """When an override chosen now with `duration` ends (None: until released).

    "midnight" is the next local midnight in control.timezone, whatever the UTC offset.
    """
    if duration == "1h":
        return now + timedelta(hours=1)
    if duration == "4h":
        return now + timedelta(hours=4)
    if duration == "midnight":
        tomorrow = now.astimezone(ctx.tz).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0), tzinfo=ctx.tz).astimezone(UTC)
    if duration == "release":
        return None
    raise OverrideRejected(f"unknown duration {duration!r}: expected one of {', '.join(DURATIONS)}")


def apply_override(
    ctx: UiContext, load_raw: str, mode_raw: object, duration_raw: object, user: str
) -> OverrideResult:
    """Validate the override and hand it to the controller, which stores it (or clears the
    load's overrides for Auto) and applies it at a tick it runs now.

    Raises OverrideRejected for bad input, StoreError when the database refuses the write.
    """
    load = parse_load(ctx, load_raw)
    mode = parse_mode(mode_raw)
    now = ctx.controller.now()
    expires = None
    if mode is not Mode.AUTO:
        expires = expiry(ctx, DEFAULT_DURATION if duration_raw in (None, "") else duration_raw, now)
    try:
        oid = ctx.controller.set_override(load, mode, user, expires)
    except UnknownLoad as exc:  # the configuration changed since the page was drawn
        raise OverrideRejected(str(exc)) from None
    return OverrideResult(load=load, mode=mode, expires_at=expires, created_by=user, id=oid)
