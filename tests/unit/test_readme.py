"""The README stays true: its two set-up commands first, its example configuration valid, the
pictures it shows present, every `emsctl` command it names existing, and the licence named."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from emsctl.cli import COMMANDS
from emsctl.config import load_config
from emsctl.config_warnings import config_warnings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_two_set_up_commands_come_first() -> None:
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]


def test_the_minimal_configuration_is_valid_and_warns_of_nothing(tmp_path: Path) -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", README, re.S)
    path = tmp_path / "my-house.yaml"
    path.write_text(block, encoding="utf-8")
    cfg = load_config(path)
    assert cfg.prometheus.url == "http://192.168.1.10:9090"
    assert config_warnings(cfg, yaml.safe_load(block)) == []


def test_the_pictures_are_there() -> None:
    images = re.findall(r"\(docs/img/([\w.-]+\.png)\)", README)
    assert len(images) >= 3
    for name in images:
        assert (ROOT / "docs" / "img" / name).stat().st_size > 10_000, name


def test_every_emsctl_command_named_exists() -> None:
    named = set(re.findall(r"emsctl ([a-z][a-z-]+)", README))
    assert named <= set(COMMANDS) | {"check-config"}, named - set(COMMANDS)


def test_the_licence_file_matches_the_package_metadata() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "Python 3.11" in README and ".venv/bin/emsctl" in README
