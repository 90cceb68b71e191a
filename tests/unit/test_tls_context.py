"""Every HTTP client the daemon builds shares one TLS context (each of its own would load the
CA bundle again, about 0.9 MB apiece for the daemon's life)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from emsctl.adapters.statestore import MemoryStateStore
from emsctl.adapters.tls import client_context
from emsctl.adapters.viessmann import ViessmannDhw
from emsctl.config import parse_config
from emsctl.model import LoadId
from emsctl.wiring import build_devices


def _context(client: httpx.Client) -> ssl.SSLContext:
    # httpx keeps the context in its transport's connection pool (httpcore).
    transport: Any = client._transport
    ctx: ssl.SSLContext = transport._pool._ssl_context
    return ctx


def test_all_clients_of_the_daemon_share_one_verifying_context(tmp_path: Path) -> None:
    config = parse_config(
        {
            "loads": {
                "sg_ready": {"device": {"type": "shelly_gen1", "host": "127.0.0.1:9"}},
                "dhw": {"device": {"type": "viessmann_dhw"}},
                "wb_a": {"device": {"type": "shelly_gen2", "host": "127.0.0.1:9"}},
                "wb_b": {"device": {"type": "shelly_gen2", "host": "127.0.0.1:9"}},
            },
            "viessmann": {"enabled": True, "client_id": "x"},
            "forecast": {"enabled": True},
            "store": {"path": str(tmp_path / "ems.db")},
        }
    )
    devices = build_devices(config, MemoryStateStore())
    dhw = devices.actuators[LoadId.DHW]
    assert isinstance(dhw, ViessmannDhw)
    clients: list[httpx.Client] = [
        devices.collector._client,  # type: ignore[attr-defined]
        devices.forecast._http,  # type: ignore[union-attr]
        dhw.client._client().http,
        *(devices.actuators[x]._client for x in (LoadId.SG_READY, LoadId.WB_A, LoadId.WB_B)),  # type: ignore[attr-defined]
    ]
    shared = client_context()
    assert all(_context(c) is shared for c in clients)
    # httpx's default: certificates and host names are checked.
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    dhw.close()
    for c in clients:
        c.close()
