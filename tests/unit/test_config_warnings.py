"""`check-config`'s warnings: settings that pass validation but will not work at run time.

`config_warnings(cfg, data)` is pure (the parsed config and what the file held); check-config
prints its lines on stderr, starting "warning:", before the effective config, and exits 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emsctl.cli import main
from emsctl.config import parse_config
from emsctl.config_warnings import config_warnings

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "ems-config.yaml"


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    root = logging.getLogger()
    for handler in root.handlers[:]:  # left by an earlier in-process main() on a closed stream
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def warnings_for(data: Any) -> list[str]:
    return config_warnings(parse_config(data), data)


def test_the_shipped_config_warns_only_of_the_client_id_an_owner_must_fill_in() -> None:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    (w,) = warnings_for(data)
    assert w.startswith("viessmann.client_id is empty")
    data["viessmann"]["client_id"] = "a-registered-client"
    assert warnings_for(data) == []


@pytest.mark.parametrize("data", [None, {}])
def test_a_file_without_settings_is_warned_about(data: Any) -> None:
    (w,) = warnings_for(data)
    assert w.startswith("the file is empty: every setting is the package default")


@pytest.mark.parametrize(
    "data",
    [
        {"viessmann": {"enabled": True}},
        {"viessmann": {"enabled": True, "client_id": "   "}},
        {"viessmann": {"enabled": True}, "loads": {"dhw": {"enabled": False}}},
    ],
)
def test_viessmann_enabled_without_a_client_id(data: Any) -> None:
    (w,) = warnings_for(data)
    assert w.startswith("viessmann.client_id is empty")
    assert "emsctl viessmann login" in w


def test_the_cloud_boost_without_the_cloud_or_a_client_id_is_two_warnings() -> None:
    data = {"loads": {"dhw": {"device": {"type": "viessmann_dhw"}}}}
    client, switched_off = warnings_for(data)
    assert client.startswith("viessmann.client_id is empty")
    assert switched_off.startswith("loads.dhw uses the Viessmann cloud but viessmann.enabled")


def test_a_disabled_boost_needs_no_client() -> None:
    data = {"loads": {"dhw": {"enabled": False, "device": {"type": "viessmann_dhw"}}}}
    assert warnings_for(data) == []


def test_check_config_of_an_empty_file_warns_then_prints_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here yet\n", encoding="utf-8")
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: the file is empty: every setting is the package default")
    assert out.startswith(f"# {path}: valid. Effective configuration")
    assert parse_config(yaml.safe_load(out)) == parse_config(None)


def test_check_config_warns_once_per_problem_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cloud.yaml"
    path.write_text("loads:\n  dhw: {device: {type: viessmann_dhw}}\n", encoding="utf-8")
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert [line.split(":")[0] for line in err.splitlines()] == ["warning", "warning"]
    assert "warning" not in out


def test_the_web_ui_on_the_network_without_a_password_is_refused_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stronger than a warning: the page switches the loads, so validation refuses it and
    there is nothing left for config_warnings to say."""
    path = tmp_path / "open.yaml"
    path.write_text("webui: {bind: 0.0.0.0}\n", encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "webui.bind: '0.0.0.0'" in err and "webui.password_hash" in err
    hashed = "pbkdf2:sha256:600000$salt$" + "ab" * 32
    data = {"webui": {"bind": "0.0.0.0", "password_hash": hashed}}
    assert warnings_for(data) == []
