"""An installed EMS carries everything it reads: `make install` on the Pi is a regular (not
editable) pip install, which takes only the packages pyproject.toml finds and the data files
its package-data names. A template, static file, migration, scenario or the demo config left
out would only show on the Pi, at run time.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
TOP_LEVEL = ("emsctl", "webui", "migrations")


def _files(top: str) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT / top):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        out.extend(Path(dirpath) / f for f in filenames if not f.endswith((".pyc", ".pyo")))
    return out


def test_every_directory_with_python_code_is_a_package_that_gets_installed() -> None:
    found = set(find_namespace_packages(str(ROOT), **SETUPTOOLS["packages"]["find"]))
    for top in TOP_LEVEL:
        for path in _files(top):
            if path.suffix == ".py":
                package = ".".join(path.parent.relative_to(ROOT).parts)
                assert package in found, f"{path.relative_to(ROOT)}: {package} is not installed"


def test_every_data_file_is_named_by_package_data() -> None:
    missing = []
    for top in TOP_LEVEL:
        patterns = SETUPTOOLS["package-data"].get(top, [])
        packaged = {p for pattern in patterns for p in (ROOT / top).glob(pattern)}
        missing += [
            str(p.relative_to(ROOT)) for p in _files(top) if p.suffix != ".py" and p not in packaged
        ]
    assert missing == [], f"not in pyproject.toml's package-data: {missing}"


def test_the_demo_config_is_inside_the_package() -> None:
    from emsctl.sim.demo import DEMO_CONFIG

    assert DEMO_CONFIG.is_file()
    assert DEMO_CONFIG.is_relative_to(ROOT / "emsctl")
