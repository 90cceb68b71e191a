"""Where Shelly passwords come from: environment over file, per-load over general."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from emsctl.adapters.credentials import Credentials, CredentialsError, load_var, parse_file
from emsctl.config import parse_config
from emsctl.model import LoadId


def _file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "credentials"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_variable_names_follow_the_load_ids() -> None:
    assert load_var(LoadId.WB_A) == "EMS_SHELLY_WB_A_PASSWORD"
    assert load_var(LoadId.SG_READY) == "EMS_SHELLY_SG_READY_PASSWORD"


def test_per_load_password_wins_over_the_general_one() -> None:
    creds = Credentials.load(
        environ={"EMS_SHELLY_PASSWORD": "all", "EMS_SHELLY_WB_A_PASSWORD": "only-a"}
    )
    assert creds.shelly_password(LoadId.WB_A) == "only-a"
    assert creds.shelly_password(LoadId.WB_B) == "all"


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "EMS_SHELLY_PASSWORD=from-file\nEMS_SHELLY_WB_B_PASSWORD=b-file\n")
    creds = Credentials.load([path], environ={"EMS_SHELLY_PASSWORD": "from-env"})
    assert creds.shelly_password(LoadId.WB_A) == "from-env"
    assert creds.shelly_password(LoadId.WB_B) == "b-file"
    assert creds.describe(LoadId.WB_B) == f"EMS_SHELLY_WB_B_PASSWORD from file {path}"
    assert creds.describe(LoadId.WB_A) == "EMS_SHELLY_PASSWORD from environment"


def test_file_syntax_comments_quotes_and_export(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "# Shelly logins\n\nexport EMS_SHELLY_PASSWORD='a b=c'\n"
        'EMS_SHELLY_WB_A_PASSWORD = "x#y"\nEMS_SHELLY_WB_B_PASSWORD=plain\n',
    )
    assert parse_file(path) == {
        "EMS_SHELLY_PASSWORD": "a b=c",
        "EMS_SHELLY_WB_A_PASSWORD": "x#y",
        "EMS_SHELLY_WB_B_PASSWORD": "plain",
    }


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "EMS_SHELLY_PASSWORD=ok\nthis is not a pair\n")
    with pytest.raises(CredentialsError, match=re.escape(f"{path}, line 2: expected NAME=value")):
        parse_file(path)


def test_missing_named_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"nope.*cannot read it"):
        Credentials.load([tmp_path / "nope"], environ={})


def test_empty_value_counts_as_unset() -> None:
    creds = Credentials.load(environ={"EMS_SHELLY_WB_A_PASSWORD": "", "EMS_SHELLY_PASSWORD": "g"})
    assert creds.shelly_password(LoadId.WB_A) == "g"
    assert Credentials.load(environ={}).shelly_password(LoadId.WB_A) is None
    assert "set EMS_SHELLY_WB_A_PASSWORD" in Credentials.load(environ={}).describe(LoadId.WB_A)


def test_describe_never_shows_the_password() -> None:
    creds = Credentials.load(environ={"EMS_SHELLY_PASSWORD": "hunter2"})
    assert "hunter2" not in creds.describe(LoadId.WB_A)
    assert "hunter2" not in repr(creds.origins)


def test_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _file(tmp_path, "EMS_SHELLY_PASSWORD=x\n", mode=0o644)
    with caplog.at_level(logging.WARNING):
        parse_file(path)
    assert "chmod 600" in caplog.text


def test_config_names_the_file_else_the_environment_does(tmp_path: Path) -> None:
    named = _file(tmp_path, "EMS_SHELLY_WB_A_PASSWORD=named\n")
    other = tmp_path / "other"
    other.write_text("EMS_SHELLY_WB_A_PASSWORD=other\n")
    other.chmod(0o600)
    device = {"type": "shelly_gen2", "host": "127.0.0.1:1", "credentials_file": str(named)}
    config = parse_config({"loads": {"wb_a": {"device": device}}})
    env = {"EMS_CREDENTIALS_FILE": str(other)}
    assert Credentials.for_config(config, env).shelly_password(LoadId.WB_A) == "named"
    plain = parse_config({})
    assert Credentials.for_config(plain, env).shelly_password(LoadId.WB_A) == "other"


def test_the_default_file_is_the_one_the_unit_loads_and_is_skipped_when_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emsctl.adapters import credentials

    unit = (Path(__file__).resolve().parents[2] / "deploy" / "ems.service").read_text()
    assert f"EnvironmentFile=-{credentials.DEFAULT_FILE}" in unit
    default = _file(tmp_path, "EMS_SHELLY_PASSWORD=from-file\n")
    monkeypatch.setattr(credentials, "DEFAULT_FILE", default)
    plain = parse_config({})
    assert Credentials.for_config(plain, {}).shelly_password(LoadId.WB_A) == "from-file"

    # The service's own user cannot read root's file: it runs on what EnvironmentFile= gave.
    def as_the_service_user(path: Path) -> dict[str, str]:
        raise CredentialsError(f"credentials file {path}: cannot read it: Permission denied")

    monkeypatch.setattr(credentials.os, "access", lambda path, mode: path != default)
    monkeypatch.setattr(credentials, "parse_file", as_the_service_user)
    env = {"EMS_SHELLY_PASSWORD": "from-unit"}
    assert Credentials.for_config(plain, env).shelly_password(LoadId.WB_A) == "from-unit"


@pytest.mark.parametrize("line", ["hunter2-is-my-password", "s3cr3t pass=word", "=p4ssw0rd"])
def test_a_malformed_line_is_not_echoed_it_may_be_a_password(tmp_path: Path, line: str) -> None:
    path = tmp_path / "credentials.env"
    path.write_text(f"EMS_SHELLY_PASSWORD=fine\n{line}\n")
    with pytest.raises(CredentialsError) as err:
        parse_file(path)
    message = str(err.value)
    assert "line 2" in message
    for piece in ("hunter2", "s3cr3t", "word", "p4ssw0rd"):
        assert piece not in message


def test_a_line_that_is_not_utf8_is_named_by_number_not_shown(tmp_path: Path) -> None:
    """A password saved in Latin-1 ('passwört'): a CredentialsError naming the line, without
    its bytes (it was a UnicodeDecodeError, which no caller expects)."""
    path = tmp_path / "credentials.env"
    path.write_bytes(b"# passwords\nEMS_SHELLY_PASSWORD=passw\xf6rt-s3cret\n")
    with pytest.raises(CredentialsError) as err:
        parse_file(path)
    message = str(err.value)
    assert "line 2" in message and "UTF-8" in message
    assert "s3cret" not in message and "passw" not in message
