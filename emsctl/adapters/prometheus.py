"""Prometheus collector: one instant PromQL query per tick returns every measurement of the
house together with the timestamp of its sample, so stale values become absent, never zero.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from emsctl.adapters import deadline
from emsctl.adapters.base import BadResponse, DeviceUnreachable
from emsctl.config import Config, MetricQuery, PrometheusConfig
from emsctl.model import MEASUREMENTS, Snapshot
from emsctl.redact import redact_url

log = logging.getLogger(__name__)

DEVICE = "prometheus"
#: Label our query adds to tell the measurements apart in the one combined result.
MEASUREMENT_LABEL = "ems_m"
#: Suffix of that label on the `timestamp(...)` half of a measurement.
TIMESTAMP_SUFFIX = "@ts"


class PrometheusHTTPError(BadResponse):
    """Non-2xx without a Prometheus error body: usually a proxy or a wrong URL."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message, device=DEVICE)
        self.status_code = status_code


class PrometheusQueryError(BadResponse):
    """Prometheus answered `status: error` (bad_data, execution, timeout, ...)."""

    def __init__(self, message: str, *, error_type: str, status_code: int) -> None:
        super().__init__(message, device=DEVICE)
        self.error_type = error_type
        self.status_code = status_code


class UnexpectedResult(BadResponse):
    """The answer is JSON, but not the shape our query must produce."""

    def __init__(self, message: str) -> None:
        super().__init__(message, device=DEVICE)


class AmbiguousMeasurement(UnexpectedResult):
    """A selector matched more than one series: the label matchers are too loose."""

    def __init__(self, measurement: str, selector: str, series: list[dict[str, str]]) -> None:
        shown = ", ".join(_labels_text(s) for s in series[:4])
        super().__init__(
            f"{measurement}: {len(series)} series match {selector} ({shown}); add label "
            f"matchers under prometheus.{measurement}.labels so that exactly one matches"
        )
        self.measurement = measurement


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement as Prometheus returned it: scaled value (None for NaN/Inf) and the
    sample's own timestamp (unix seconds), not the evaluation time."""

    value: float | None
    timestamp: float


# --------------------------------------------------------------------------- query


def _quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def selector(q: MetricQuery) -> str:
    """`metric{label="value",...}`: the instant vector selector of one measurement."""
    if not q.labels:
        return q.metric
    matchers = ",".join(f"{k}={_quote(v)}" for k, v in sorted(q.labels.items()))
    return f"{q.metric}{{{matchers}}}"


def configured(config: PrometheusConfig) -> dict[str, MetricQuery]:
    """Measurement name -> query, for every measurement the config names (display order)."""
    out: dict[str, MetricQuery] = {}
    for name in MEASUREMENTS:
        q = getattr(config, name, None)
        if isinstance(q, MetricQuery):
            out[name] = q
    return out


def build_query(queries: Mapping[str, MetricQuery]) -> str:
    """One PromQL expression returning, per measurement, its value and its sample time.

    Each half is tagged with `ems_m` by label_replace (an empty regex on the empty source
    label always matches); `or` keeps both halves because their label sets differ.
    """
    parts: list[str] = []
    for name, q in queries.items():
        sel = selector(q)
        tag = _quote(MEASUREMENT_LABEL)
        parts.append(f'label_replace({sel}, {tag}, {_quote(name)}, "", "")')
        parts.append(
            f'label_replace(timestamp({sel}), {tag}, {_quote(name + TIMESTAMP_SUFFIX)}, "", "")'
        )
    if not parts:
        raise ValueError("no measurement configured")
    return " or ".join(parts)


# --------------------------------------------------------------------------- answer


def _labels_text(labels: Mapping[str, str]) -> str:
    inner = ",".join(
        f"{k}={_quote(v)}" for k, v in sorted(labels.items()) if k != MEASUREMENT_LABEL
    )
    return "{" + inner + "}"


def _number(text: Any, where: str) -> float:
    if not isinstance(text, str):
        raise UnexpectedResult(f"{where}: sample value {text!r} is not a string")
    try:
        return float(text)
    except ValueError:
        raise UnexpectedResult(f"{where}: sample value {text!r} is not a number") from None


def parse_response(
    status_code: int, body: bytes, queries: Mapping[str, MetricQuery]
) -> dict[str, Sample]:
    """Turn the HTTP answer to `build_query(queries)` into samples (missing = not in the dict).

    Raises PrometheusHTTPError, PrometheusQueryError, UnexpectedResult (AmbiguousMeasurement).
    """
    try:
        doc = httpx.Response(status_code, content=body).json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "status" not in doc:
        snippet = body[:120].decode("utf-8", "replace").strip()
        if not 200 <= status_code < 300:
            raise PrometheusHTTPError(
                f"HTTP {status_code} without a Prometheus answer (a proxy or a wrong URL?): "
                f"{snippet!r}",
                status_code=status_code,
            )
        raise UnexpectedResult(f"answer is not a Prometheus JSON envelope: {snippet!r}")
    if doc["status"] != "success":
        error_type = str(doc.get("errorType", "unknown"))
        raise PrometheusQueryError(
            f"query failed ({error_type}, HTTP {status_code}): {doc.get('error', '')}",
            error_type=error_type,
            status_code=status_code,
        )
    for warning in doc.get("warnings") or ():
        log.warning("Prometheus warns: %s", warning)
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise UnexpectedResult(f"expected an instant vector, got {kind!r}")
    result = data.get("result")
    if not isinstance(result, list):
        raise UnexpectedResult("data.result is not a list")

    values: dict[str, list[tuple[dict[str, str], float]]] = {}
    stamps: dict[str, list[tuple[dict[str, str], float]]] = {}
    for i, item in enumerate(result):
        where = f"result[{i}]"
        if not isinstance(item, dict):
            raise UnexpectedResult(f"{where} is not an object")
        labels = item.get("metric")
        pair = item.get("value")
        if not isinstance(labels, dict) or not isinstance(pair, list) or len(pair) != 2:
            raise UnexpectedResult(f"{where} lacks 'metric' or a [time, value] pair")
        tag = labels.get(MEASUREMENT_LABEL)
        name = tag.removesuffix(TIMESTAMP_SUFFIX) if isinstance(tag, str) else None
        if name is None or name not in queries:
            raise UnexpectedResult(f"{where} carries no measurement we asked for: {labels}")
        target = stamps if tag != name else values
        series = {k: v for k, v in labels.items() if k not in (MEASUREMENT_LABEL, "__name__")}
        target.setdefault(name, []).append((series, _number(pair[1], f"{name} {where}")))

    samples: dict[str, Sample] = {}
    for name, q in queries.items():
        found = values.get(name, [])
        if len(found) > 1:
            raise AmbiguousMeasurement(name, selector(q), [s for s, _ in found])
        if not found:
            continue
        labels, raw = found[0]
        ts = next((t for s, t in stamps.get(name, []) if s == labels), None)
        if ts is None or not math.isfinite(ts):
            raise UnexpectedResult(f"{name}: a value came back without its sample timestamp")
        value = raw * q.scale if math.isfinite(raw) else None
        samples[name] = Sample(value=value, timestamp=ts)
    return samples


# --------------------------------------------------------------------------- collector


def split_credentials(url: str) -> tuple[str, httpx.BasicAuth | None]:
    """The URL without its `user:password@` and that user information as HTTP Basic auth.

    Sent apart, the password is never part of a request's URL: not in httpx's request log,
    nor in an exception that carries the request.
    """
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url, None
    bare = str(parsed.copy_with(username=None, password=None))
    return bare.rstrip("/"), httpx.BasicAuth(parsed.username, parsed.password)


class PrometheusCollector:
    """The real Collector: reads every configured measurement at the tick time.

    One POST to /api/v1/query per collect(). A value absent from Prometheus, NaN, or older
    than `max_age_s` is None in the Snapshot; `ages_s` keeps the age of every value that came
    back (stale ones too, so an owner can see how old they are).
    """

    def __init__(
        self,
        config: PrometheusConfig,
        *,
        max_age_s: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.max_age_s = max_age_s
        self.queries = configured(config)
        self.query = build_query(self.queries)
        #: The URL as messages show it (no password).
        self.shown_url = redact_url(config.url)
        base_url, auth = split_credentials(config.url)
        # timeout_s bounds the whole query (connection, headers, body), not each read.
        self._client = deadline.client(
            config.timeout_s,
            base_url=base_url,
            auth=auth,
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "emsctl"},
        )
        #: Measurements reported missing last time: log only the changes.
        self._missing: dict[str, str] = {}

    @classmethod
    def from_config(cls, config: Config) -> PrometheusCollector:
        return cls(config.prometheus, max_age_s=config.control.max_age_s)

    def fetch(self, at: datetime) -> dict[str, Sample]:
        """Raw samples at `at` (no staleness applied). Raises AdapterError."""
        form = {
            "query": self.query,
            "time": f"{at.timestamp():.3f}",
            # Prometheus gives up a little before we do, so its own error reaches us.
            "timeout": f"{max(int(self.config.timeout_s * 800), 100)}ms",
        }
        try:
            response = self._client.post("/api/v1/query", data=form)
        except httpx.TimeoutException as exc:
            raise DeviceUnreachable(
                f"no answer from {self.shown_url} within {self.config.timeout_s:g} s "
                f"({type(exc).__name__})",
                device=DEVICE,
            ) from None
        except httpx.TransportError as exc:
            raise DeviceUnreachable(
                f"cannot reach {self.shown_url}: {exc or type(exc).__name__}", device=DEVICE
            ) from None
        except httpx.HTTPError as exc:  # pragma: no cover - invalid URL and the like
            raise DeviceUnreachable(
                f"request to {self.shown_url} failed: {exc}", device=DEVICE
            ) from None
        return parse_response(response.status_code, response.content, self.queries)

    def collect(self, at: datetime) -> Snapshot:
        samples = self.fetch(at)
        now_s = at.timestamp()
        values: dict[str, float | None] = {}
        ages: dict[str, float] = {}
        missing: dict[str, tuple[str, str]] = {}
        for name in self.queries:
            sample = samples.get(name)
            if sample is None:
                missing[name] = ("absent", "no sample within Prometheus' lookback window")
                continue
            age = max(0.0, now_s - sample.timestamp)
            ages[name] = round(age, 3)
            if age > self.max_age_s:
                missing[name] = ("stale", f"{age:.0f} s old > max_age_s {self.max_age_s:g}")
            elif sample.value is None:
                missing[name] = ("nan", "the exporter reports NaN or Inf")
            else:
                values[name] = sample.value
        self._report(missing)
        v = values.get
        return Snapshot(
            at=at,
            grid_w=v("grid_w"),
            grid_l1_w=v("grid_l1_w"),
            grid_l2_w=v("grid_l2_w"),
            grid_l3_w=v("grid_l3_w"),
            soc_pct=v("soc_pct"),
            pv_w=v("pv_w"),
            battery_w=v("battery_w"),
            compressor_w=v("compressor_w"),
            outdoor_c=v("outdoor_c"),
            dhw_c=v("dhw_c"),
            ages_s=ages,
        )

    def _report(self, missing: dict[str, tuple[str, str]]) -> None:
        """Log a measurement going missing (and why) or coming back once, not every tick."""
        for name, (kind, text) in missing.items():
            if self._missing.get(name) != kind:
                log.warning("measurement %s is missing: %s", name, text)
        for name in self._missing.keys() - missing.keys():
            log.info("measurement %s is back", name)
        self._missing = {name: kind for name, (kind, _) in missing.items()}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
