"""A real Prometheus for tests: the Debian `prometheus` binary on a free loopback port with a
temporary data dir, scraping a tiny exporter the test serves (values settable per test).

Reusable by any test that needs the house's metrics in a real Prometheus:

    def test_x(prometheus, house_exporter):
        house_exporter.set("pcc_transfer_power_exchange_value", -1500)
        house_exporter.publish()          # waits until Prometheus has scraped it
        url = prometheus.url

The fixtures themselves live in tests/integration/conftest.py.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tests.conftest import need_binary

#: Gauge the exporter bumps on every publish(); Prometheus having it means it has the rest.
GENERATION_METRIC = "ems_test_exporter_generation"
SCRAPE_INTERVAL_S = 1.0
LOOPBACK = "127.0.0.1"

#: The house's metric names (docs/decision-logic.md, "Measurements and signs"), plausible values.
HOUSE_METRICS: dict[str, float] = {
    "pcc_transfer_power_exchange_value": -1500.0,  # exporting 1.5 kW
    "ess_stateOfCharge_value": 72.0,
    "photovoltaic_production_current_value": 5200.0,
    "ess_power_value": 1800.0,  # charging
    "heating_compressors_0_power_value": 1950.0,
    "heating_sensors_temperature_outside_value": 7.5,
    "heating_dhw_sensors_temperature_hotWaterStorage_value": 48.5,
}


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class _Series:
    value: float
    timestamp_s: float | None  # None: Prometheus stamps the scrape time


class HouseExporter:
    """A /metrics endpoint on 127.0.0.1 whose series a test sets and removes.

    Series with an explicit `timestamp_s` are exposed with that sample time (like an exporter
    that forwards readings it fetched earlier); others get the scrape time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], _Series] = {}
        self._generation = 0
        self.scrapes = 0
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_ExporterCollector(self))
        app = make_wsgi_app(registry)

        def counting_app(environ: dict[str, Any], start_response: Any) -> Any:
            with self._lock:
                self.scrapes += 1
            return app(environ, start_response)

        self._server: WSGIServer = make_server(
            LOOPBACK, 0, counting_app, handler_class=_QuietHandler
        )
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="house-exporter",
            daemon=True,
        )
        self._thread.start()

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def set(
        self,
        metric: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        *,
        timestamp_s: float | None = None,
    ) -> None:
        key = (metric, tuple(sorted((labels or {}).items())))
        with self._lock:
            self._series[key] = _Series(value, timestamp_s)

    def set_many(self, values: Mapping[str, float]) -> None:
        for metric, value in values.items():
            self.set(metric, value)

    def remove(self, metric: str, labels: Mapping[str, str] | None = None) -> None:
        key = (metric, tuple(sorted((labels or {}).items())))
        with self._lock:
            self._series.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._series.clear()

    def bump(self) -> int:
        """Mark the current values as a new generation; returns it."""
        with self._lock:
            self._generation += 1
            return self._generation

    def samples(self) -> list[tuple[str, dict[str, str], _Series]]:
        with self._lock:
            return [(m, dict(lbl), s) for (m, lbl), s in sorted(self._series.items())]

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ExporterCollector(Collector):
    def __init__(self, exporter: HouseExporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        for metric, labels, series in self._exporter.samples():
            family = families.setdefault(metric, GaugeMetricFamily(metric, f"test {metric}"))
            family.add_sample(metric, labels, series.value, timestamp=series.timestamp_s)
        yield from families.values()
        gen = GaugeMetricFamily(GENERATION_METRIC, "publish() counter of the test exporter")
        gen.add_metric([], self._exporter.generation)
        yield gen


class PrometheusServer:
    """The real `prometheus` binary, scraping given targets every second."""

    def __init__(self, binary: str, targets: list[str], *, lookback_s: int | None = None) -> None:
        self.binary = binary
        self.targets = targets
        self.lookback_s = lookback_s
        self._dir = Path(tempfile.mkdtemp(prefix="ems-prometheus-"))
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self._dir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _write_config(self) -> Path:
        cfg = self._dir / "prometheus.yml"
        targets = ", ".join(f'"{t}"' for t in self.targets)
        cfg.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL_S:g}s\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL_S:g}s\n"
            "  evaluation_interval: 15s\n"
            "scrape_configs:\n"
            "  - job_name: house\n"
            "    honor_timestamps: true\n"
            "    static_configs:\n"
            f"      - targets: [{targets}]\n",
            encoding="utf-8",
        )
        return cfg

    def start(self, timeout_s: float = 20.0) -> None:
        cfg = self._write_config()
        for _attempt in range(3):
            self.port = free_port()
            args = [
                self.binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ]
            if self.lookback_s is not None:
                args.append(f"--query.lookback-delta={self.lookback_s}s")
            with self._log.open("ab") as logf:
                self._proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)
            if self._wait_ready(timeout_s):
                return
            self.stop()
        raise RuntimeError(f"prometheus did not start; log:\n{self.log_text()[-3000:]}")

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return True
            time.sleep(0.05)
        return False

    def log_text(self) -> str:
        try:
            return self._log.read_text(errors="replace")
        except OSError:
            return ""

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        r = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=5.0)
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()["data"]["result"]
        return result

    def wait_for_generation(self, generation: int, timeout_s: float = 15.0) -> float:
        """Block until a scrape carrying `generation` is queryable; returns its sample time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = self.query(
                f"timestamp({GENERATION_METRIC}) and {GENERATION_METRIC} >= {generation}"
            )
            if result:
                return float(result[0]["value"][1])
            time.sleep(0.1)
        raise TimeoutError(
            f"Prometheus did not scrape generation {generation} within {timeout_s} s; "
            f"log:\n{self.log_text()[-2000:]}"
        )

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


class PublishingExporter:
    """What a test holds: the exporter plus the Prometheus that scrapes it."""

    def __init__(self, exporter: HouseExporter, server: PrometheusServer) -> None:
        self.exporter = exporter
        self.server = server

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)

    def publish(self) -> float:
        """Make the values set so far visible in Prometheus; returns that scrape's time."""
        return self.server.wait_for_generation(self.exporter.bump())


# --------------------------------------------------------------------------- fixtures
# Imported by tests/integration/conftest.py; any test module may use them by name.


@pytest.fixture(scope="session")
def prometheus_instance() -> Iterator[tuple[PrometheusServer, HouseExporter]]:
    """One real Prometheus for the session, scraping one HouseExporter every second."""
    binary = need_binary("prometheus", "/usr/bin/prometheus", hint="apt-get install prometheus")
    exporter = HouseExporter()
    server = PrometheusServer(binary, [exporter.target])
    try:
        server.start()
        yield server, exporter
    finally:
        server.close()
        exporter.close()


@pytest.fixture
def prometheus(prometheus_instance: tuple[PrometheusServer, HouseExporter]) -> PrometheusServer:
    """The session's real Prometheus server (`.url`, `.query()`)."""
    return prometheus_instance[0]


@pytest.fixture
def house_exporter(
    prometheus_instance: tuple[PrometheusServer, HouseExporter],
) -> PublishingExporter:
    """The exporter, reset to HOUSE_METRICS; call `.publish()` after changing values."""
    server, exporter = prometheus_instance
    exporter.clear()
    exporter.set_many(HOUSE_METRICS)
    return PublishingExporter(exporter, server)
