"""deploy/ems.service passes `systemd-analyze verify` and carries the documented hardening."""

from __future__ import annotations

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


def test_the_config_is_installed_readable_by_root_and_the_service_only() -> None:
    """It may hold the forecast.solar key and the web UI's password hash: not world-readable
    (it was 0644). The service reads it through the static group `ems`, which systemd uses
    for `Group=ems` beside the dynamic user."""
    script = (ROOT / "deploy" / "install.sh").read_text()
    assert "groupadd --system ems" in script
    assert 'install -m 0640 -o root -g ems "$SRC/configs/ems-config.yaml"' in script
    assert "chgrp ems /etc/ems/ems-config.yaml && chmod 0640" in script  # an upgrade too
    assert "0644" not in script
    unit = UNIT.read_text()
    assert "\nGroup=ems\n" in unit and "\nDynamicUser=yes\n" in unit
