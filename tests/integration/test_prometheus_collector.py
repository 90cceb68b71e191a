"""The Prometheus collector against a real Prometheus scraping the house's metric names."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from emsctl.adapters.base import DeviceUnreachable
from emsctl.adapters.prometheus import AmbiguousMeasurement, PrometheusCollector
from emsctl.config import MetricQuery, PrometheusConfig
from tests.support.http_stub import SilentServer, closed_port
from tests.support.prometheus_server import (
    HOUSE_METRICS,
    PrometheusServer,
    PublishingExporter,
)

pytestmark = pytest.mark.real


def _at(unix_s: float | None = None) -> datetime:
    return datetime.fromtimestamp(time.time() if unix_s is None else unix_s, UTC)


def _phases() -> dict[str, MetricQuery]:
    return {
        f"grid_l{i}_w": MetricQuery(metric="pcc_phase_power_value", labels={"phase": f"L{i}"})
        for i in (1, 2, 3)
    }


@pytest.fixture
def collector(prometheus: PrometheusServer) -> PrometheusCollector:
    c = PrometheusCollector(PrometheusConfig(url=prometheus.url, timeout_s=5), max_age_s=300)
    yield c
    c.close()


def test_house_values_arrive_with_their_signs_and_fresh_ages(
    house_exporter: PublishingExporter, collector: PrometheusCollector
) -> None:
    house_exporter.set("pcc_transfer_power_exchange_value", -2345.5)  # export
    house_exporter.set("ess_power_value", -640.0)  # discharging
    house_exporter.set("heating_sensors_temperature_outside_value", -3.5)
    house_exporter.publish()

    snap = collector.collect(_at())

    assert snap.grid_w == -2345.5
    assert snap.battery_w == -640.0
    assert snap.outdoor_c == -3.5
    assert snap.soc_pct == HOUSE_METRICS["ess_stateOfCharge_value"]
    assert snap.pv_w == HOUSE_METRICS["photovoltaic_production_current_value"]
    assert snap.compressor_w == HOUSE_METRICS["heating_compressors_0_power_value"]
    assert snap.dhw_c == HOUSE_METRICS["heating_dhw_sensors_temperature_hotWaterStorage_value"]
    assert snap.grid_l1_w is None and "grid_l1_w" not in snap.ages_s
    for name in ("grid_w", "soc_pct", "pv_w", "battery_w", "compressor_w", "outdoor_c"):
        assert 0 <= snap.ages_s[name] < 5, (name, snap.ages_s)


def test_scale_minus_one_normalises_battery_to_positive_charging(
    prometheus: PrometheusServer, house_exporter: PublishingExporter
) -> None:
    # This inverter reports charging as negative.
    house_exporter.set("ess_power_value", -1800.0)
    house_exporter.publish()
    cfg = PrometheusConfig(
        url=prometheus.url, battery_w=MetricQuery(metric="ess_power_value", scale=-1)
    )
    with PrometheusCollector(cfg) as c:
        assert c.collect(_at()).battery_w == 1800.0


def test_per_phase_values_arrive_by_label_matchers(
    prometheus: PrometheusServer, house_exporter: PublishingExporter
) -> None:
    for phase, watts in (("L1", -900.0), ("L2", 120.0), ("L3", -35.25)):
        house_exporter.set("pcc_phase_power_value", watts, {"phase": phase})
    house_exporter.publish()
    cfg = PrometheusConfig(url=prometheus.url, **_phases())

    with PrometheusCollector(cfg) as c:
        snap = c.collect(_at())

    assert (snap.grid_l1_w, snap.grid_l2_w, snap.grid_l3_w) == (-900.0, 120.0, -35.25)
    assert snap.phase_w("L1") == -900.0
    assert all(snap.ages_s[f"grid_l{i}_w"] < 5 for i in (1, 2, 3))


def test_series_no_longer_scraped_becomes_absent_not_zero(
    house_exporter: PublishingExporter, collector: PrometheusCollector
) -> None:
    house_exporter.publish()
    assert collector.collect(_at()).soc_pct == HOUSE_METRICS["ess_stateOfCharge_value"]

    house_exporter.remove("ess_stateOfCharge_value")
    scraped_at = house_exporter.publish()
    snap = collector.collect(_at(max(time.time(), scraped_at)))

    # Prometheus wrote a staleness marker at that scrape, within its 5-minute lookback.
    assert snap.soc_pct is None
    assert "soc_pct" not in snap.ages_s
    assert snap.grid_w == HOUSE_METRICS["pcc_transfer_power_exchange_value"]


def _backdated(
    exporter: PublishingExporter, metric: str, value: float, age_s: float
) -> tuple[MetricQuery, float]:
    """A new series (own name, unique label) whose one sample is `age_s` old.

    Prometheus rejects back-dated samples on a series that already has newer ones, and a
    series with explicit timestamps gets no staleness marker, so it must not share a name
    with the house's series that other tests read."""
    labels = {"case": uuid.uuid4().hex[:12]}
    sampled = round(time.time() - age_s, 3)
    exporter.set(metric, value, labels, timestamp_s=sampled)
    exporter.publish()
    sel = f'{metric}{{case="{labels["case"]}"}}'
    # The sample is in the TSDB (else the tests below would pass for the wrong reason).
    stored = exporter.server.query(f"timestamp(last_over_time({sel}[15m]))")
    assert stored, f"Prometheus did not ingest {sel}"
    return MetricQuery(metric=metric, labels=labels), sampled


def test_sample_older_than_max_age_is_absent_but_keeps_its_real_age(
    prometheus: PrometheusServer, house_exporter: PublishingExporter
) -> None:
    # An exporter that forwards a reading fetched 200 s ago stamps it with that time;
    # Prometheus still returns it as if it were current (the timestamp trap).
    query, sampled = _backdated(house_exporter, "ems_test_outdoor_value", 4.0, age_s=200)
    cfg = PrometheusConfig(url=prometheus.url, outdoor_c=query)
    at = _at()

    with PrometheusCollector(cfg, max_age_s=120) as strict:
        snap = strict.collect(at)
    assert snap.outdoor_c is None
    assert snap.ages_s["outdoor_c"] == pytest.approx(at.timestamp() - sampled, abs=0.01)

    with PrometheusCollector(cfg, max_age_s=300) as lenient:
        snap = lenient.collect(at)
    assert snap.outdoor_c == 4.0
    assert snap.ages_s["outdoor_c"] == pytest.approx(at.timestamp() - sampled, abs=0.01)


def test_sample_beyond_prometheus_lookback_is_absent(
    prometheus: PrometheusServer, house_exporter: PublishingExporter
) -> None:
    query, _ = _backdated(house_exporter, "ems_test_compressor_value", 1500.0, 400)
    cfg = PrometheusConfig(url=prometheus.url, compressor_w=query)

    with PrometheusCollector(cfg, max_age_s=3600) as c:
        snap = c.collect(_at())

    assert snap.compressor_w is None
    assert "compressor_w" not in snap.ages_s


def test_nan_sample_is_absent(
    house_exporter: PublishingExporter, collector: PrometheusCollector
) -> None:
    house_exporter.set("photovoltaic_production_current_value", math.nan)
    house_exporter.publish()

    snap = collector.collect(_at())

    assert snap.pv_w is None
    assert snap.ages_s["pv_w"] < 5
    assert snap.grid_w is not None


def test_query_evaluates_at_the_tick_time(
    house_exporter: PublishingExporter, collector: PrometheusCollector
) -> None:
    house_exporter.set("pcc_transfer_power_exchange_value", -1500.0)
    first = house_exporter.publish()
    house_exporter.set("pcc_transfer_power_exchange_value", 800.0)
    second = house_exporter.publish()
    assert second > first

    assert collector.collect(_at(first + 0.1)).grid_w == -1500.0
    assert collector.collect(_at(max(second, time.time()))).grid_w == 800.0


class _CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)


def test_one_http_request_per_collect(
    prometheus: PrometheusServer, house_exporter: PublishingExporter
) -> None:
    house_exporter.publish()
    transport = _CountingTransport()
    cfg = PrometheusConfig(url=prometheus.url, **_phases())
    with PrometheusCollector(cfg, transport=transport) as c:
        for _ in range(3):
            c.collect(_at())

    assert len(transport.requests) == 3
    assert {r.url.path for r in transport.requests} == {"/api/v1/query"}


def test_loose_label_matchers_are_reported_naming_the_measurement(
    prometheus: PrometheusServer, house_exporter: PublishingExporter
) -> None:
    house_exporter.set("pcc_phase_power_value", 10.0, {"phase": "L1"})
    house_exporter.set("pcc_phase_power_value", 20.0, {"phase": "L2"})
    house_exporter.publish()
    cfg = PrometheusConfig(
        url=prometheus.url, grid_l1_w=MetricQuery(metric="pcc_phase_power_value")
    )

    with PrometheusCollector(cfg) as c, pytest.raises(AmbiguousMeasurement) as err:
        c.collect(_at())

    assert err.value.measurement == "grid_l1_w"
    assert "prometheus.grid_l1_w.labels" in str(err.value)
    assert 'phase="L1"' in str(err.value) and 'phase="L2"' in str(err.value)


def test_prometheus_down_gives_unreachable_within_the_timeout(
    prometheus_instance: tuple[PrometheusServer, object],
) -> None:
    server, _ = prometheus_instance
    own = PrometheusServer(server.binary, [])
    own.start()
    url = own.url
    own.close()  # the server is gone; its port refuses connections
    with PrometheusCollector(PrometheusConfig(url=url, timeout_s=2)) as c:
        t0 = time.monotonic()
        with pytest.raises(DeviceUnreachable) as err:
            c.collect(_at())
        assert time.monotonic() - t0 < 2
    assert "prometheus" in str(err.value)


def test_hung_prometheus_gives_unreachable_within_the_timeout() -> None:
    with (
        SilentServer() as hung,
        PrometheusCollector(PrometheusConfig(url=hung.url, timeout_s=0.5)) as c,
    ):
        t0 = time.monotonic()
        with pytest.raises(DeviceUnreachable) as err:
            c.collect(_at())
        elapsed = time.monotonic() - t0
    assert 0.4 < elapsed < 0.5 + 1.0
    assert "within 0.5 s" in str(err.value)


def test_nothing_listening_gives_unreachable_at_once() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with PrometheusCollector(PrometheusConfig(url=url, timeout_s=3)) as c:
        t0 = time.monotonic()
        with pytest.raises(DeviceUnreachable):
            c.collect(_at())
        assert time.monotonic() - t0 < 1
