"""Interfaces and typed errors shared by every adapter (real ones and the simulator's).

The controller only sees these: a Collector for measurements, an Actuator per load, a
ForecastSource. Every adapter failure is one of the errors below, never a raw HTTP error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from emsctl.model import Forecast, LoadId, LoadReading, Snapshot
from emsctl.redact import redact_url


class AdapterError(Exception):
    """Base of every adapter failure. `kind` labels the error in metrics and logs."""

    kind = "error"

    def __init__(self, message: str, *, device: str | None = None) -> None:
        # Messages often quote a URL; its user:password (prometheus.url may carry one) must
        # not reach the status page, the API, the log or the CLI.
        super().__init__(redact_url(message))
        self.device = device

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self.device}: {base}" if self.device else base


class DeviceUnreachable(AdapterError):
    """Connection refused, timed out, DNS failure, gateway offline."""

    kind = "unreachable"


class AuthFailed(AdapterError):
    """Credentials refused (after one retry / token refresh)."""

    kind = "auth"


class BadResponse(AdapterError):
    """The peer answered, but not with what the protocol promises."""

    kind = "bad_response"


class RateLimited(AdapterError):
    """The peer (or our own budget) says: not now. `retry_at` when known."""

    kind = "rate_limited"

    def __init__(
        self, message: str, *, device: str | None = None, retry_at: datetime | None = None
    ) -> None:
        super().__init__(message, device=device)
        self.retry_at = retry_at


@runtime_checkable
class Collector(Protocol):
    """Reads the house's measurements at one instant."""

    def collect(self, at: datetime) -> Snapshot:
        """A Snapshot at `at` (stale values already None). Raises AdapterError."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Actuator(Protocol):
    """Drives one load: a relay, or the DHW setpoint (on = boost target)."""

    load: LoadId

    def read(self) -> LoadReading:
        """The device's actual state. Raises AdapterError."""
        ...

    def switch(self, on: bool, *, deadman_s: int | None = None) -> LoadReading:
        """Command the output, then re-read it. Raises AdapterError."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class CloudUsage(Protocol):
    """A cloud client that counts its calls (`ems_cloud_calls`; Viessmann's daily budget
    also as `ems_viessmann_budget_remaining`)."""

    @property
    def cloud_service(self) -> str:
        """The metric's `service` label: "viessmann", "forecast_solar"."""
        ...

    @property
    def calls_made(self) -> int:
        """HTTP calls made since start, whatever their outcome."""
        ...

    @property
    def budget_left(self) -> int | None:
        """Calls left of a daily budget (None: no budget)."""
        ...


@runtime_checkable
class ForecastSource(Protocol):
    """The strategic layer's PV forecast (cached; None when there is no usable one)."""

    def forecast(self, now: datetime) -> Forecast | None: ...
