"""deploy/ems.service passes `systemd-analyze verify` and carries the documented hardening."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import need_real

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "ems.service"


def test_unit_verifies_with_systemd_analyze(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    need_real("systemd-analyze", tool is not None, "apt-get install systemd")
    # verify also checks that ExecStart exists: point it at this checkout's emsctl.
    emsctl = Path(sys.executable).with_name("emsctl")
    unit = tmp_path / "ems.service"
    unit.write_text(UNIT.read_text().replace("/opt/ems/venv/bin/emsctl", str(emsctl)))
    res = subprocess.run(
        [str(tool), "verify", str(unit)], check=False, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert "ems.service" not in res.stderr, res.stderr


def test_unit_is_hardened_and_uses_the_watchdog() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "DynamicUser=yes",
        "StateDirectory=ems",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in text, line
    docs = (ROOT / "docs" / "operations.md").read_text()
    for key in ("ProtectSystem=strict", "NoNewPrivileges", "WatchdogSec", "DynamicUser"):
        assert key in docs, f"docs/operations.md should explain {key}"


def _unit_values(key: str) -> list[str]:
    return [
        line.split("=", 1)[1].strip()
        for line in UNIT.read_text().splitlines()
        if line.startswith(f"{key}=")
    ]


def test_the_config_is_installed_readable_by_root_and_the_service_only() -> None:
    """It may hold the forecast.solar key and the web UI's password hash: not world-readable
    (it was 0644). The dynamic user reads it through a static group given to it by
    SupplementaryGroups=. That group must not be named like User=: systemd refuses to start a
    DynamicUser= service whose user name is a static group's but no static user's (EILSEQ,
    status 217/USER), so a static group `ems` beside `User=ems` would keep EMS from running."""
    script = (ROOT / "deploy" / "install.sh").read_text()
    created = re.findall(r"groupadd --system (\S+)", script)
    assert len(created) == 1, created
    group = created[0]
    assert group not in _unit_values("User") + _unit_values("Group")
    assert _unit_values("DynamicUser") == ["yes"]
    assert group in " ".join(_unit_values("SupplementaryGroups")).split()
    assert f'install -m 0640 -o root -g {group} "$SRC/configs/ems-config.yaml"' in script
    # An upgrade tightens a config installed before.
    assert f"chown root:{group} /etc/ems/ems-config.yaml && chmod 0640" in script
    assert "0644" not in script
    docs = (ROOT / "docs" / "operations.md").read_text()
    assert f"SupplementaryGroups={group}" in docs
