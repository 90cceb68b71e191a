"""What `emsctl run` loads: started as the service starts it, ticking with Viessmann (a token
refresh included), the forecast, the Shellys, the store, the metrics exporter and the web UI,
it must not load the modules that only other commands or unused library parts need; each
would cost the daemon memory for its whole life (docs/performance.md, "Memory").
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import yaml

from emsctl.config import parse_config
from tests.support.cloud import login
from tests.support.forecast_emulator import ForecastEmulator
from tests.support.prometheus_server import PublishingExporter
from tests.support.shelly_fixtures import Gen1Factory, Gen2Factory
from tests.support.viessmann_emulator import ViessmannEmulator
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]

#: Module (prefix) -> why the daemon must do without it.
NOT_LOADED: dict[str, str] = {
    "alembic": "a database at the head revision opens without Alembic",
    "emsctl.store.migrate": "migrations belong to `emsctl db upgrade` and to due upgrades",
    "emsctl.sim": "the simulator belongs to `emsctl simulate` and `emsctl demo`",
    "highspy": "the LP solver belongs to `emsctl simulate --optimum`",
    "numpy": "only the optimum's linear program needs arrays",
    "emsctl.store.cli": "only `emsctl db|history|stats` registers its subcommands",
    "emsctl.adapters.cli": "only `emsctl snapshot|device` registers its subcommands",
    "emsctl.adapters.viessmann_cli": "only `emsctl viessmann|forecast` registers them",
    "rich": "httpx's command-line client, which emsctl/__init__.py keeps unloaded",
    "pygments": "httpx's command-line client",
    "authlib.integrations": "Authlib's integrations load its OpenID Connect support",
    "authlib.oidc": "OpenID Connect is not used for a refresh-token grant",
    "joserfc": "JOSE is not used for a refresh-token grant",
    "cryptography": "a second OpenSSL, pulled in only by JOSE",
    "sqlalchemy.orm": "the store reads and writes through SQLAlchemy Core tables",
}

#: What the run must have loaded, so the check above cannot pass by running nothing.
LOADED = (
    "emsctl.daemon",
    "emsctl.adapters.viessmann",
    "emsctl.adapters.forecast_solar",
    "emsctl.adapters.shelly",
    "authlib.oauth2",
    "sqlalchemy.engine",
    "webui",
    "waitress",
    "prometheus_client",
)

#: Runs the real entry point and writes sys.modules when the process exits.
RUNNER = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["emsctl", *sys.argv[2:]]
runpy.run_module("emsctl.cli", run_name="__main__")
"""


def test_emsctl_run_loads_neither_other_commands_nor_unused_library_parts(
    tmp_path: Path,
    prometheus: Any,
    house_exporter: PublishingExporter,
    gen1_emulator: Gen1Factory,
    gen2_emulator: Gen2Factory,
) -> None:
    house_exporter.set("pcc_transfer_power_exchange_value", -6000.0)
    house_exporter.publish()
    sg = gen1_emulator()
    wb_a = gen2_emulator(password="wallbox-secret", power_w=0.0)
    viessmann = ViessmannEmulator()
    forecast = ForecastEmulator(day=date.today())
    try:
        doc: dict[str, Any] = {
            "control": {"interval_s": 1},
            "loads": {
                "sg_ready": {"device": {"type": "shelly_gen1", "host": sg.host, "timeout_s": 2}},
                "dhw": {"device": {"type": "viessmann_dhw"}},
                "wb_a": {"device": {"type": "shelly_gen2", "host": wb_a.host, "timeout_s": 2}},
                "wb_b": {"enabled": False},
            },
            "prometheus": {"url": prometheus.url, "timeout_s": 2},
            "viessmann": viessmann.viessmann_config(),
            "forecast": forecast.forecast_config(),
            "store": {"path": str(tmp_path / "ems.db")},
            "webui": {"bind": "127.0.0.1", "port": 0},
            "metrics": {"bind": "127.0.0.1", "port": 0},
        }
        doc["control"]["priority"] = ["sg_ready", "dhw", "wb_a"]
        doc["control"]["exclusive"] = []
        config = parse_config(doc)
        path = tmp_path / "ems-config.yaml"
        path.write_text(yaml.safe_dump(doc))
        login(config, viessmann)
        viessmann.expire_access_tokens()  # the daemon's first call must refresh the token
        env = {**os.environ, "EMS_SHELLY_PASSWORD": "wallbox-secret"}
        env.pop("NOTIFY_SOCKET", None)
        emsctl = [sys.executable, "-m", "emsctl.cli"]
        subprocess.run(
            [*emsctl, "db", "upgrade", "--config", str(path)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        modules_file = tmp_path / "modules.json"
        log_file = tmp_path / "daemon.log"
        with log_file.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", RUNNER, str(modules_file), "run", "--config", str(path)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                url = wait_until(
                    lambda: re.search(r"web UI: (http://\S+)/", log_file.read_text()),
                    30,
                    "the web UI",
                ).group(1)
                wait_until(
                    lambda: viessmann.token_calls["refresh_token"] >= 1, 30, "a token refresh"
                )
                wait_until(lambda: forecast.requests, 30, "a forecast fetch")
                for page in ("/", "/history", "/api/status", "/api/history"):
                    assert httpx.get(url + page, timeout=10).status_code == 200, page
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0, log_file.read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
    finally:
        viessmann.stop()
        forecast.stop()
    modules = set(json.loads(modules_file.read_text()))
    missing = [m for m in LOADED if m not in modules]
    assert not missing, f"the run did not exercise {missing}; log:\n{log_file.read_text()}"
    loaded = {
        prefix: why
        for prefix, why in NOT_LOADED.items()
        if any(m == prefix or m.startswith(prefix + ".") for m in modules)
    }
    assert not loaded, f"emsctl run loaded modules it must not: {loaded}"
