"""What a newcomer meets from a checkout: check-config's warnings, secrets not printed, a
wrong $EMS_LOG_LEVEL, and history/stats on a demo's database showing its days."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from emsctl.cli import main, resolve_log_level
from emsctl.config import parse_config
from emsctl.config_warnings import config_warnings
from emsctl.model import LoadId, Snapshot, State, Transition
from emsctl.store import Store

ROOT = Path(__file__).resolve().parents[2]


def test_an_empty_file_is_valid_but_warned_about() -> None:
    warnings = config_warnings(parse_config(None), None)
    assert any("the file is empty" in w for w in warnings)
    assert not config_warnings(parse_config({"control": {}}), {"control": {}})


def test_the_cloud_boost_without_a_client_id_is_warned_about() -> None:
    data = {"viessmann": {"enabled": True}, "loads": {"dhw": {"device": {"type": "viessmann_dhw"}}}}
    (w,) = config_warnings(parse_config(data), data)
    assert "viessmann.client_id is empty" in w and "emsctl viessmann login" in w
    data["viessmann"]["client_id"] = "abc123"
    assert config_warnings(parse_config(data), data) == []
    data["viessmann"]["enabled"] = False
    (w,) = config_warnings(parse_config(data), data)
    assert "viessmann.enabled is false" in w


def test_wallboxes_on_surplus_without_exclusion_are_warned_about() -> None:
    data = {
        "control": {"exclusive": []},
        "loads": {wb: {"fallback": {"enabled": False}} for wb in ("wb_a", "wb_b")},
    }
    (w,) = config_warnings(parse_config(data), data)
    assert "control.exclusive is empty" in w


def test_check_config_prints_warnings_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = {
        "prometheus": {"url": "http://ems:hunter22@127.0.0.1:9090"},
        "forecast": {"api_key": "SECRETKEY123"},
        "webui": {"password_hash": "pbkdf2:sha256:1000$salt$0123456789abcdef"},
        "viessmann": {"enabled": True},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "warning: viessmann.client_id is empty" in err
    for secret in ("hunter22", "SECRETKEY123", "0123456789abcdef"):
        assert secret not in out
    assert "http://***@127.0.0.1:9090" in out


def test_a_wrong_log_level_in_the_environment_logs_at_info_with_a_warning() -> None:
    assert resolve_log_level(None, "debug") == ("DEBUG", None)
    assert resolve_log_level(None, None) == ("INFO", None)
    level, warning = resolve_log_level(None, "LOUD")
    assert level == "INFO"
    assert warning is not None and "EMS_LOG_LEVEL='LOUD'" in warning and "WARNING" in warning
    assert resolve_log_level("ERROR", "LOUD") == ("ERROR", None)


def test_the_service_starts_logging_with_a_wrong_level_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMS_LOG_LEVEL", "verbose")
    assert main(["check-config", str(ROOT / "configs" / "ems-config.yaml")]) == 0
    assert "EMS_LOG_LEVEL='verbose' is not a log level" in capsys.readouterr().err
    assert logging.getLogger().level == logging.INFO


def _demo_like_db(path: Path) -> tuple[datetime, datetime]:
    """A database whose days lie in the past, as a demo's simulated May does."""
    t0 = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
    with Store.open(path) as store:
        store.record_transitions(
            [
                Transition(t0, LoadId.WB_A, State.OFF, State.ARMING, "arm", ("surplus",)),
                Transition(
                    t0 + timedelta(minutes=4), LoadId.WB_A, State.ARMING, State.ON, "start", ()
                ),
            ]
        )
        for m in range(0, 120, 10):
            store.record_sample(t0 + timedelta(minutes=m), Snapshot(at=t0), {})
    return t0, t0 + timedelta(minutes=110)


def test_history_on_a_demo_database_shows_the_days_it_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    _demo_like_db(db)
    assert main(["history", "--db", str(db), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert (
        "nothing in the last 2 days; the database holds 2026-05-10 10:00 .. 2026-05-10 11:50" in err
    )
    assert out.count("wb_a") == 2
    # An explicit period is the owner's choice: answered as asked, without the fallback.
    assert main(["history", "--db", str(db), "--since", "1d", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "wb_a" not in out and err == ""


def test_stats_on_a_demo_database_shows_its_day_not_states_running_on_to_today(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    _demo_like_db(db)
    assert main(["stats", "--db", str(db), "--format", "json", "--load", "wb_a"]) == 0
    out, err = capsys.readouterr()
    assert "the database holds" in err
    rows = yaml.safe_load(out)
    assert [r["day"] for r in rows] == ["2026-05-10"]
    assert rows[0]["switch_ons"] == 1
    assert 0 < rows[0]["runtime_s"] <= 2 * 3600
