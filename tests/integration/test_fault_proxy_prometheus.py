"""The Prometheus collector against a real Prometheus through the fault proxy: a Prometheus that
trickles, hangs, answers garbage or drops the answer gives a clean typed error within
`prometheus.timeout_s` (plus 1 s), and the next query works again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from emsctl.adapters.base import AdapterError, DeviceUnreachable
from emsctl.adapters.prometheus import PrometheusCollector, UnexpectedResult
from emsctl.config import PrometheusConfig
from tests.support.fault_proxy import FaultProxy, Mode
from tests.support.prometheus_server import HOUSE_METRICS, PrometheusServer, PublishingExporter

pytestmark = pytest.mark.real

TIMEOUT_S = 2.0
SLACK_S = 1.0
#: Without a total deadline a trickled query would last until the proxy cuts it after this.
CUT_S = 15.0


@pytest.fixture
def proxied(
    prometheus: PrometheusServer, house_exporter: PublishingExporter
) -> Iterator[tuple[FaultProxy, PrometheusCollector]]:
    house_exporter.publish()
    with (
        FaultProxy(prometheus.url, connection_lifetime_s=CUT_S) as proxy,
        PrometheusCollector(PrometheusConfig(url=proxy.url, timeout_s=TIMEOUT_S)) as collector,
    ):
        yield proxy, collector


def _now() -> datetime:
    return datetime.now(UTC)


def _timed(collector: PrometheusCollector) -> tuple[AdapterError, float]:
    t0 = time.monotonic()
    with pytest.raises(AdapterError) as err:
        collector.collect(_now())
    return err.value, time.monotonic() - t0


@pytest.mark.parametrize("mode", [Mode.TRICKLE, Mode.HANG])
def test_a_slow_or_silent_prometheus_is_unreachable_within_the_timeout(
    proxied: tuple[FaultProxy, PrometheusCollector], mode: Mode
) -> None:
    proxy, collector = proxied
    assert collector.collect(_now()).soc_pct == HOUSE_METRICS["ess_stateOfCharge_value"]
    proxy.set_mode(mode, rate=1)
    error, took = _timed(collector)
    assert isinstance(error, DeviceUnreachable), error
    assert str(error).startswith("prometheus: no answer from ")
    assert f"within {TIMEOUT_S:g} s" in str(error)
    assert took < TIMEOUT_S + SLACK_S, f"{mode}: {took:.1f} s"
    assert proxy.accepted[mode] == 1
    proxy.set_mode(Mode.PASS)
    assert collector.collect(_now()).soc_pct == HOUSE_METRICS["ess_stateOfCharge_value"]


def test_a_trickle_fast_enough_to_finish_in_time_is_fine(
    proxied: tuple[FaultProxy, PrometheusCollector],
) -> None:
    """The deadline is on the whole query, not a cap on bandwidth: a slow link that delivers
    the answer within timeout_s is no error."""
    proxy, collector = proxied
    proxy.set_mode(Mode.TRICKLE, rate=20000)
    t0 = time.monotonic()
    assert collector.collect(_now()).soc_pct == HOUSE_METRICS["ess_stateOfCharge_value"]
    assert time.monotonic() - t0 < TIMEOUT_S


def test_garbage_is_a_bad_response(proxied: tuple[FaultProxy, PrometheusCollector]) -> None:
    proxy, collector = proxied
    proxy.set_mode(Mode.GARBAGE)
    error, took = _timed(collector)
    assert isinstance(error, UnexpectedResult), error
    assert "not a Prometheus JSON envelope" in str(error)
    assert took < TIMEOUT_S + SLACK_S


def test_an_answer_cut_off_is_unreachable(proxied: tuple[FaultProxy, PrometheusCollector]) -> None:
    proxy, collector = proxied
    proxy.set_mode(Mode.CLOSE, cut_after=20)
    error, took = _timed(collector)
    assert isinstance(error, DeviceUnreachable), error
    assert str(error).startswith("prometheus: cannot reach ")
    assert took < TIMEOUT_S + SLACK_S
