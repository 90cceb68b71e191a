"""The collector's HTTP behaviour against loopback stubs: the request it sends, staleness at
exactly max_age_s, and what a proxy or a failing Prometheus turns into."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from emsctl.adapters.prometheus import (
    PrometheusCollector,
    PrometheusHTTPError,
    PrometheusQueryError,
    UnexpectedResult,
)
from emsctl.config import PrometheusConfig
from tests.conftest import FIXTURES
from tests.support.http_stub import Canned, StubServer

AT = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def _answer(ages: dict[str, float], values: dict[str, str] | None = None) -> bytes:
    result = []
    for name, age in ages.items():
        value = (values or {}).get(name, "100")
        result.append({"metric": {"ems_m": name}, "value": [AT.timestamp(), value]})
        ts = f"{AT.timestamp() - age:.3f}"
        result.append({"metric": {"ems_m": f"{name}@ts"}, "value": [AT.timestamp(), ts]})
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    ).encode()


def test_request_is_one_post_at_the_tick_time_with_a_server_timeout() -> None:
    with StubServer(lambda r: Canned(body=_answer({}))) as stub:
        with PrometheusCollector(PrometheusConfig(url=stub.url, timeout_s=5)) as c:
            c.collect(AT)
        (req,) = stub.requests
    assert (req.method, req.path) == ("POST", "/api/v1/query")
    assert req.form["time"] == [f"{AT.timestamp():.3f}"]
    assert req.form["timeout"] == ["4000ms"]
    assert "label_replace(timestamp(pcc_transfer_power_exchange_value)" in req.form["query"][0]


def test_url_path_prefix_is_kept() -> None:
    with StubServer(lambda r: Canned(body=_answer({}))) as stub:
        with PrometheusCollector(PrometheusConfig(url=stub.url + "/prom/")) as c:
            c.collect(AT)
        assert stub.requests[0].path == "/prom/api/v1/query"


def test_value_is_kept_up_to_max_age_and_dropped_beyond(caplog: pytest.LogCaptureFixture) -> None:
    ages = {"grid_w": 300.0, "soc_pct": 300.5, "pv_w": 0.0}
    with (
        StubServer(lambda r: Canned(body=_answer(ages))) as stub,
        PrometheusCollector(PrometheusConfig(url=stub.url), max_age_s=300) as c,
        caplog.at_level(logging.WARNING),
    ):
        snap = c.collect(AT)
        c.collect(AT)  # the same problem is not logged again
    assert snap.grid_w == 100.0
    assert snap.soc_pct is None
    assert snap.pv_w == 100.0
    assert snap.ages_s == {"grid_w": 300.0, "soc_pct": 300.5, "pv_w": 0.0}
    # missing entirely: not configured in the answer, no age
    assert snap.battery_w is None and "battery_w" not in snap.ages_s
    stale_lines = [r.message for r in caplog.records if "soc_pct" in r.message]
    assert stale_lines == ["measurement soc_pct is missing: 300 s old > max_age_s 300"]


def test_collect_returns_a_snapshot_at_the_tick() -> None:
    with (
        StubServer(lambda r: Canned(body=_answer({"grid_w": 1}))) as stub,
        PrometheusCollector(PrometheusConfig(url=stub.url)) as c,
    ):
        assert c.collect(AT).at == AT


@pytest.mark.parametrize(
    ("canned", "error", "text"),
    [
        (Canned(502, b"<html>Bad Gateway</html>", "text/html"), PrometheusHTTPError, "HTTP 502"),
        (Canned(401, b"Unauthorized", "text/plain"), PrometheusHTTPError, "HTTP 401"),
        (Canned(200, b'{"status":"succ', "application/json"), UnexpectedResult, "envelope"),
        (
            Canned(
                503,
                (FIXTURES / "prometheus/error_503_timeout_response.DOC_SHAPE.json").read_bytes(),
            ),
            PrometheusQueryError,
            "timeout",
        ),
    ],
)
def test_failures_become_typed_errors(canned: Canned, error: type[Exception], text: str) -> None:
    with (
        StubServer(lambda r: canned) as stub,
        PrometheusCollector(PrometheusConfig(url=stub.url)) as c,
        pytest.raises(error) as err,
    ):
        c.collect(AT)
    assert text in str(err.value)
    assert str(err.value).startswith("prometheus: ")
