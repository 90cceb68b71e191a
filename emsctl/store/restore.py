"""Rebuild each load's LoadStatus at start-up from the last transitions and active overrides.

Rules (a restart must neither restart a minimum runtime nor revive what ended meanwhile):
- state and `since` are those of the load's last transition: an `on` load mid minimum runtime
  resumes with its original entry time; `on_since` is the start of the current run and
  `off_since` when the output last went off.
- forced_on/forced_off without an override still in force (expired or cleared while the daemon
  was down) come back as `off`; the same for a manual hold or a cooldown that ended meanwhile.
- `arming` comes back as `off`: the start condition was not observed while the daemon was
  down, so its on-delay starts again.
- `commanded_on` is left unknown: the device's dead-man timer may have switched it off while
  the daemon was down, so the EMS re-asserts the output rather than calling the difference a
  person's doing.
- every active owner override is attached (`override`), also to loads without transitions.
- the rules' starts since local midnight are counted again (rule 18's max_starts_per_day).
Each such change is returned as a Transition with event "restore" so the history says why.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from emsctl.config import Config
from emsctl.model import OUTPUT_ON, LoadId, LoadStatus, Override, State, Transition

if TYPE_CHECKING:
    from sqlalchemy import Row

    from emsctl.store.repo import Store

log = logging.getLogger(__name__)

RESTORE_EVENT = "restore"


def cooldown_s(config: Config, load: LoadId) -> float | None:
    """How long this load's early-release cooldown lasts (rule 10 or 11)."""
    return config.loads.get(load).release_cooldown_s


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def restore(
    store: Store, now: datetime, config: Config | None
) -> tuple[dict[LoadId, LoadStatus], list[Transition]]:
    last = store._last_transitions()
    overrides = store.override_records(now, active_only=True, limit=1000)
    owner: dict[LoadId, Override] = {}
    detected_until: dict[LoadId, datetime | None] = {}
    for rec in overrides:  # newest first
        if rec.detected:
            detected_until.setdefault(rec.load, rec.expires_at)
        elif rec.override is not None:
            owner.setdefault(rec.load, rec.override)

    statuses: dict[LoadId, LoadStatus] = {}
    changes: list[Transition] = []
    tz = config.control.tz if config is not None else UTC
    today = now.astimezone(tz).date()
    midnight = datetime.combine(today, time(0), tzinfo=tz).astimezone(UTC)
    for load in LoadId:
        row = last.get(str(load))
        override = owner.get(load)
        if row is None:
            if override is not None:
                statuses[load] = LoadStatus(
                    load=load, state=State.OFF, since=now, override=override
                )
            continue
        try:
            state = State(row.target)
        except ValueError:
            log.warning(
                "last transition of %s names unknown state %r; starting off", load, row.target
            )
            state = State.OFF
        status, why = _one(store, load, state, row, now, config, override, detected_until)
        # Rule 18 counts the day's starts; a restart must not give a load a fresh budget.
        status.starts_today = store._starts_since(str(load), midnight)
        status.starts_day = today
        statuses[load] = status
        if why is not None:
            changes.append(
                Transition(
                    at=now,
                    load=load,
                    source=state,
                    target=status.state,
                    event=RESTORE_EVENT,
                    reasons=(why,),
                )
            )
            log.info("restored %s as %s: %s", load, status.state, why)
        else:
            log.info("restored %s as %s since %s", load, state, row.at.isoformat())
    return statuses, changes


def _one(
    store: Store,
    load: LoadId,
    state: State,
    row: Row[Any],
    now: datetime,
    config: Config | None,
    override: Override | None,
    detected_until: dict[LoadId, datetime | None],
) -> tuple[LoadStatus, str | None]:
    since = row.at
    output_on = state in OUTPUT_ON
    on_since = store._run_edge(str(load), start=True) if output_on else None
    off_since = store._run_edge(str(load), start=False)
    cooldown_until: datetime | None = None
    manual_until: datetime | None = None
    why: str | None = None

    if state in (State.FORCED_ON, State.FORCED_OFF):
        wanted = "force_on" if state is State.FORCED_ON else "force_off"
        if override is None or str(override.mode) != wanted:
            why = _ended_override(store, load, row, now)
    elif state is State.MANUAL:
        # The hold's end: stored with the transition, else the detected override's expiry,
        # else the configured hold from the detection (a detected hold without expiry lasts
        # until a person releases it).
        manual_until = row.until or detected_until.get(load)
        if manual_until is None and load not in detected_until and config is not None:
            manual_until = since + timedelta(seconds=config.control.manual_hold_s)
        if manual_until is not None and manual_until <= now:
            why = f"manual hold ended at {_stamp(manual_until)} while EMS was stopped"
    elif state is State.COOLDOWN:
        cooldown_until = row.until
        if cooldown_until is None and config is not None:
            secs = cooldown_s(config, load)
            if secs is not None:
                cooldown_until = since + timedelta(seconds=secs)
        if cooldown_until is not None and cooldown_until <= now:
            why = f"cooldown ended at {_stamp(cooldown_until)} while EMS was stopped"
    elif state is State.ARMING:
        why = "start condition not observed while EMS was stopped; on-delay starts again"

    if why is not None:
        was_on = output_on or bool(row.output_on)
        return (
            LoadStatus(
                load=load,
                state=State.OFF,
                since=now,
                off_since=now if was_on else off_since,
                override=override,
            ),
            why,
        )
    return (
        LoadStatus(
            load=load,
            state=state,
            since=since,
            on_since=on_since,
            off_since=off_since,
            cooldown_until=cooldown_until,
            manual_until=manual_until,
            override=override,
        ),
        None,
    )


def _ended_override(store: Store, load: LoadId, row: Row[Any], now: datetime) -> str:
    """Say how the override behind a forced state ended, from its stored record."""
    recs = store.override_records(now, active_only=False, load=load, limit=20)
    for rec in recs:
        if rec.detected or rec.created_at > now:
            continue
        if rec.cleared_at is not None:
            # A hold detected at the device is made "by hand (button)": not "by by hand".
            who = rec.cleared_by or "?"
            by = who if who.startswith("by ") else f"by {who}"
            return f"override {rec.mode} cleared {by} at {_stamp(rec.cleared_at)}"
        if rec.expires_at is not None and rec.expires_at <= now:
            return f"override {rec.mode} expired at {_stamp(rec.expires_at)} while EMS was stopped"
    reasons = json.loads(row.reasons or "[]")
    hint = f" (entered for: {'; '.join(reasons)})" if reasons else ""
    return f"no override in force any more{hint}"
