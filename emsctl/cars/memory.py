"""An in-memory CarStorePort: the replay's and the tests' store of settings and sessions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from emsctl.cars.types import CarSettings, ChargingSession, OneOffTarget, WeeklyTarget
from emsctl.model import ChargeMode, LoadId


class MemoryCarStore:
    """Settings and sessions in dicts and lists; the same behaviour as the SQLite store."""

    def __init__(self) -> None:
        self._settings: dict[LoadId, CarSettings] = {}
        self._sessions: list[ChargingSession] = []

    def car_settings(self, load: LoadId) -> CarSettings:
        return self._settings.get(load, CarSettings())

    def set_car_mode(self, load: LoadId, mode: ChargeMode | None, by: str, at: datetime) -> None:
        self._settings[load] = replace(self.car_settings(load), mode=mode)

    def set_one_off_target(
        self, load: LoadId, target: OneOffTarget | None, by: str, at: datetime
    ) -> None:
        self._settings[load] = replace(self.car_settings(load), one_off=target)

    def set_weekly_target(
        self, load: LoadId, weekday: int, target: WeeklyTarget | None, by: str, at: datetime
    ) -> None:
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {weekday} is not 0 (Monday) .. 6 (Sunday)")
        rest = tuple(w for w in self.car_settings(load).weekly if w.weekday != weekday)
        weekly = rest if target is None else (*rest, target)
        self._settings[load] = replace(
            self.car_settings(load), weekly=tuple(sorted(weekly, key=lambda w: w.weekday))
        )

    def save_session(self, session: ChargingSession) -> int:
        if session.id is None:
            session.id = len(self._sessions) + 1
            self._sessions.append(replace(session))
        else:
            self._sessions[session.id - 1] = replace(session)
        return session.id

    def car_sessions(
        self, load: LoadId | None = None, since: datetime | None = None, limit: int = 200
    ) -> list[ChargingSession]:
        out: list[ChargingSession] = []
        for s in reversed(self._sessions):
            if (load is None or s.load is load) and (since is None or s.started_at >= since):
                out.append(replace(s))
                if len(out) >= limit:
                    break
        return out

    def open_session(self, load: LoadId) -> ChargingSession | None:
        for s in reversed(self._sessions):
            if s.load is load and s.ended_at is None:
                return replace(s)
        return None
