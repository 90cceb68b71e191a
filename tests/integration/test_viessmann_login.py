"""`emsctl viessmann login`: OAuth2 code flow with PKCE against the IAM emulator."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emsctl import clock
from emsctl.adapters.statestore import MemoryStateStore
from emsctl.adapters.viessmann import ViessmannClient
from emsctl.adapters.viessmann_auth import (
    PENDING_FILE,
    LoginRequired,
    TokenFile,
    begin_login,
    complete_login,
    extract_code,
    token_path,
    write_private,
)
from emsctl.cli import main
from emsctl.config import ViessmannConfig
from tests.support.cloud import config_for, write_config
from tests.support.viessmann_emulator import (
    GATEWAY_SERIAL,
    INSTALLATION_ID,
    ViessmannEmulator,
    s256,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def emu() -> Iterator[ViessmannEmulator]:
    e = ViessmannEmulator()
    yield e
    e.stop()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_hosts_are_the_ones_current_clients_use(tmp_path: Path) -> None:
    """Viessmann moved to viessmann-climatesolutions.com and IoT API v2 (PyViCare did so in
    2025); the feature and command paths kept their shape."""
    cfg = ViessmannConfig(enabled=True, client_id="c")
    assert cfg.auth_url == "https://iam.viessmann-climatesolutions.com/idp/v3/authorize"
    assert cfg.token_url == "https://iam.viessmann-climatesolutions.com/idp/v3/token"
    assert cfg.api_base == "https://api.viessmann-climatesolutions.com/iot/v2"
    url = begin_login(cfg, clock.now()).url
    assert url.startswith("https://iam.viessmann-climatesolutions.com/idp/v3/authorize?")

    # What the client asks the default API for, recorded without a network.
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        name = request.url.path.rsplit("/", 1)[-1]
        if request.url.path.endswith("/installations"):
            heat_pump = {"id": "0", "deviceType": "heating", "modelId": "E3_Vitocal_16"}
            gateway = {"serial": GATEWAY_SERIAL, "devices": [heat_pump]}
            return httpx.Response(
                200, json={"data": [{"id": INSTALLATION_ID, "gateways": [gateway]}]}
            )
        if request.method == "POST":
            return httpx.Response(200, json={"data": {"success": True}})
        return httpx.Response(200, json={"data": {"feature": name, "isEnabled": True}})

    tokens = TokenFile(tmp_path / "token.json")
    far = clock.now().timestamp() + 3600
    tokens.save({"access_token": "a", "refresh_token": "r", "expires_at": far}, clock.now())
    client = ViessmannClient(cfg, MemoryStateStore(), tokens, transport=httpx.MockTransport(answer))
    client.feature("heating.dhw.temperature.main", clock.now())
    client.execute(
        "heating.dhw.temperature.main", "setTargetTemperature", {"temperature": 60}, clock.now()
    )
    client.close()
    base = "https://api.viessmann-climatesolutions.com/iot/v2"
    device = f"{base}/features/installations/{INSTALLATION_ID}/gateways/{GATEWAY_SERIAL}/devices/0"
    assert [(r.method, str(r.url)) for r in sent] == [
        ("GET", f"{base}/equipment/installations?includeGateways=true"),
        ("GET", f"{device}/features/heating.dhw.temperature.main"),
        ("POST", f"{device}/features/heating.dhw.temperature.main/commands/setTargetTemperature"),
    ]


def test_two_step_cli_login_exchanges_code_with_pkce_and_stores_token_0600(
    emu: ViessmannEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = config_for(tmp_path, emu)
    cfg_file = write_config(tmp_path, config)

    assert main(["viessmann", "login", "-c", str(cfg_file), "--print-url"]) == 0
    out = capsys.readouterr().out
    url = next(line for line in out.splitlines() if line.startswith(emu.auth_url))
    pending = tmp_path / PENDING_FILE
    assert _mode(pending) == 0o600
    verifier = json.loads(pending.read_text())["verifier"]
    assert f"code_challenge={s256(verifier)}" in url
    assert "code_challenge_method=S256" in url

    redirected = emu.browser_login(url)
    assert main(["viessmann", "login", "-c", str(cfg_file), "--code-or-url", redirected]) == 0
    out = capsys.readouterr().out
    assert "Login stored" in out
    assert f"installation {INSTALLATION_ID}" in out

    token_file = token_path(config)
    assert token_file == tmp_path / "viessmann-token.json"
    assert _mode(token_file) == 0o600
    saved = json.loads(token_file.read_text())["token"]
    assert saved["refresh_token"] and saved["access_token"]
    assert emu.token_calls["authorization_code"] == 1
    assert emu.token_calls["pkce_failed"] == 0
    assert not pending.exists(), "the verifier must not outlive the login"
    # Secrets stay out of the YAML and out of every log line.
    text = cfg_file.read_text() + "\n".join(r.getMessage() for r in caplog.records)
    assert saved["refresh_token"] not in text
    assert saved["access_token"] not in text


def test_interactive_login_reads_the_pasted_url_from_stdin(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    config = config_for(tmp_path, emu)
    cfg_file = write_config(tmp_path, config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emsctl.cli", "viessmann", "login", "-c", str(cfg_file)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        url = ""
        for _ in range(20):
            line = proc.stdout.readline()
            if line.startswith(emu.auth_url):
                url = line.strip()
                break
        assert url, "the login printed no authorisation URL"
        redirected = emu.browser_login(url)
        out, err = proc.communicate(redirected + "\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Login stored" in out
    assert _mode(token_path(config)) == 0o600
    assert emu.token_calls["authorization_code"] == 1


def test_code_from_another_login_attempt_fails_the_pkce_check(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    config = config_for(tmp_path, emu)
    tokens = TokenFile(token_path(config))
    first = begin_login(config.viessmann, clock.now())
    second = begin_login(config.viessmann, clock.now())
    redirected = emu.browser_login(first.url)
    code = extract_code(redirected, first.state)
    # The bare code passes our state check; the IAM sees the wrong verifier.
    with pytest.raises(LoginRequired, match="invalid_grant"):
        complete_login(config.viessmann, second, code, tokens, clock.now())
    assert emu.token_calls["pkce_failed"] == 1
    assert not tokens.path.exists()


def test_pasted_url_of_another_attempt_is_rejected_by_its_state(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    config = config_for(tmp_path, emu)
    first = begin_login(config.viessmann, clock.now())
    second = begin_login(config.viessmann, clock.now())
    redirected = emu.browser_login(first.url)
    with pytest.raises(ValueError, match="another login attempt"):
        complete_login(
            config.viessmann, second, redirected, TokenFile(token_path(config)), clock.now()
        )
    assert emu.token_calls["authorization_code"] == 0


def test_a_code_cannot_be_used_twice(emu: ViessmannEmulator, tmp_path: Path) -> None:
    config = config_for(tmp_path, emu)
    tokens = TokenFile(token_path(config))
    pending = begin_login(config.viessmann, clock.now())
    redirected = emu.browser_login(pending.url)
    complete_login(config.viessmann, pending, redirected, tokens, clock.now())
    with pytest.raises(LoginRequired, match="invalid_grant"):
        complete_login(config.viessmann, pending, redirected, tokens, clock.now())


def test_scope_without_offline_access_is_refused_with_the_reason(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    config = config_for(tmp_path, emu, viessmann_overrides={"scope": "IoT User"})
    tokens = TokenFile(token_path(config))
    pending = begin_login(config.viessmann, clock.now())
    redirected = emu.browser_login(pending.url)
    with pytest.raises(LoginRequired, match="offline_access"):
        complete_login(config.viessmann, pending, redirected, tokens, clock.now())
    assert not tokens.path.exists()


def test_cli_login_with_unknown_client_id_says_so(
    emu: ViessmannEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path, emu)
    cfg_file = write_config(tmp_path, config)
    assert main(["viessmann", "login", "-c", str(cfg_file), "--print-url"]) == 0
    url = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith(emu.auth_url)
    )
    redirected = emu.browser_login(url)
    emu.client_id = "another-client"  # the client was deleted on the developer portal
    rc = main(["viessmann", "login", "-c", str(cfg_file), "--code-or-url", redirected])
    assert rc == 1
    assert "client_id" in capsys.readouterr().err


def test_finishing_a_login_that_was_never_started_explains_what_to_do(
    emu: ViessmannEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = write_config(tmp_path, config_for(tmp_path, emu))
    rc = main(["viessmann", "login", "-c", str(cfg_file), "--code-or-url", "abc"])
    assert rc == 1
    assert "no login in progress" in capsys.readouterr().err


def test_token_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        target = tmp_path / "state" / "token.json"
        write_private(target, '{"token": null}')
        write_private(target, '{"token": {}}')  # replacing keeps the mode too
    finally:
        os.umask(old)
    assert _mode(target) == 0o600
    assert target.read_text() == '{"token": {}}'
    assert [p.name for p in target.parent.iterdir()] == ["token.json"], "no temp file left"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the login is run with sudo")
def test_a_login_run_as_root_leaves_the_token_to_the_state_directorys_owner(
    tmp_path: Path,
) -> None:
    # The service runs as a dynamic user that exists only while it runs: the owner logs in
    # with sudo, and the files must then belong to whoever owns the state directory.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 61234, 61235)
    target = state / "viessmann-token.json"
    write_private(target, '{"token": {}}')
    info = target.stat()
    assert (info.st_uid, info.st_gid) == (61234, 61235)
    assert _mode(target) == 0o600
    os.chown(state, 0, 0)  # a directory of root's: the file stays root's
    write_private(target, '{"token": null}')
    assert (target.stat().st_uid, target.stat().st_gid) == (0, 0)


def test_extract_code_accepts_url_or_bare_code_and_reports_login_errors() -> None:
    assert extract_code("  abc123 \n", "s") == "abc123"
    assert extract_code("vicare://oauth-callback/everest?code=xyz&state=s", "s") == "xyz"
    assert extract_code("http://localhost:4200/?code=xyz", "s") == "xyz"
    with pytest.raises(ValueError, match="access_denied"):
        extract_code("http://localhost:4200/?error=access_denied&state=s", "s")
    with pytest.raises(ValueError, match="nothing was pasted"):
        extract_code("   ", "s")


def test_login_into_an_unusable_state_directory_says_what_to_do(
    emu: ViessmannEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A regular file where the state directory should be: fails for root too.
    blocker = tmp_path / "state"
    blocker.write_text("")
    config = config_for(blocker, emu)
    cfg_file = write_config(tmp_path, config)
    assert main(["viessmann", "login", "-c", str(cfg_file), "--print-url"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write to {blocker}" in err
    assert "run the login with sudo" in err
