"""YAML configuration to a typed, validated `Config`.

pydantic v2 models with `extra="forbid"`: a typo is an error, every threshold has its default
here, and `ConfigError` names file, key path, bad value and what was expected.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emsctl.model import ChargeMode, LoadId, LoadKind
from emsctl.redact import MASK, SECRET_KEYS, redact_mapping, redact_url

log = logging.getLogger(__name__)

#: Durations up to a week and powers up to 1 MW: beyond, a value is a typo that would stall
#: or overflow the daemon (a timer of .inf never ends).
Seconds = Annotated[float, Field(ge=0, le=7 * 86400)]
Watts = Annotated[float, Field(ge=0, le=1_000_000)]
Percent = Annotated[float, Field(ge=0, le=100)]
Phase = Literal["L1", "L2", "L3"]

#: A device host: name or IPv4 address, or a bracketed IPv6 address, with an optional port.
_HOST_RE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
#: PromQL metric and label names (the Prometheus data model).
_METRIC_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


# --------------------------------------------------------------------------- devices


class DeviceConfig(Strict):
    """How to reach a load's actuator. Passwords never live here (docs/adapters.md)."""

    type: Literal["shelly_gen1", "shelly_gen2", "viessmann_dhw", "sim", "none"] = "none"
    host: str | None = None  # "192.168.1.31" or "127.0.0.1:8081"
    channel: int = Field(0, ge=0)
    username: str = "admin"  # Gen1 only; Gen2 is always "admin"
    #: Per HTTP call, retries included (a switch is two calls: command, then read-back).
    timeout_s: float = Field(5.0, gt=0, le=60)
    #: Extra attempts after a connection error or timeout (never after an answer).
    retries: int = Field(1, ge=0, le=5)
    #: Dead-man: the device switches itself off this long after our last renewal.
    deadman_s: int = Field(300, ge=0, le=86400)
    #: KEY=VALUE file with EMS_SHELLY_PASSWORD / EMS_SHELLY_<LOAD>_PASSWORD (mode 0600);
    #: environment variables of the same name win. None: $EMS_CREDENTIALS_FILE, else
    #: /etc/ems/credentials.env when it exists and is readable.
    credentials_file: str | None = None

    @field_validator("host")
    @classmethod
    def _plain_host(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _HOST_RE.fullmatch(v):
            raise ValueError(
                f"{v!r} is not a host: give an address or name with an optional :port, "
                "without http:// or a path (e.g. 192.168.1.31 or 127.0.0.1:8081)"
            )
        return v

    @field_validator("credentials_file")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"{v!r}: give an absolute path")
        return v

    @model_validator(mode="after")
    def _host_needed(self) -> DeviceConfig:
        if self.type in ("shelly_gen1", "shelly_gen2") and not self.host:
            raise ValueError(f"a {self.type} device needs 'host'")
        return self


class IdleRelease(Strict):
    """Rule 10: a heat-pump load whose compressor stays idle is released early."""

    enabled: bool = True
    grace_s: Seconds = 600
    below_w: Watts = 100
    for_s: Seconds = 300
    cooldown_s: Seconds = 3600


class NoCarRelease(Strict):
    """Rule 11: a metered wallbox that draws nothing has no car or a full car."""

    enabled: bool = True
    grace_s: Seconds = 180
    below_w: Watts = 100
    for_s: Seconds = 300
    retry_after_s: Seconds = 3600


class CarFallback(Strict):
    """Rule 15: charge a plugged car in a window of the day regardless of surplus.

    Off by default: charging by target (rule 17, `charging`) makes sure a car is charged by
    the time it leaves. With a cheap night tariff, a window (e.g. 22:00-06:30) charges there
    whatever the target says; with `charging.enabled: false` the window alone decides, and a
    window that ends where it starts (00:00-00:00) charges a plugged car at once, as without
    EMS.
    """

    enabled: bool = False
    from_: dt.time = Field(dt.time(0, 0), alias="from")
    until: dt.time = dt.time(0, 0)
    #: Let the window's charging go on below brake_soc: the battery is near its reserve on
    #: most evenings, and the brake would otherwise leave the car uncharged (the inverter
    #: keeps the battery's own reserve).
    beats_brake: bool = True
    #: Exclusive groups guard the inverter's AC output against running on surplus; charging
    #: from the grid in the window is not limited by it, so both cars may charge there.
    ignores_exclusion: bool = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @functools.cached_property
    def reason(self) -> str:
        """What a Verdict says while the window holds."""
        whole = self.from_ == self.until
        span = "all day" if whole else f"{self.from_:%H:%M}-{self.until:%H:%M}"
        return f"car charging window ({span}): charging regardless of surplus"

    def covers(self, local: dt.time) -> bool:
        """Whether `local` lies in the window. A window that ends where it starts is the whole
        day: the car charges whenever it is plugged (what suits flat tariffs)."""
        if self.from_ == self.until:
            return True
        if self.from_ < self.until:
            return self.from_ <= local < self.until
        return local >= self.from_ or local < self.until


class CarCharging(Strict):
    """Rule 17: charge a car by a target (a departure time and an energy to add), from the
    surplus first. docs/decision-logic.md describes each key."""

    enabled: bool = True
    #: The mode until the owner picks one in the UI or with `emsctl car`.
    mode: ChargeMode = ChargeMode.SOLAR_TARGET
    #: The car's usable battery, to give targets in percent (None: in kWh only).
    battery_kwh: float | None = Field(None, gt=0, le=300)
    #: Without a target of the owner's and without a learned habit: `default_kwh` by the
    #: next morning at `default_by` (local time).
    default_by: dt.time = dt.time(7, 0)
    default_kwh: float = Field(20.0, ge=0, le=300)
    #: The latest start leaves room: the rest takes need / power x reserve_factor, plus
    #: reserve_s (the on-delay, the settle time and a cloudy minute are in there).
    reserve_factor: float = Field(1.25, ge=1.0, le=4.0)
    reserve_s: Seconds = 1800
    #: Charging that a target (or mode now) demands goes on below brake_soc, and past the
    #: exclusion (charging from the grid does not load the inverter's AC output).
    beats_brake: bool = True
    ignores_exclusion: bool = True
    #: A car that draws nothing when switched on for its target: try again this much later.
    probe_retry_s: Seconds = 1800
    #: Wait for surplus only while the forecast's PV still to come today is at least this
    #: share of what the car needs (a target within a day); else charge at once: waiting
    #: would gain nothing and risk the target, since when a car leaves is a guess.
    sun_share: float = Field(1.0, ge=0, le=10)
    #: Learned habits: the sessions of the last `learn_days` days; a weekday needs
    #: `min_sessions` of them; departure is an early quantile, energy a high one.
    learn_days: int = Field(182, ge=7, le=730)
    min_sessions: int = Field(3, ge=1, le=100)
    departure_quantile: float = Field(0.1, gt=0, lt=1)
    energy_quantile: float = Field(0.9, gt=0, lt=1)


class LoadConfig(Strict):
    """Settings common to every load. Subclasses set per-load defaults."""

    enabled: bool = True
    kind: LoadKind = LoadKind.RELAY
    nominal_w: Watts = 2000
    #: Rule 1: eligible while soc >= gate_pct.
    gate_pct: Percent = 50
    #: Rule 2: start when surplus >= start_w (None: nominal_w).
    start_w: Watts | None = None
    #: Rule 2: tolerated import (grid or battery discharge) while running.
    max_import_w: Watts = 300
    on_delay_s: Seconds = 240
    off_delay_s: Seconds = 360
    min_on_s: Seconds = 900
    min_off_s: Seconds = 0
    #: Rule 8: judge export on this phase when per-phase data is present.
    phase: Phase | None = None
    #: Where the load's own power comes from: its device's meter, the compressor, or nowhere.
    power_source: Literal["meter", "compressor", "none"] = "none"
    #: Rule 18: at most this many starts by the rules per local day (None: no limit).
    max_starts_per_day: Annotated[int, Field(ge=1, le=96)] | None = None
    device: DeviceConfig = DeviceConfig()

    @property
    def start_threshold_w(self) -> float:
        return self.nominal_w if self.start_w is None else self.start_w

    # What the rules ask of any load, typed: a load whose kind has the setting answers with
    # it (None: the rule does not apply). The settings themselves stay on the kinds that have
    # them, so the YAML schema refuses a key that would do nothing for a load.

    @property
    def outdoor_limit_c(self) -> float | None:
        """Rule 9: no start (and a stop) above this outdoor temperature."""
        return None

    @property
    def idle_rule(self) -> IdleRelease | None:
        """Rule 10: the early release of an idle compressor, when enabled."""
        return None

    @property
    def no_car_rule(self) -> NoCarRelease | None:
        """Rule 11: the early release of a wallbox that draws nothing, when enabled (a
        metered wallbox only)."""
        return None

    @property
    def charging_window(self) -> CarFallback | None:
        """Rule 15: the car charging window, when enabled."""
        return None

    @property
    def release_cooldown_s(self) -> float | None:
        """How long the cooldown after this load's early release lasts (rule 10 or 11)."""
        return None

    @property
    def car_charging(self) -> CarCharging | None:
        """Rule 17: charging by target, when enabled (wallboxes only)."""
        return None


class _HeatPumpLoad(LoadConfig):
    max_starts_per_day: Annotated[int, Field(ge=1, le=96)] | None = 4
    max_outdoor_c: float | None = None
    idle_release: IdleRelease = IdleRelease()

    @property
    def outdoor_limit_c(self) -> float | None:
        return self.max_outdoor_c

    @property
    def idle_rule(self) -> IdleRelease | None:
        return self.idle_release if self.idle_release.enabled else None

    @property
    def release_cooldown_s(self) -> float | None:
        return float(self.idle_release.cooldown_s)


class SgReadyConfig(_HeatPumpLoad):
    nominal_w: Watts = 2000
    gate_pct: Percent = 50
    min_on_s: Seconds = 1800
    power_source: Literal["meter", "compressor", "none"] = "compressor"
    #: Rule 9: a heating-season load.
    max_outdoor_c: float | None = 15.0


class DhwConfig(_HeatPumpLoad):
    kind: LoadKind = LoadKind.SETPOINT
    nominal_w: Watts = 2000
    gate_pct: Percent = 50
    min_on_s: Seconds = 900
    power_source: Literal["meter", "compressor", "none"] = "compressor"
    normal_c: float = Field(50.0, ge=10, le=70)
    boost_c: float = Field(60.0, ge=10, le=70)
    #: Rule 12: Viessmann writes no more often than this.
    min_write_interval_s: Seconds = 900

    @model_validator(mode="after")
    def _boost_above_normal(self) -> DhwConfig:
        if self.boost_c <= self.normal_c:
            raise ValueError(f"boost_c ({self.boost_c}) must be above normal_c ({self.normal_c})")
        return self


class WallboxConfig(LoadConfig):
    min_on_s: Seconds = 900
    no_car: NoCarRelease = NoCarRelease()
    fallback: CarFallback = CarFallback()
    charging: CarCharging = CarCharging()

    @property
    def car_charging(self) -> CarCharging | None:
        return self.charging if self.charging.enabled else None

    @property
    def no_car_rule(self) -> NoCarRelease | None:
        # Without a meter the draw is only known from charging by target's estimate
        # (emsctl.cars.draw); without either there is nothing to judge.
        on = self.no_car.enabled and (self.power_source == "meter" or self.charging.enabled)
        return self.no_car if on else None

    @property
    def charging_window(self) -> CarFallback | None:
        return self.fallback if self.fallback.enabled else None

    @property
    def release_cooldown_s(self) -> float | None:
        return float(self.no_car.retry_after_s)


class WbAConfig(WallboxConfig):
    """WB A: 2 kW, Shelly Plus 1 PM (has a meter). A relay car takes all its power or
    nothing: on surplus it starts with 60 % of it from the sun and keeps on with half."""

    nominal_w: Watts = 2000
    gate_pct: Percent = 50
    start_w: Watts | None = 1200
    max_import_w: Watts = 1000
    power_source: Literal["meter", "compressor", "none"] = "meter"


class WbBConfig(WallboxConfig):
    """WB B: 4 kW, Shelly Plus 1 (no meter; its draw is estimated, rule 17). 4 kW of surplus
    beside the house behind a 4.6 kW inverter is rare: it starts with 2 kW from the sun."""

    nominal_w: Watts = 4000
    gate_pct: Percent = 60
    start_w: Watts | None = 2000
    max_import_w: Watts = 2200
    power_source: Literal["meter", "compressor", "none"] = "none"


class LoadsConfig(Strict):
    sg_ready: SgReadyConfig = SgReadyConfig()
    dhw: DhwConfig = DhwConfig()
    wb_a: WbAConfig = WbAConfig()
    wb_b: WbBConfig = WbBConfig()

    def get(self, load: LoadId) -> LoadConfig:
        cfg: LoadConfig = getattr(self, load.value)
        return cfg

    def items(self) -> Iterator[tuple[LoadId, LoadConfig]]:
        for load in LoadId:
            yield load, self.get(load)


# --------------------------------------------------------------------------- control


class ControlConfig(Strict):
    """The decision rules' house-wide settings (docs/decision-logic.md)."""

    interval_s: float = Field(60, gt=0, le=3600)
    #: Rule 4: loads in this order get surplus first; shedding goes in reverse.
    priority: list[LoadId] = [LoadId.SG_READY, LoadId.DHW, LoadId.WB_A, LoadId.WB_B]
    #: Rule 7: loads in one group never run together.
    exclusive: list[list[LoadId]] = [[LoadId.WB_A, LoadId.WB_B]]
    gate_hysteresis_pct: Percent = 3
    settle_s: Seconds = 180
    #: Rule 6.
    brake_soc: Percent = 45
    force_beats_brake: bool = False
    #: Rule 13.
    max_age_s: Seconds = 300
    failsafe_after_s: Seconds = 600
    manual_hold_s: Seconds = 4 * 3600
    battery_capacity_wh: Watts = 8000
    #: Rule 14: how far gates drop when the forecast says the battery fills anyway (never
    #: below brake_soc + 2 x gate_hysteresis_pct).
    forecast_gate_shift_pct: Percent = 15
    #: Rule 14: remaining PV must exceed the battery's room by this factor.
    forecast_margin: float = Field(1.5, ge=1.0)
    #: What a clean stop does to the relays: leave them (dead-man timers end EMS runs) or
    #: switch every EMS-driven load off.
    on_exit: Literal["leave", "all_off"] = "leave"
    timezone: str = "Europe/Berlin"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# --------------------------------------------------------------------------- adapters


class MetricQuery(Strict):
    """One measurement: a PromQL selector (metric name plus optional label matchers).

    `labels` are equality matchers; they must narrow the selector to exactly one series.
    `scale` multiplies the value (-1 flips a sign, 1000 turns kW into W).
    """

    metric: str
    labels: dict[str, str] = {}
    scale: float = 1.0

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, v: str) -> str:
        if not _METRIC_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not a Prometheus metric name")
        return v

    @field_validator("labels")
    @classmethod
    def _label_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not _LABEL_RE.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"{name!r} is not a label name usable as a matcher")
        return v


def _q(metric: str, scale: float = 1.0) -> MetricQuery:
    return MetricQuery(metric=metric, scale=scale)


class PrometheusConfig(Strict):
    """Where the house's measurements come from (docs/adapters.md, "Prometheus")."""

    url: str = "http://127.0.0.1:9090"
    #: Whole query, connection included; also sent to Prometheus as its query timeout.
    timeout_s: float = Field(5.0, gt=0, le=60)
    grid_w: MetricQuery = _q("pcc_transfer_power_exchange_value")
    grid_l1_w: MetricQuery | None = None
    grid_l2_w: MetricQuery | None = None
    grid_l3_w: MetricQuery | None = None
    soc_pct: MetricQuery = _q("ess_stateOfCharge_value")
    pv_w: MetricQuery = _q("photovoltaic_production_current_value")
    #: Multiply by -1 if the inverter reports discharging as positive.
    battery_w: MetricQuery = _q("ess_power_value")
    compressor_w: MetricQuery | None = _q("heating_compressors_0_power_value")
    outdoor_c: MetricQuery | None = _q("heating_sensors_temperature_outside_value")
    dhw_c: MetricQuery | None = _q("heating_dhw_sensors_temperature_hotWaterStorage_value")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", v):
            raise ValueError(f"{v!r}: expected http://host:port (optionally with a path prefix)")
        return v.rstrip("/")


class ViessmannConfig(Strict):
    enabled: bool = False
    client_id: str = ""
    redirect_uri: str = "vicare://oauth-callback/everest"
    scope: str = "IoT User offline_access"
    auth_url: str = "https://iam.viessmann-climatesolutions.com/idp/v3/authorize"
    token_url: str = "https://iam.viessmann-climatesolutions.com/idp/v3/token"
    api_base: str = "https://api.viessmann-climatesolutions.com/iot/v2"
    installation_id: str | None = None
    gateway_serial: str | None = None
    device_id: str | None = None
    #: Our own calls per rolling 24 h; Viessmann blocks the account at 1450 (shared with the app).
    daily_budget: int = Field(300, ge=1, le=1450)
    timeout_s: float = Field(31.0, gt=0, le=120)
    #: Where the refresh token lives (mode 0600); relative paths are under the state directory
    #: (the directory of store.path).
    token_file: str = "viessmann-token.json"
    #: Also start a one-time DHW charge when the boost begins (the schedule may not allow
    #: charging at noon otherwise). Costs one or two extra calls per boost.
    one_time_charge: bool = False
    #: How often the DHW target is re-read to notice a change made in the ViCare app. Every
    #: read is a call: 900 s costs 96 calls a day. The DHW temperature itself comes from
    #: Prometheus, never from here.
    check_interval_s: float = Field(900, ge=60)
    #: Calls of the daily budget that periodic checks leave untouched, so a boost can always
    #: be switched off again.
    read_reserve: int = Field(30, ge=0)
    #: Our calls per rolling 10 minutes; Viessmann blocks the account above 120.
    burst_budget: int = Field(60, ge=1, le=120)
    #: First wait after a failed call (unreachable, server error); doubles up to
    #: check_interval_s, so an offline gateway costs a few calls an hour, not one a tick.
    retry_after_error_s: float = Field(120, ge=10)
    #: Wait after a 429 that names no reset time.
    rate_limit_wait_s: float = Field(3600, ge=60)

    @model_validator(mode="after")
    def _reserve_below_budget(self) -> ViessmannConfig:
        # A missing client_id is not an error here: the shipped file has none yet, and the
        # daemon must still run; the DHW load then shows why it is unavailable.
        if self.read_reserve >= self.daily_budget:
            raise ValueError(
                f"read_reserve ({self.read_reserve}) must be below daily_budget "
                f"({self.daily_budget}), or no periodic check could ever run"
            )
        return self


class ForecastPlane(Strict):
    declination: float = Field(ge=0, le=90)
    azimuth: float = Field(ge=-180, le=180)  # 0 = south, -90 = east, 90 = west
    kwp: float = Field(gt=0)


class ForecastConfig(Strict):
    enabled: bool = False
    url: str = "https://api.forecast.solar"
    api_key: str | None = None
    latitude: float = Field(49.0, ge=-90, le=90)
    longitude: float = Field(8.4, ge=-180, le=180)
    planes: list[ForecastPlane] = [
        ForecastPlane(declination=30, azimuth=0, kwp=5.0),
        ForecastPlane(declination=30, azimuth=90, kwp=2.0),
    ]
    #: Time between fetches. forecast.solar recomputes at most every 15 min, so 900 is the floor.
    refresh_s: float = Field(3600, ge=900)
    #: A random delay of up to this many seconds is added to every refresh, so our calls do not
    #: land on the full hour together with everybody else's (forecast.solar asks for this).
    jitter_s: Seconds = 600
    #: A cached forecast older than this is not used (the engine then runs without one).
    max_age_s: Seconds = 6 * 3600
    #: First wait after a failed fetch; doubles up to refresh_s.
    retry_after_error_s: float = Field(900, ge=60)
    #: Our own cap on calls per hour (None: 12 without a key, 60 with one, the free and
    #: personal tiers' limits). The server's rate-limit headers are honoured as well.
    hourly_limit: int | None = Field(None, ge=1)
    timeout_s: float = Field(10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _plane_count(self) -> ForecastConfig:
        if not self.planes:
            raise ValueError("at least one plane is needed")
        if len(self.planes) > 4:
            raise ValueError("forecast.solar accepts at most 4 planes")
        return self


class StoreConfig(Strict):
    path: str = "/var/lib/ems/ems.db"
    retention_days: int = Field(30, ge=1, le=3650)


class WebUiConfig(Strict):
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: werkzeug password hash (`emsctl webui hash-password`); None = no login.
    password_hash: str | None = None
    #: Signs the session cookies; relative paths are under the state directory (the directory
    #: of store.path). Created with mode 0600 when missing.
    secret_key_file: str = "webui-secret"
    #: Send cookies only over HTTPS. Off by default: on the LAN the UI is plain HTTP; turn it on
    #: behind a TLS reverse proxy.
    secure_cookies: bool = False
    #: How long a login lasts.
    session_days: int = Field(30, ge=1, le=365)
    #: Host names the UI answers to besides IP addresses, localhost and this machine's own
    #: names (e.g. the name a reverse proxy forwards). Others get 400: a web page that points
    #: its own domain at this address (DNS rebinding) cannot drive the UI.
    allowed_hosts: list[str] = []

    @field_validator("bind")
    @classmethod
    def _bind_address(cls, v: str) -> str:
        return bind_address(v)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            host_name(name, f"entry {i + 1}")
        return v

    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, v: str | None) -> str | None:
        if v is None:
            return v
        method, _, rest = v.partition("$")
        salt, _, digest = rest.partition("$")
        if not method.startswith(("scrypt", "pbkdf2")) or not salt or not digest:
            raise ValueError(
                "not a password hash: make one with `emsctl webui hash-password` "
                "(it starts with scrypt: or pbkdf2:)"
            )
        return v


class MetricsConfig(Strict):
    enabled: bool = True
    bind: str = "0.0.0.0"
    port: int = Field(9099, ge=0, le=65535)

    @field_validator("bind")
    @classmethod
    def _bind_address(cls, v: str) -> str:
        return bind_address(v)


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


#: A label as browsers send it in Host: DNS's letters, digits and '-', and '_' (which
#: browsers accept and some local names carry).
_HOST_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)


def host_name(value: str, where: str = "") -> str:
    """A host name as a browser sends it in Host (no scheme, port, path or wildcard), or an
    IP address (always answered, so its entry is harmless)."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if (
        not value
        or len(value) > 253
        or not all(_HOST_LABEL.fullmatch(x) for x in labels)
        or labels[-1].isdigit()  # 192.168.1.300 is a mistyped address, not a name
    ):
        raise ValueError(
            f"{where}: {value!r} is not a host name (letters, digits, '-', '_' and dots, "
            "e.g. ems.example.org: no scheme, port, path or '*') nor an IP address"
        )
    return value


def bind_address(v: str) -> str:
    """An IP address or a host name to listen on; anything else is refused."""
    try:
        ipaddress.ip_address(v)
    except ValueError:
        # A name's last label is never all digits: 300.1.1.1 is a mistyped address.
        if not _HOSTNAME.match(v) or v.rsplit(".", 1)[-1].isdigit():
            raise ValueError("an IP address (e.g. 127.0.0.1, 0.0.0.0, ::) or a host name") from None
    return v


def is_loopback(bind: str) -> bool:
    """Whether a listen address is reachable from this machine only."""
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


class TariffConfig(Strict):
    import_eur_kwh: float = Field(0.35, ge=0)
    feed_in_eur_kwh: float = Field(0.08, ge=0)
    #: Value of car energy that was wanted but not delivered.
    unmet_car_eur_kwh: float = Field(1.00, ge=0)


class Limits(Strict):
    """The range a measurement can physically take; outside it the value is a glitch."""

    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self


class PlausibilityConfig(Strict):
    """Rule 16 (docs/decision-logic.md): a value outside its limits is missing, never acted on.

    The defaults fit a house with a 63 A three-phase supply and an inverter of up to 15 kW;
    they catch register overflows (0xFFFF, -4294967295) and unit mix-ups (kW read as W).
    """

    grid_w: Limits = Limits(min=-50_000, max=50_000)
    grid_phase_w: Limits = Limits(min=-20_000, max=20_000)
    soc_pct: Limits = Limits(min=0, max=100)
    pv_w: Limits = Limits(min=-100, max=30_000)
    battery_w: Limits = Limits(min=-20_000, max=20_000)
    compressor_w: Limits = Limits(min=-100, max=15_000)
    outdoor_c: Limits = Limits(min=-50, max=60)
    dhw_c: Limits = Limits(min=-10, max=100)
    #: A load's own meter (the Shelly's `apower`).
    load_power_w: Limits = Limits(min=-100, max=25_000)


# --------------------------------------------------------------------------- simulator


class SimBattery(Strict):
    """The hybrid inverter's battery (docs/simulator.md). Self-consumption mode: it charges
    from surplus (and from DC PV the AC side cannot take) and discharges on deficit."""

    capacity_wh: Watts = 8000
    #: The inverter never discharges below this stored energy.
    reserve_wh: Watts = 800
    max_charge_w: Watts = 4000
    max_discharge_w: Watts = 4000
    #: One-way efficiency, applied on the way in and again on the way out.
    efficiency: float = Field(0.95, gt=0, le=1)
    initial_wh: Watts = 4000

    @model_validator(mode="after")
    def _fits(self) -> SimBattery:
        if not self.reserve_wh <= self.initial_wh <= self.capacity_wh:
            raise ValueError(
                f"need reserve_wh ({self.reserve_wh:g}) <= initial_wh ({self.initial_wh:g}) "
                f"<= capacity_wh ({self.capacity_wh:g})"
            )
        return self


class SimHeatPump(Strict):
    """One on/off compressor shared by the heating buffer and the DHW tank (DHW first).

    COP = cop_base + cop_slope x (outdoor - cop_ref_c), clamped to cop_min..cop_max; heating
    the DHW tank costs dhw_cop_penalty of COP (at least dhw_cop_min). The backup heater
    (COP 1) only holds the minimum temperatures."""

    compressor_w: Watts = 2000
    cop_base: float = 3.9
    cop_slope: float = 0.09
    cop_ref_c: float = 2.0
    cop_min: float = 2.0
    cop_max: float = 5.5
    dhw_cop_penalty: float = 0.9
    dhw_cop_min: float = 1.8
    backup_heater_w: Watts = 6000


class SimBuffer(Strict):
    """The heating buffer as one lumped mass; heat_demand_w of the scenario is drawn from it."""

    kwh_per_k: float = Field(1.163, gt=0)
    loss_w_per_k: float = Field(3.0, ge=0)
    ambient_c: float = 20.0
    #: Below this the heating is uncomfortable; the backup heater holds it.
    min_c: float = 35.0
    initial_c: float = 40.0
    #: The heat pump's own thermostat: call for heat below on_below_c, stop at off_at_c.
    on_below_c: float = 37.5
    off_at_c: float = 42.5
    #: SG-Ready (state 3, "recommended on") raises both thermostat points by this much.
    sg_raise_k: float = Field(5.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> SimBuffer:
        if not self.min_c <= self.on_below_c < self.off_at_c:
            raise ValueError("need min_c <= on_below_c < off_at_c")
        return self


class SimDhwTank(Strict):
    """The DHW tank; dhw_draw_w of the scenario is drawn from it. The boost target is
    loads.dhw.boost_c, with the same hysteresis as the normal target."""

    kwh_per_k: float = Field(0.349, gt=0)
    loss_w_per_k: float = Field(2.0, ge=0)
    ambient_c: float = 20.0
    min_c: float = 45.0
    initial_c: float = 52.0
    on_below_c: float = 47.0
    off_at_c: float = 50.0
    hysteresis_k: float = Field(3.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> SimDhwTank:
        if not self.min_c <= self.on_below_c < self.off_at_c:
            raise ValueError("need min_c <= on_below_c < off_at_c")
        return self


class SimConfig(Strict):
    """The plant model of the replay simulator and the demo (bench/data/README.md values)."""

    inverter_ac_w: Watts = 4600
    battery: SimBattery = SimBattery()
    heat_pump: SimHeatPump = SimHeatPump()
    buffer: SimBuffer = SimBuffer()
    dhw_tank: SimDhwTank = SimDhwTank()
    #: Minutes between the plant's state and what the engine sees (Prometheus scrape lag).
    measurement_lag_min: int = Field(1, ge=0, le=10)
    #: The Viessmann values (compressor power, outdoor and DHW temperature) reach Prometheus
    #: only every this many minutes; in between the engine sees the last scrape, aging.
    viessmann_scrape_min: int = Field(2, ge=1, le=10)
    #: A temperature this far below its minimum counts as a comfort violation (K).
    comfort_tolerance_k: float = Field(0.05, ge=0)
    #: Demo speed: wall seconds per simulated minute.
    demo_seconds_per_minute: float = Field(0.1, gt=0)
    #: The simulated forecast (when `forecast.enabled`) is the scenario's own PV (today and
    #: tomorrow, per 15-minute slot), a day ahead off by a factor per local day drawn from a
    #: log-normal of mean 1 with this spread (0: perfect foresight, no error of any kind;
    #: 0.35 is about a day-ahead forecast's typical daily error). See docs/simulator.md.
    forecast_error: float = Field(0.0, ge=0, le=2)
    #: With `forecast_error` > 0: the spread (log) of the hourly errors of the day's shape, an
    #: AR(1) process with a correlation time of a few hours that moves energy between the
    #: hours of a day without changing its total a day ahead (0: the day's shape is exact).
    forecast_shape_error: float = Field(0.25, ge=0, le=2)
    #: Seed of those errors, so that a noisy replay can be repeated.
    forecast_seed: int = 1
    #: What the owner tells EMS of the cars (rule 17): "none" (EMS knows only what it learned
    #: from the replay's own past sessions) or "plans" (at each plug-in the owner sets the
    #: session's true departure and need as a one-off target: the upper bound).
    owner: Literal["none", "plans"] = "none"


class PlannerConfig(Strict):
    """Rule 19: the day-ahead plan (emsctl/planner, docs/decision-logic.md)."""

    enabled: bool = False
    #: How far ahead a plan looks (as far as the forecast reaches, at most this).
    horizon_h: float = Field(36, ge=6, le=48)
    #: A new plan at least this often (and when the forecast or a load's state changes).
    every_s: float = Field(900, ge=60, le=3600)
    #: A plan older than this is stale: the rules act alone.
    stale_s: float = Field(2700, ge=300)
    #: A planned load starts once the surplus gives this share of its nominal power.
    start_fraction: float = Field(0.25, ge=0, le=1)
    #: A block is planned only where the plan expects this share of its energy to be spare.
    min_spare: float = Field(0.7, gt=0, le=1)
    #: Hold a load where the plan finds no energy to spare (false: the plan only helps).
    hold: bool = True
    #: At or above this SOC the battery is full for the plan's hold: the rules act alone.
    full_soc_pct: Percent = 95
    #: Blocks a load gets planned per day at most (within its max_starts_per_day).
    blocks_per_day: dict[LoadId, Annotated[int, Field(ge=0, le=24)]] = {
        LoadId.SG_READY: 2,
        LoadId.DHW: 1,
    }
    #: The inverter's AC limit and the battery, as the plan models them.
    inverter_ac_w: Watts = 4600
    battery_reserve_wh: Watts = 800
    battery_max_charge_w: Watts = 4000
    battery_max_discharge_w: Watts = 4000
    battery_efficiency: float = Field(0.95, gt=0, le=1)
    #: Before a house-load profile is learned: this flat consumption.
    default_load_w: Watts = 600


# --------------------------------------------------------------------------- root


class Config(Strict):
    control: ControlConfig = ControlConfig()
    loads: LoadsConfig = LoadsConfig()
    prometheus: PrometheusConfig = PrometheusConfig()
    viessmann: ViessmannConfig = ViessmannConfig()
    forecast: ForecastConfig = ForecastConfig()
    store: StoreConfig = StoreConfig()
    webui: WebUiConfig = WebUiConfig()
    metrics: MetricsConfig = MetricsConfig()
    tariff: TariffConfig = TariffConfig()
    plausibility: PlausibilityConfig = PlausibilityConfig()
    planner: PlannerConfig = PlannerConfig()
    sim: SimConfig = SimConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        problems: list[tuple[str, Any, str]] = []
        c = self.control
        seen = set()
        for i, load in enumerate(c.priority):
            if load in seen:
                problems.append((f"control.priority.{i}", load.value, "each load once"))
            seen.add(load)
        for load, lc in self.loads.items():
            if lc.enabled and load not in seen:
                problems.append(
                    ("control.priority", [x.value for x in c.priority], f"a list naming {load}")
                )
        for g, group in enumerate(c.exclusive):
            if len(set(group)) < 2:
                problems.append(
                    (f"control.exclusive.{g}", [x.value for x in group], "at least two loads")
                )
        for load, lc in self.loads.items():
            if not lc.enabled:
                continue
            gate = lc.gate_pct
            if c.brake_soc >= gate - c.gate_hysteresis_pct:
                problems.append(
                    (
                        "control.brake_soc",
                        c.brake_soc,
                        f"below {load}'s gate {gate:g}% minus hysteresis "
                        f"{c.gate_hysteresis_pct:g} (a load must leave before the brake)",
                    )
                )
            if lc.on_delay_s < c.interval_s:
                problems.append(
                    (
                        f"loads.{load}.on_delay_s",
                        lc.on_delay_s,
                        f"at least control.interval_s ({c.interval_s:g})",
                    )
                )
            if lc.off_delay_s < c.interval_s:
                problems.append(
                    (
                        f"loads.{load}.off_delay_s",
                        lc.off_delay_s,
                        f"at least control.interval_s ({c.interval_s:g})",
                    )
                )
            if lc.phase and getattr(self.prometheus, f"grid_{lc.phase.lower()}_w") is None:
                log.debug("load %s judges %s but no per-phase metric is configured", load, lc.phase)
            dev = lc.device
            if lc.kind is LoadKind.SETPOINT and dev.type not in ("viessmann_dhw", "sim", "none"):
                problems.append((f"loads.{load}.device.type", dev.type, "viessmann_dhw or sim"))
            if lc.kind is LoadKind.RELAY and dev.type == "viessmann_dhw":
                problems.append((f"loads.{load}.device.type", dev.type, "a relay device"))
            if lc.power_source == "meter" and dev.type == "shelly_gen1":
                problems.append(
                    (
                        f"loads.{load}.power_source",
                        lc.power_source,
                        "'compressor' or 'none': a Shelly 1 Gen1 has no power meter",
                    )
                )
        w = self.webui
        # The web UI switches the heat pump and the wallboxes: on the network it needs a login.
        if w.enabled and w.password_hash is None and not is_loopback(w.bind):
            problems.append(
                (
                    "webui.bind",
                    w.bind,
                    "a loopback address such as 127.0.0.1 while webui.password_hash is not "
                    "set (emsctl webui hash-password): no control panel open to the network",
                )
            )
        if problems:
            raise _CrossCheckError(problems)
        return self

    def enabled_loads(self) -> list[LoadId]:
        """Enabled loads in priority order."""
        return [x for x in self.control.priority if self.loads.get(x).enabled]


# --------------------------------------------------------------------------- errors


class _CrossCheckError(ValueError):
    def __init__(self, problems: list[tuple[str, Any, str]]) -> None:
        super().__init__("; ".join(f"{p}: {v!r}: expected {e}" for p, v, e in problems))
        self.problems = problems


class ConfigProblem(BaseModel):
    path: str
    value: Any
    expected: str

    def __str__(self) -> str:
        # Shown on the terminal and, from `run`, in the journal: a secret key's value (a plain
        # password where its hash goes) is masked, and so is a URL's user:password.
        if self.value is _MISSING:
            shown = "(missing)"
        elif SECRET_KEYS & set(self.path.split(".")):
            shown = MASK
        else:
            shown = redact_url(repr(self.value))
        return f"{self.path}: {shown}: {redact_url(self.expected)}"


_MISSING = object()


class ConfigError(Exception):
    """The config file is unusable. `problems` lists every bad key."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the configuration:\n{lines}")


def _expected(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "no such key (check the spelling; see docs/decision-logic.md for the keys)"
    if kind == "missing":
        return "a value (this key is required)"
    if kind == "enum":
        return f"one of {ctx.get('expected', '')}"
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sym = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        bound = next(iter(ctx.values()), "")
        return f"a number {sym} {bound}"
    msg: str = err["msg"]
    return msg.removeprefix("Value error, ")


def _to_problems(exc: ValidationError, data: Any) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc = [str(x) for x in err["loc"]]
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _CrossCheckError):
            for path, value, expected in ctx_err.problems:
                out.append(ConfigProblem(path=path, value=value, expected=expected))
            continue
        path = ".".join(loc) or "(top level)"
        value = err.get("input", _MISSING) if err["type"] != "missing" else _MISSING
        if isinstance(value, dict) and err["type"] != "extra_forbidden":
            value = "{...}"
        out.append(ConfigProblem(path=path, value=value, expected=_expected(err)))
    return out


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate an already-parsed YAML document."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            [ConfigProblem(path="(top level)", value=type(data).__name__, expected="a mapping")],
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _to_problems(exc, data)) from None


#: A configuration is a few kilobytes; anything much larger is not one.
MAX_CONFIG_BYTES = 1 << 20


#: A configuration has a few hundred values; aliases (&x / *x) may repeat parts, but a tree
#: this large after expanding them is a "billion laughs" that would stall validation.
MAX_CONFIG_NODES = 100_000


def _too_big(data: Any) -> bool:
    """Whether the loaded document, aliases expanded, has more than MAX_CONFIG_NODES values."""
    budget = MAX_CONFIG_NODES
    stack = [data]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _problem(p: Path, where: str, expected: str) -> ConfigError:
    return ConfigError(str(p), [ConfigProblem(path=where, value=_MISSING, expected=expected)])


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file; raise ConfigError naming every problem."""
    p = Path(path)
    try:
        raw = p.read_bytes() if p.stat().st_size <= MAX_CONFIG_BYTES else None
    except OSError as exc:
        # The file itself, not a key in it: one plain line saying what to do (the first thing
        # a newcomer meets when a command looks for /etc/ems/ems-config.yaml in a checkout).
        if isinstance(exc, FileNotFoundError):
            what = "no such file"
            todo = (
                "pass --config FILE or set $EMS_CONFIG (configs/ems-config.yaml in the "
                "repository is the example to start from; `emsctl demo` needs none)"
            )
        elif isinstance(exc, IsADirectoryError):
            what, todo = "is a directory", "name the YAML file itself"
        elif isinstance(exc, PermissionError):
            what = "cannot be read (permission denied)"
            todo = "run as a user who may read it (e.g. with sudo)"
        else:
            what, todo = f"cannot be read ({exc.strerror or exc})", "name a readable file"
        err = _problem(p, "(file)", f"a readable file: {what}; {todo}")
        err.args = (f"{p}: {what}: {todo}",)
        raise err from None
    if raw is None:
        raise _problem(p, "(file)", f"a configuration file of at most {MAX_CONFIG_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _problem(p, f"line {line}", f"UTF-8 text (byte {exc.start} is not)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise _problem(p, where, f"valid YAML: {exc}") from None
    except RecursionError:
        raise _problem(p, "(file)", "YAML nested to a sensible depth") from None
    if _too_big(data):
        raise _problem(
            p, "(file)", f"at most {MAX_CONFIG_NODES:,} values with its aliases (&x, *x) expanded"
        )
    return parse_config(data, str(p))


def dump_config(cfg: Config) -> str:
    """The effective configuration as YAML (what `emsctl check-config` prints)."""
    data = redact_mapping(cfg.model_dump(mode="json", by_alias=True))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
