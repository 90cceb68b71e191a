"""`emsctl check-config` and the config's cross-checks: the shipped file is valid, and a bad file
is refused with every problem named (exit code 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from emsctl.cli import main
from emsctl.config import ConfigError, load_config, parse_config

from .corekit import BASE, merge

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "configs" / "ems-config.yaml"

BAD = """\
control:
  priority: [sg_ready, dhw, wb_a, wb_c]    # no such load
loads:
  sg_ready:
    on_delay_s: -5                         # a negative delay
  wb_a:
    of_delay_s: 300                        # typo for off_delay_s
"""


def _problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    return {p.path: str(p) for p in err.value.problems}


def test_shipped_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {SHIPPED}: valid.")
    # The effective configuration printed is itself a valid config, equal to the file's.
    effective = yaml.safe_load(out.split("\n", 1)[1])
    assert parse_config(effective) == load_config(SHIPPED)


def test_bad_file_exits_2_naming_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: 3 problem(s) in the configuration:" in err
    assert "control.priority.3: 'wb_c': one of 'sg_ready', 'dhw', 'wb_a' or 'wb_b'" in err
    assert "loads.sg_ready.on_delay_s: -5: a number >= 0" in err
    assert "loads.wb_a.of_delay_s: 300: no such key" in err


def test_check_config_as_a_program(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "emsctl.cli", "check-config", str(path)]
        return subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=60, cwd=REPO
        )

    good = check(SHIPPED)
    assert good.returncode == 0, good.stderr
    assert "valid" in good.stdout
    refused = check(bad)
    assert refused.returncode == 2
    for path in ("control.priority.3", "loads.sg_ready.on_delay_s", "loads.wb_a.of_delay_s"):
        assert path in refused.stderr
    assert refused.stdout == ""


def test_unreadable_and_malformed_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'missing.yaml'}: no such file: pass")
    broken = tmp_path / "broken.yaml"
    broken.write_text("control:\n  priority: [sg_ready\n", encoding="utf-8")
    assert main(["check-config", str(broken)]) == 2
    assert "line 3, column 1" in capsys.readouterr().err
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    assert main(["check-config", str(listing)]) == 2
    assert "(top level): 'list': a mapping" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (FileNotFoundError, "no such file: pass --config FILE or set $EMS_CONFIG"),
        (IsADirectoryError, "is a directory: name the YAML file itself"),
        (PermissionError, "cannot be read (permission denied): run as a user who may read it"),
    ],
)
def test_a_config_file_that_cannot_be_read_is_one_plain_line(
    error: type[OSError], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ems.yaml"
    path.write_text("control: {}\n", encoding="utf-8")

    def refuse(_self: Path) -> bytes:
        raise error(13, "refused")

    monkeypatch.setattr(Path, "read_bytes", refuse)  # root reads any file: no chmod here
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: {says}")
    assert "\n" not in str(err.value)
    assert err.value.problems[0].path == "(file)"


def test_an_empty_file_is_the_default_config() -> None:
    assert parse_config(None) == parse_config({})


# --------------------------------------------------------------------------- cross-checks


def test_exclusive_group_needs_two_loads() -> None:
    problems = _problems(merge(BASE, {"control": {"exclusive": [["wb_a"], ["wb_b", "wb_b"]]}}))
    assert problems["control.exclusive.0"] == "control.exclusive.0: ['wb_a']: at least two loads"
    assert "control.exclusive.1" in problems
    assert parse_config(merge(BASE, {"control": {"exclusive": []}})).control.exclusive == []


@pytest.mark.parametrize(("brake", "ok"), [(46.9, True), (47.0, False), (60.0, False)])
def test_brake_soc_must_lie_below_every_gate_minus_hysteresis(brake: float, ok: bool) -> None:
    # SG-Ready's and DHW's gate 50 %, hysteresis 3: a load must be able to leave by its gate
    # before the brake hits, so brake_soc < 47 %.
    data = merge(BASE, {"control": {"brake_soc": brake}})
    if ok:
        assert parse_config(data).control.brake_soc == brake
        return
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    named = [str(p) for p in err.value.problems if p.path == "control.brake_soc"]
    for load in ("sg_ready", "dhw"):
        assert (
            f"control.brake_soc: {brake!r}: below {load}'s gate 50% minus hysteresis 3 "
            "(a load must leave before the brake)"
        ) in named
    # WB A's gate is 70 %: 60 % is no problem for it.
    assert not any("wb_a" in line for line in named)


def test_brake_check_ignores_disabled_loads() -> None:
    data = merge(
        BASE,
        {
            "control": {"brake_soc": 60, "priority": ["wb_a", "wb_b"]},
            "loads": {"sg_ready": {"enabled": False}, "dhw": {"enabled": False}},
        },
    )
    assert parse_config(data).enabled_loads() == ["wb_a", "wb_b"]


@pytest.mark.parametrize("key", ["on_delay_s", "off_delay_s"])
@pytest.mark.parametrize(("delay", "ok"), [(59, False), (60, True)])
def test_delays_must_be_at_least_the_loop_interval(key: str, delay: float, ok: bool) -> None:
    data = merge(BASE, {"loads": {"wb_b": {key: delay}}})
    if ok:
        parse_config(data)
        return
    assert _problems(data) == {
        f"loads.wb_b.{key}": f"loads.wb_b.{key}: {float(delay)!r}: at least control.interval_s (60)"
    }


def test_each_load_once_in_priority_and_every_enabled_load_named() -> None:
    problems = _problems(
        merge(BASE, {"control": {"priority": ["sg_ready", "dhw", "sg_ready", "wb_a"]}})
    )
    assert problems["control.priority.2"] == "control.priority.2: 'sg_ready': each load once"
    assert "a list naming wb_b" in problems["control.priority"]


def test_device_types_must_fit_the_load() -> None:
    problems = _problems(
        merge(
            BASE,
            {
                "loads": {
                    "dhw": {"device": {"type": "shelly_gen2", "host": "192.168.1.5"}},
                    "wb_b": {"device": {"type": "viessmann_dhw"}},
                    "wb_a": {"device": {"type": "shelly_gen1", "host": "192.168.1.6"}},
                }
            },
        )
    )
    assert problems["loads.dhw.device.type"].endswith("viessmann_dhw or sim")
    assert problems["loads.wb_b.device.type"].endswith("a relay device")
    assert "Shelly 1 Gen1 has no power meter" in problems["loads.wb_a.power_source"]


def test_all_cross_check_problems_are_reported_together() -> None:
    problems = _problems(
        merge(
            BASE,
            {
                "control": {"exclusive": [["wb_a"]], "brake_soc": 48},
                "loads": {"wb_a": {"on_delay_s": 10}},
            },
        )
    )
    assert {"control.exclusive.0", "control.brake_soc", "loads.wb_a.on_delay_s"} <= set(problems)


@pytest.mark.parametrize(
    ("data", "secret", "path"),
    [
        ({"prometheus": {"url": "http://ems:pw-s3cret@127.0.0.1:9090 x"}}, "pw-s3cret", "url"),
        ({"webui": {"password_hash": "hunter2-plain"}}, "hunter2-plain", "password_hash"),
        ({"forecast": {"api_key": ["k3y-s3cret"]}}, "k3y-s3cret", "api_key"),
    ],
)
def test_a_refused_value_does_not_show_a_secret(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    data: dict[str, Any],
    secret: str,
    path: str,
) -> None:
    """A password in a URL, or a secret key's value (a plain password where its hash goes),
    is not echoed by the error that refuses it: it goes to the terminal and, from `run`, to
    the journal. The key is still named."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f".{path}: " in err
    assert secret not in err
