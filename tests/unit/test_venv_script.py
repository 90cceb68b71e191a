"""tools/venv.sh, which `make` runs first: a broken or outdated environment is rebuilt, not reused.

The script is run on a scratch directory with stand-in interpreters on PATH, so that no test
installs anything: each case stops where the script would call pip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "venv.sh"


def _fake_python(path: Path, version: str) -> Path:
    """An 'interpreter' that only answers the version questions the script asks."""
    major, minor = (int(x) for x in version.split(".")[:2])
    old = (major, minor) < (3, 11)
    path.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *--version*) echo "Python {version}"; exit 0;; esac\n'
        f'case "$*" in *version_info*) exit {1 if old else 0};; esac\n'
        'case "$*" in "-c pass") exit 0;; esac\n'
        # Anything else (venv creation, pip): fail loudly, a test must not get this far.
        'echo "fake python: unexpected call: $*" >&2; exit 97\n'
    )
    path.chmod(0o755)
    return path


def _run(
    cwd: Path, *, python: str, path_dir: Path, kind: str = "dev"
) -> subprocess.CompletedProcess:
    # Only the stand-ins and the tools the script (and they) run: no real interpreter is found.
    for tool in ("rm", "touch", "grep", "mkdir", "cp"):
        link = path_dir / tool
        if not link.exists():
            link.symlink_to(shutil.which(tool) or f"/bin/{tool}")
    env = {
        "PATH": str(path_dir),
        "PYTHON": python,
        "VENV": ".venv",
        "HOME": str(cwd),
    }
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), kind],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "bin").mkdir()
    return tmp_path


def test_an_environment_made_with_an_old_python_is_rebuilt(project: Path) -> None:
    venv_bin = project / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    _fake_python(venv_bin / "python", "3.9.2")
    (project / ".venv" / ".installed-dev").touch()  # even a current stamp does not save it
    old = _fake_python(project / "bin" / "python3", "3.9.2")
    res = _run(project, python=str(old), path_dir=project / "bin")
    assert "rebuilding .venv: it was made with Python 3.9.2" in res.stderr
    assert not (project / ".venv").exists()
    # No new enough interpreter to rebuild with: one clear message, not a half-made .venv.
    assert res.returncode == 1
    assert "EMS needs Python 3.11 or newer" in res.stderr
    assert "make PYTHON=" in res.stderr


def test_an_environment_whose_last_install_failed_is_rebuilt(project: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True
    )
    (project / ".venv" / ".install-failed").touch()
    # The rebuild is then attempted with this (too old) interpreter and stops there.
    old = _fake_python(project / "bin" / "python3", "3.10.4")
    res = _run(project, python=str(old), path_dir=project / "bin")
    assert "rebuilding .venv: the last install into it failed" in res.stderr
    assert not (project / ".venv").exists()
    assert res.returncode == 1


def test_an_environment_without_pip_or_with_a_dead_interpreter_is_rebuilt(project: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True
    )
    old = _fake_python(project / "bin" / "python3", "3.10.4")
    res = _run(project, python=str(old), path_dir=project / "bin")
    assert "rebuilding .venv: it has no working pip" in res.stderr

    venv_bin = project / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").unlink(missing_ok=True)
    (venv_bin / "python").symlink_to(project / "gone" / "python3.12")
    res = _run(project, python=str(old), path_dir=project / "bin")
    assert "rebuilding .venv: .venv/bin/python is missing" in res.stderr


def test_an_old_default_python_is_passed_over_for_a_newer_one_on_path(project: Path) -> None:
    old = _fake_python(project / "bin" / "python3", "3.9.2")
    _fake_python(project / "bin" / "python3.12", "3.12.7")
    res = _run(project, python=str(old), path_dir=project / "bin", kind="run")
    assert "creating .venv with python3.12 (Python 3.12.7)" in res.stderr
    # The stand-in cannot make a venv (exit 97): the script stops there instead of going on.
    assert res.returncode == 97
    assert "unexpected call: -m venv .venv" in res.stderr


def test_unknown_kind_is_refused(project: Path) -> None:
    res = _run(project, python="python3", path_dir=project / "bin", kind="everything")
    assert res.returncode == 2
    assert "usage:" in res.stderr


def test_a_failed_install_is_reported_and_marked_for_a_rebuild(project: Path) -> None:
    """pip's status survives the output filter; index noise is dropped, its error kept."""
    fake = project / "bin" / "python3.12"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *--version*) echo "Python 3.12.7"; exit 0;; esac\n'
        'case "$*" in *version_info*|"-c pass") exit 0;; esac\n'
        'case "$*" in "-m venv "*) mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0;; esac\n'
        'case "$*" in *"pip --version"*) exit 0;; esac\n'
        'case "$*" in *"pip "*install*)\n'
        "  echo \"WARNING: Location 'file:///x' is ignored: "
        'it is neither a file nor a directory"\n'
        '  echo "ERROR: Could not find a version that satisfies the requirement"; exit 1;;\n'
        "esac\n"
        "exit 97\n"
    )
    fake.chmod(0o755)
    res = _run(project, python=str(fake), path_dir=project / "bin", kind="run")
    assert res.returncode == 1
    out = res.stdout + res.stderr
    assert "ERROR: Could not find a version" in out
    assert "is ignored" not in out
    assert "upgrading pip in .venv failed; .venv will be rebuilt on the next run" in res.stderr
    assert (project / ".venv" / ".install-failed").exists()
    assert not (project / ".venv" / ".installed-run").exists()
