"""What the web UI holds on to: the config, the store and the controller handle.

`UiStore` is the part of the store the UI uses, written as a Protocol so the UI depends on
those few calls and nothing else; `emsctl.store.Store` provides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from flask import current_app

from emsctl.cars.port import SessionReads
from emsctl.config import Config, WebUiConfig
from emsctl.model import LoadId
from emsctl.status import ControllerHandle
from emsctl.store import KeyValuePort, OverrideReads, ReadsPort


class UiStore(OverrideReads, ReadsPort, KeyValuePort, SessionReads, Protocol):
    """The store as the web UI uses it: overrides in force, history and samples out, the
    charging sessions; its own key/value rows (logged-out sessions). Overrides and charging
    targets go in through the controller."""

    #: The database file (":memory:" for a temporary one): the web UI's key lives beside it.
    path: str


@dataclass(frozen=True, slots=True)
class UiContext:
    """Kept in `app.extensions["ems"]`; one per application.

    `config` is the controller's, read on every request: after a reload (SIGHUP) the pages
    show and accept the loads of the new configuration. The servers' own settings (bind,
    port, session key) are read once at start; changing them needs a restart.
    """

    #: The web UI's own settings as the server started with them (login, cookies, hosts).
    webui: WebUiConfig
    store: UiStore
    controller: ControllerHandle

    @property
    def config(self) -> Config:
        return self.controller.config

    @property
    def tz(self) -> ZoneInfo:
        return self.config.control.tz

    @property
    def loads(self) -> list[LoadId]:
        """The enabled loads in priority order: the cards, the filters, the chart bands."""
        return self.config.enabled_loads()

    @property
    def login_required(self) -> bool:
        return self.webui.password_hash is not None


def ui() -> UiContext:
    """The context of the application handling the current request."""
    ctx: UiContext = current_app.extensions["ems"]
    return ctx
