"""What car charging needs of a store: the owner's settings and the sessions. The SQLite
store (emsctl.store.cars) and the replay's memory (emsctl.cars.memory) provide it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from emsctl.cars.types import CarSettings, ChargingSession, OneOffTarget, WeeklyTarget
from emsctl.model import ChargeMode, LoadId


class CarSettingsReads(Protocol):
    def car_settings(self, load: LoadId) -> CarSettings:
        """What the owner set for the wallbox (empty settings when nothing)."""
        ...


class CarSettingsPort(CarSettingsReads, Protocol):
    """Set by people: a write that cannot be stored raises StoreError."""

    def set_car_mode(self, load: LoadId, mode: ChargeMode | None, by: str, at: datetime) -> None:
        """The wallbox's mode (None: back to the config's)."""
        ...

    def set_one_off_target(
        self, load: LoadId, target: OneOffTarget | None, by: str, at: datetime
    ) -> None:
        """The target for the current session (None: clear it)."""
        ...

    def set_weekly_target(
        self, load: LoadId, weekday: int, target: WeeklyTarget | None, by: str, at: datetime
    ) -> None:
        """One weekday of the weekly schedule (None: no target that day)."""
        ...


class SessionReads(Protocol):
    def car_sessions(
        self, load: LoadId | None = None, since: datetime | None = None, limit: int = 200
    ) -> list[ChargingSession]:
        """Sessions started at or after `since`, newest first."""
        ...

    def open_session(self, load: LoadId) -> ChargingSession | None:
        """The wallbox's session that has not ended (after a restart)."""
        ...


class SessionPort(SessionReads, Protocol):
    def save_session(self, session: ChargingSession) -> int:
        """Insert (id None) or update the session; returns its id and sets `session.id`."""
        ...


class CarStorePort(CarSettingsPort, SessionPort, Protocol):
    """Everything car charging keeps."""
