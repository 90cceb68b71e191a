"""Query building and answer parsing of the Prometheus collector (documented shapes)."""

from __future__ import annotations

import json

import pytest

from emsctl.adapters.prometheus import (
    AmbiguousMeasurement,
    PrometheusHTTPError,
    PrometheusQueryError,
    Sample,
    UnexpectedResult,
    build_query,
    configured,
    parse_response,
    selector,
)
from emsctl.config import MetricQuery, PrometheusConfig
from tests.conftest import FIXTURES

PROM = FIXTURES / "prometheus"
GRID = {"grid_w": MetricQuery(metric="pcc_transfer_power_exchange_value")}


def _fixture(name: str) -> bytes:
    return (PROM / name).read_bytes()


def _vector(*items: tuple[dict[str, str], str], at: float = 1700000000.0) -> bytes:
    result = [{"metric": m, "value": [at, v]} for m, v in items]
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    ).encode()


def test_selector_quotes_and_sorts_label_matchers() -> None:
    q = MetricQuery(metric="power_value", labels={"z": 'a"b', "a": "c\\d"})
    assert selector(q) == 'power_value{a="c\\\\d",z="a\\"b"}'
    assert selector(MetricQuery(metric="up")) == "up"


def test_query_asks_value_and_timestamp_for_each_configured_measurement() -> None:
    queries = configured(PrometheusConfig())
    expr = build_query(queries)
    # per-phase ones are not configured by default
    assert "grid_l1_w" not in queries
    for name, q in queries.items():
        assert f'label_replace({q.metric}, "ems_m", "{name}", "", "")' in expr
        assert f'label_replace(timestamp({q.metric}), "ems_m", "{name}@ts", "", "")' in expr
    assert expr.count(" or ") == 2 * len(queries) - 1


def test_value_and_sample_time_are_paired_and_scaled() -> None:
    queries = {
        "grid_w": MetricQuery(metric="g"),
        "battery_w": MetricQuery(metric="b", scale=-1),
    }
    body = _vector(
        ({"__name__": "g", "ems_m": "grid_w", "job": "x"}, "-1500.5"),
        ({"ems_m": "grid_w@ts", "job": "x"}, "1699999880.25"),
        ({"__name__": "b", "ems_m": "battery_w"}, "700"),
        ({"ems_m": "battery_w@ts"}, "1699999990"),
    )
    assert parse_response(200, body, queries) == {
        "grid_w": Sample(value=-1500.5, timestamp=1699999880.25),
        "battery_w": Sample(value=-700.0, timestamp=1699999990.0),
    }


@pytest.mark.parametrize("text", ["NaN", "+Inf", "-Inf"])
def test_non_finite_values_are_absent_values_with_a_timestamp(text: str) -> None:
    body = _vector(({"ems_m": "grid_w"}, text), ({"ems_m": "grid_w@ts"}, "1699999999"))
    assert parse_response(200, body, GRID) == {"grid_w": Sample(None, 1699999999.0)}


def test_empty_vector_means_missing_not_zero() -> None:
    assert (
        parse_response(200, _fixture("instant_query_empty_vector_response.DOC_SHAPE.json"), GRID)
        == {}
    )


def test_scalar_result_is_an_unexpected_shape() -> None:
    with pytest.raises(UnexpectedResult, match=r"instant vector.*scalar"):
        parse_response(200, _fixture("instant_query_scalar_response.DOC_SHAPE.json"), GRID)


def test_series_without_our_tag_is_an_unexpected_shape() -> None:
    body = _fixture("instant_query_vector_response.DOC_EXAMPLE.json")
    with pytest.raises(UnexpectedResult, match="no measurement we asked for"):
        parse_response(200, body, GRID)


@pytest.mark.parametrize(
    ("fixture", "status", "error_type"),
    [
        ("error_400_bad_data_response.DOC_SHAPE.json", 400, "bad_data"),
        ("error_503_timeout_response.DOC_SHAPE.json", 503, "timeout"),
    ],
)
def test_prometheus_error_envelope_is_a_query_error(
    fixture: str, status: int, error_type: str
) -> None:
    with pytest.raises(PrometheusQueryError) as err:
        parse_response(status, _fixture(fixture), GRID)
    assert err.value.error_type == error_type
    assert err.value.status_code == status
    assert json.loads(_fixture(fixture))["error"] in str(err.value)


def test_error_status_inside_http_200_is_still_an_error() -> None:
    body = b'{"status":"error","errorType":"execution","error":"boom"}'
    with pytest.raises(PrometheusQueryError, match="boom"):
        parse_response(200, body, GRID)


def test_proxy_page_with_error_status_is_an_http_error() -> None:
    with pytest.raises(PrometheusHTTPError) as err:
        parse_response(502, b"<html><body>Bad Gateway</body></html>", GRID)
    assert err.value.status_code == 502
    assert "Bad Gateway" in str(err.value)


def test_html_with_status_200_is_an_unexpected_shape() -> None:
    with pytest.raises(UnexpectedResult, match="not a Prometheus JSON envelope"):
        parse_response(200, b"<html>login</html>", GRID)


def test_value_without_its_timestamp_is_an_unexpected_shape() -> None:
    body = _vector(({"ems_m": "grid_w"}, "1"))
    with pytest.raises(UnexpectedResult, match="without its sample timestamp"):
        parse_response(200, body, GRID)


def test_non_numeric_value_is_an_unexpected_shape() -> None:
    body = _vector(({"ems_m": "grid_w"}, "lots"), ({"ems_m": "grid_w@ts"}, "1"))
    with pytest.raises(UnexpectedResult, match="'lots' is not a number"):
        parse_response(200, body, GRID)


def test_two_series_for_one_measurement_name_it_and_their_labels() -> None:
    body = _vector(
        ({"ems_m": "grid_w", "instance": "a"}, "1"),
        ({"ems_m": "grid_w@ts", "instance": "a"}, "1"),
        ({"ems_m": "grid_w", "instance": "b"}, "2"),
        ({"ems_m": "grid_w@ts", "instance": "b"}, "1"),
    )
    with pytest.raises(AmbiguousMeasurement) as err:
        parse_response(200, body, GRID)
    assert err.value.measurement == "grid_w"
    assert '{instance="a"}' in str(err.value) and '{instance="b"}' in str(err.value)
