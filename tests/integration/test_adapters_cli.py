"""`emsctl snapshot` and `emsctl device` against a real Prometheus and the Shelly emulators."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from emsctl import runlock
from emsctl.cli import main
from tests.support.http_stub import closed_port
from tests.support.prometheus_server import PrometheusServer, PublishingExporter
from tests.support.shelly_emulator import ShellyGen1Emulator, ShellyGen2Emulator
from tests.support.shelly_fixtures import Gen1Factory, Gen2Factory


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("EMS_SHELLY_PASSWORD", "EMS_SHELLY_WB_A_PASSWORD", "EMS_SHELLY_WB_B_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "no-credentials"
    empty.write_text("")
    empty.chmod(0o600)
    monkeypatch.setenv("EMS_CREDENTIALS_FILE", str(empty))


@pytest.fixture
def house(
    gen1_emulator: Gen1Factory, gen2_emulator: Gen2Factory
) -> tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator]:
    sg = gen1_emulator()
    wb_a = gen2_emulator(password="wallbox", power_w=1930.0)
    wb_b = gen2_emulator(model="SNSW-001X16EU", device_id="shellyplus1-112233445566")
    return sg, wb_a, wb_b


def _config(
    tmp_path: Path,
    prometheus_url: str,
    sg: ShellyGen1Emulator,
    wb_a: ShellyGen2Emulator,
    wb_b: ShellyGen2Emulator,
) -> str:
    doc: dict[str, Any] = {
        "loads": {
            "sg_ready": {"device": {"type": "shelly_gen1", "host": sg.host, "timeout_s": 2}},
            "wb_a": {"device": {"type": "shelly_gen2", "host": wb_a.host, "timeout_s": 2}},
            "wb_b": {"device": {"type": "shelly_gen2", "host": wb_b.host, "timeout_s": 2}},
        },
        "prometheus": {
            "url": prometheus_url,
            "timeout_s": 2,
            "grid_l1_w": {"metric": "pcc_phase_power_value", "labels": {"phase": "L1"}},
        },
        "store": {"path": str(tmp_path / "ems.db")},
    }
    path = tmp_path / "ems.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.real
def test_snapshot_json_shows_measurements_with_ages_and_each_relay(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    prometheus: PrometheusServer,
    house_exporter: PublishingExporter,
    house: tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator],
) -> None:
    sg, wb_a, wb_b = house
    house_exporter.set("pcc_transfer_power_exchange_value", -2100.0)
    house_exporter.set("pcc_phase_power_value", -700.0, {"phase": "L1"})
    house_exporter.remove("heating_sensors_temperature_outside_value")
    house_exporter.publish()
    wb_a.press_button(True)
    monkeypatch.setenv("EMS_SHELLY_WB_A_PASSWORD", "wallbox")
    config = _config(tmp_path, prometheus.url, sg, wb_a, wb_b)

    rc, out, _ = _run(capsys, "snapshot", "--config", config, "--json")

    assert rc == 0
    doc = json.loads(out)
    m = doc["measurements"]
    assert set(m) >= {
        "grid_w",
        "grid_l1_w",
        "grid_l2_w",
        "grid_l3_w",
        "soc_pct",
        "pv_w",
        "battery_w",
        "compressor_w",
        "outdoor_c",
    }
    assert m["grid_w"]["value"] == -2100.0 and 0 <= m["grid_w"]["age_s"] < 5
    assert m["grid_l1_w"]["value"] == -700.0
    assert m["grid_l2_w"] == {"value": None, "age_s": None}  # not configured
    assert m["outdoor_c"] == {"value": None, "age_s": None}  # no longer scraped
    assert doc["loads"] == {
        "sg_ready": {"relay_on": False, "power_w": None, "source": "init", "error": None},
        "wb_a": {"relay_on": True, "power_w": 1930.0, "source": "button", "error": None},
        "wb_b": {"relay_on": False, "power_w": None, "source": "init", "error": None},
    }
    assert doc["prometheus_error"] is None


def test_snapshot_reports_failures_and_still_reads_the_rest(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    house: tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator],
) -> None:
    sg, wb_a, wb_b = house
    config = _config(tmp_path, f"http://127.0.0.1:{closed_port()}", sg, wb_a, wb_b)

    rc, out, _ = _run(capsys, "snapshot", "--config", config, "--json")

    assert rc == 1
    doc = json.loads(out)
    assert "prometheus: cannot reach" in doc["prometheus_error"]
    assert all(v == {"value": None, "age_s": None} for v in doc["measurements"].values())
    # no password set for wb_a: a clear error for it, the others are read
    assert "EMS_SHELLY_WB_A_PASSWORD" in doc["loads"]["wb_a"]["error"]
    assert doc["loads"]["sg_ready"]["relay_on"] is False
    assert doc["loads"]["wb_b"]["error"] is None


def test_snapshot_text_is_readable_for_an_owner(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    house: tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator],
) -> None:
    sg, wb_a, wb_b = house
    monkeypatch.setenv("EMS_SHELLY_PASSWORD", "wallbox")
    wb_a.press_button(True)
    config = _config(tmp_path, f"http://127.0.0.1:{closed_port()}", sg, wb_a, wb_b)

    rc, out, _ = _run(capsys, "snapshot", "--config", config)

    assert rc == 1  # Prometheus is down
    assert "ERROR prometheus: cannot reach" in out
    assert "grid_l2_w" in out and "not configured" in out
    assert f"shelly_gen2 {wb_a.host}" in out and "relay on" in out and "1 930 W" in out
    assert "no meter" in out  # wb_b, a Plus 1
    assert "dhw" in out and "not a Shelly" in out


def test_device_status_and_info(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    house: tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator],
) -> None:
    sg, wb_a, wb_b = house
    monkeypatch.setenv("EMS_SHELLY_WB_A_PASSWORD", "wallbox")
    config = _config(tmp_path, "http://127.0.0.1:9", sg, wb_a, wb_b)

    rc, out, _ = _run(capsys, "device", "wb_a", "status", "--config", config, "--json")
    assert rc == 0
    assert json.loads(out) == {
        "load": "wb_a",
        "relay_on": False,
        "power_w": 0.0,
        "source": "init",
        "error": None,
    }

    rc, out, _ = _run(capsys, "device", "wb_a", "info", "--config", config, "--json")
    info = json.loads(out)
    assert rc == 0
    assert (info["gen"], info["model"], info["auth_required"]) == (2, "SNSW-001P16EU", True)
    assert info["password"] == "EMS_SHELLY_WB_A_PASSWORD from environment"
    assert "wallbox" not in out

    rc, out, _ = _run(capsys, "device", "sg_ready", "info", "--config", config)
    assert rc == 0 and "SHSW-1" in out


def test_device_on_and_off_when_the_daemon_is_not_running(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    house: tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator],
) -> None:
    sg, wb_a, wb_b = house
    config = _config(tmp_path, "http://127.0.0.1:9", sg, wb_a, wb_b)

    rc, out, _ = _run(capsys, "device", "wb_b", "on", "--config", config, "--timer", "900")
    assert rc == 0 and "relay on" in out
    assert wb_b.output is True and wb_b.timer_remaining_s == 900

    rc, out, _ = _run(capsys, "device", "sg_ready", "on", "--config", config)
    assert rc == 0 and sg.output is True and sg.timer_remaining_s is None  # no timer by default

    rc, out, _ = _run(capsys, "device", "sg_ready", "off", "--config", config)
    assert rc == 0 and "relay off" in out and sg.output is False


def test_device_switching_is_refused_while_the_daemon_holds_its_lock(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    house: tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator],
) -> None:
    sg, wb_a, wb_b = house
    config = _config(tmp_path, "http://127.0.0.1:9", sg, wb_a, wb_b)

    with runlock.acquire(runlock.lock_path(tmp_path / "ems.db")):
        rc, _, err = _run(capsys, "device", "wb_b", "on", "--config", config)
        assert rc == 2
        assert "refusing to switch wb_b on" in err and "--force" in err
        assert wb_b.output is False and wb_b.requests == []

        rc, _, _ = _run(capsys, "device", "wb_b", "status", "--config", config)
        assert rc == 0  # reading is always allowed

        rc, _, _ = _run(capsys, "device", "wb_b", "on", "--force", "--config", config)
        assert rc == 0 and wb_b.output is True


def test_device_switching_is_refused_when_the_lock_state_is_unknown(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    house: tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator],
) -> None:
    sg, wb_a, wb_b = house
    config = _config(tmp_path, "http://127.0.0.1:9", sg, wb_a, wb_b)
    doc = yaml.safe_load(Path(config).read_text())
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    doc["store"]["path"] = str(blocker / "ems.db")
    Path(config).write_text(yaml.safe_dump(doc))

    rc, _, err = _run(capsys, "device", "sg_ready", "off", "--config", config)

    assert rc == 2 and "cannot tell whether the EMS daemon is running" in err
    assert sg.requests == []


def test_device_errors_are_typed_and_quick(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    house: tuple[ShellyGen1Emulator, ShellyGen2Emulator, ShellyGen2Emulator],
) -> None:
    sg, wb_a, wb_b = house
    config = _config(tmp_path, "http://127.0.0.1:9", sg, wb_a, wb_b)
    sg.close()  # the device is gone

    t0 = time.monotonic()
    rc, _, err = _run(capsys, "device", "sg_ready", "status", "--config", config)
    assert time.monotonic() - t0 < 2
    assert rc == 1 and "sg_ready (127.0.0.1:" in err and "connection failed" in err

    rc, _, err = _run(capsys, "device", "wb_a", "on", "--config", config)
    assert rc == 1 and "EMS_SHELLY_WB_A_PASSWORD" in err

    rc, _, err = _run(capsys, "device", "dhw", "status", "--config", config)
    assert rc == 2 and "Shelly relays only" in err
