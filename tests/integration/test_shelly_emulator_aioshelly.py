"""The emulator is faithful: an independent client (aioshelly, Home Assistant's library)
works against it for the calls EMS uses, and its wire details match the real samples.

- Gen2: aioshelly's RpcDevice speaks JSON-RPC over the WebSocket `/rpc` with the JSON `auth`
  object (the firmware's own digest variant): initialize (Shelly.GetDeviceInfo, GetConfig,
  GetStatus), Switch.Set, Switch.GetStatus, and a wrong password -> InvalidAuthError.
- Gen1: aioshelly's BlockDevice uses HTTP for /shelly, /status and /relay/0 (its CoAP part is
  UDP on port 5683 and not emulated). Its URLs are always port 80, so an aiohttp resolver maps
  the test host name to the emulator's loopback port; aioshelly's code runs unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from aioshelly.block_device import COAP, BlockDevice
from aioshelly.common import ConnectionOptions, get_info
from aioshelly.exceptions import InvalidAuthError
from aioshelly.rpc_device import RpcDevice

from tests.conftest import FIXTURES
from tests.support.shelly_emulator import ShellyGen2Emulator
from tests.support.shelly_fixtures import Gen1Factory, Gen2Factory

pytestmark = pytest.mark.timeout(60)
SHELLY = FIXTURES / "shelly"


T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    # On a thread of its own: Playwright's sync API (browser tests, same session) keeps an
    # event loop running on the main thread, where asyncio.run() refuses to start.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(coro, timeout=30)).result()


class _LoopbackResolver(AbstractResolver):
    """Resolves the given test names to 127.0.0.1 and the emulator's port."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.ports:
            raise OSError(f"{host} is not a test device")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=self.ports[host],
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        pass


# --------------------------------------------------------------------------- Gen2


def test_aioshelly_rpc_device_initialises_switches_and_reads_with_digest(
    gen2_emulator: Gen2Factory,
) -> None:
    emu = gen2_emulator(password="tango", power_w=1980.0)

    async def scenario() -> tuple[Any, ...]:
        async with aiohttp.ClientSession() as session:
            info = await get_info(session, "127.0.0.1", port=emu.port)
            options = ConnectionOptions("127.0.0.1", "admin", "tango", port=emu.port)
            device = await RpcDevice.create(session, None, options)
            try:
                await device.initialize()
                initial = device.status["switch:0"]["output"]
                await device.switch_set(0, True)
                status = await device.call_rpc("Switch.GetStatus", {"id": 0})
            finally:
                await device.shutdown()
            return info, device.model, device.requires_auth, initial, status

    info, model, requires_auth, initial, status = _run(scenario())

    assert info["gen"] == 2 and info["auth_domain"] == emu.device_id
    assert (model, requires_auth, initial) == ("SNSW-001P16EU", True, False)
    assert (status["output"], status["apower"], status["source"]) == (True, 1980.0, "WS_in")
    assert emu.output is True
    ws = [r for r in emu.requests if r.transport == "ws"]
    assert any(r.authorized is False for r in ws)  # aioshelly had to answer a challenge
    assert [r.rpc_method for r in ws if r.authorized][-2:] == ["Switch.Set", "Switch.GetStatus"]


def test_aioshelly_rpc_device_reports_a_wrong_password(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator(password="right")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            options = ConnectionOptions("127.0.0.1", "admin", "wrong", port=emu.port)
            device = await RpcDevice.create(session, None, options)
            try:
                await device.initialize()
            finally:
                await device.shutdown()

    with pytest.raises(InvalidAuthError):
        _run(scenario())
    assert emu.output is False


def test_aioshelly_sees_a_button_press_and_a_plus_1_without_power(
    gen2_emulator: Gen2Factory,
) -> None:
    emu = gen2_emulator(model="SNSW-001X16EU", device_id="shellyplus1-aabbccddeeff")
    emu.press_button(True)

    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            options = ConnectionOptions("127.0.0.1", port=emu.port)
            device = await RpcDevice.create(session, None, options)
            try:
                await device.initialize()
                result: dict[str, Any] = await device.call_rpc("Switch.GetStatus", {"id": 0})
                return result
            finally:
                await device.shutdown()

    status = _run(scenario())
    assert (status["output"], status["source"]) == (True, "button")
    assert "apower" not in status


# --------------------------------------------------------------------------- Gen1


def test_aioshelly_block_device_reads_and_switches_a_gen1_over_http(
    gen1_emulator: Gen1Factory,
) -> None:
    emu = gen1_emulator(password="pw")

    async def scenario(password: str) -> tuple[Any, ...]:
        resolver = _LoopbackResolver({"shelly1.test": emu.port})
        connector = aiohttp.TCPConnector(resolver=resolver)
        async with aiohttp.ClientSession(connector=connector) as session:
            device = BlockDevice(
                COAP(), session, ConnectionOptions("shelly1.test", "admin", password)
            )
            await device.update_shelly()
            relay = await device.http_request("get", "relay/0", {"turn": "on", "timer": "300"})
            await device.update_status()
            return device.model, device.requires_auth, relay, device._status

    model, requires_auth, relay, status = _run(scenario("pw"))

    assert (model, requires_auth) == ("SHSW-1", True)
    assert (relay["ison"], relay["has_timer"], relay["timer_duration"]) == (True, True, 300)
    assert status is not None and status["relays"][0]["ison"] is True
    assert emu.output is True

    with pytest.raises(InvalidAuthError):
        _run(scenario("wrong"))


# --------------------------------------------------------------------------- wire details


def test_gen2_challenge_header_has_the_shape_of_a_real_device(gen2_emulator: Gen2Factory) -> None:
    real = json.loads((SHELLY / "gen2_http_401_digest_challenge.DOC_EXAMPLE.json").read_text())
    emu = gen2_emulator(password="pw")
    response = httpx.get(f"{emu.url}/rpc/Switch.GetStatus?id=0", timeout=5)

    def shape(header: str) -> str:
        return re.sub(r'="[^"]*"', '="…"', header)

    assert response.status_code == 401
    ours = response.headers["WWW-Authenticate"]
    assert shape(ours) == shape(real["headers"]["WWW-Authenticate"])
    assert f'realm="{emu.device_id}"' in ours


def test_gen2_accepts_the_known_answer_auth_object(gen2_emulator: Gen2Factory) -> None:
    vector = json.loads((SHELLY / "gen2_rpc_auth_object_test_vector.json").read_text())
    inputs = vector["inputs"]
    emu: ShellyGen2Emulator = gen2_emulator(password=inputs["password"], device_id=inputs["realm"])
    emu.issue_nonce(inputs["nonce"])  # as if the device had sent this challenge
    frame = {"id": 1, "src": "test", "method": "Switch.GetStatus", "params": {"id": 0}}
    frame["auth"] = vector["expected_auth_object"]

    accepted = httpx.post(f"{emu.url}/rpc", json=frame, timeout=5)
    tampered = dict(frame, auth=dict(frame["auth"], response="0" * 64))
    refused = httpx.post(f"{emu.url}/rpc", json=tampered, timeout=5)

    assert accepted.status_code == 200 and accepted.json()["result"]["id"] == 0
    assert refused.status_code == 401


def test_gen2_get_and_post_method_forms_return_the_bare_result(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator()
    answer = httpx.get(f"{emu.url}/rpc/Switch.Set?id=0&on=true&toggle_after=60", timeout=5)
    status = httpx.get(f"{emu.url}/rpc/Switch.GetStatus?id=0", timeout=5).json()
    assert answer.json() == {"was_on": False}
    assert (status["output"], status["timer_duration"]) == (True, 60)
    toggled = httpx.post(f"{emu.url}/rpc/Switch.Toggle", json={"id": 0}, timeout=5)
    assert toggled.json() == {"was_on": True}
    assert emu.output is False and emu.timer_remaining_s is None
    unknown = httpx.get(f"{emu.url}/rpc/Switch.Explode?id=0", timeout=5)
    assert unknown.status_code == 404 and unknown.json()["code"] == 404


def test_status_bodies_keep_the_fields_of_the_real_samples(
    gen1_emulator: Gen1Factory, gen2_emulator: Gen2Factory
) -> None:
    real1 = json.loads((SHELLY / "gen1_shelly1_SHSW-1_GET_status.json").read_text())
    real2 = json.loads((SHELLY / "gen2_plus1pm_Switch.GetStatus_id0.result.json").read_text())
    e1, e2 = gen1_emulator(), gen2_emulator()
    ours1 = httpx.get(f"{e1.url}/status", timeout=5).json()
    ours2 = httpx.get(f"{e2.url}/rpc/Switch.GetStatus?id=0", timeout=5).json()
    assert set(real1) <= set(ours1)
    assert set(real1["relays"][0]) == set(ours1["relays"][0])
    assert set(real2) == set(ours2)
