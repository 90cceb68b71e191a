"""Secrets never reach a log line, a page or check-config's output."""

from __future__ import annotations

import io
import logging

from emsctl.redact import RedactingFilter, install, redact, redact_mapping, redact_url


def test_user_information_in_urls_is_masked() -> None:
    assert redact_url("GET http://admin:s3cret@10.0.0.5:9090/api/v1/query failed") == (
        "GET http://***@10.0.0.5:9090/api/v1/query failed"
    )
    assert redact_url("https://token@host/x and http://plain/host") == (
        "https://***@host/x and http://plain/host"
    )
    assert redact_url("mail me at someone@example.org") == "mail me at someone@example.org"


def test_known_secret_values_are_masked_but_short_ones_are_not_guessed() -> None:
    assert redact("key abcd1234 used", ["abcd1234", "", "ab"]) == "key *** used"


def test_config_mappings_lose_their_secret_values() -> None:
    data = {
        "webui": {"password_hash": "scrypt:32768:8:1$salt$hash", "bind": "127.0.0.1"},
        "forecast": {"api_key": "XYZ123", "planes": [{"kwp": 5.0}]},
        "prometheus": {"url": "http://u:p@prom:9090"},
        "viessmann": {"client_id": "", "password": None},
    }
    out = redact_mapping(data)
    assert out == {
        "webui": {"password_hash": "***", "bind": "127.0.0.1"},
        "forecast": {"api_key": "***", "planes": [{"kwp": 5.0}]},
        "prometheus": {"url": "http://***@prom:9090"},
        "viessmann": {"client_id": "", "password": None},
    }


def test_log_records_and_their_tracebacks_are_masked() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("test_redact")
    log.addHandler(handler)
    log.propagate = False
    install([handler])
    install([handler])  # once is enough
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    try:
        log.warning("collector: %s", "http://ems:hunter22@prom:9090 refused")
        try:
            raise ConnectionError("http://ems:hunter22@prom:9090: connection refused")
        except ConnectionError:
            log.exception("tick failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "hunter22" not in text
    assert text.count("http://***@prom:9090") == 3
