"""The repository stands alone: nothing in it reads or points to files outside the checkout.

A public clone has only this repository, so a path to a sibling directory (device samples or
scenarios kept next to the checkout) would make tests, benchmarks or docs fail there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
#: Directories that are not the project's own text: tools' caches and the environment.
SKIP_DIRS = {".git", ".venv", "build", "dist", "__pycache__", ".mypy_cache", ".ruff_cache"}
SKIP_DIRS |= {".pytest_cache", ".hypothesis", "artifacts"}
BINARY_SUFFIXES = {".gz", ".png", ".jpg", ".ico", ".woff", ".woff2", ".db", ".pyc", ".sqlite"}
#: A reference to a directory beside the checkout, or to documents that live only there.
#: (Written in pieces, so that this file names no outside path itself.)
_SIB = "sha" + "red"
OUTSIDE = re.compile(
    rf"\.\./{_SIB}|/work/|\b{_SIB}/(fixtures|scenarios)|['\"]{_SIB}['\"]\s*/"
    r"|PROTOCOLS\.md|DESIGN\.md"
)


def _project_files() -> list[Path]:
    """The files of the project: tracked or new, not ignored (git), else a walk of the tree."""
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        out = subprocess.run(
            [git, "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = [ROOT / name for name in out.split("\0") if name]
    else:
        paths = list(ROOT.rglob("*"))
    files = []
    for path in paths:
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if rel.name.startswith(".coverage"):
            continue
        if path.is_file() and path.suffix not in BINARY_SUFFIXES:
            files.append(path)
    return files


def test_no_file_refers_outside_the_checkout() -> None:
    offenders = []
    for path in _project_files():
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "references outside the repository:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_guards_against() -> None:
    sibling = _SIB
    for line in (
        f'YEAR = ROOT.parent / "{sibling}" / "scenarios" / "year_2026.csv.gz"',
        f"see ../{sibling}/fixtures/README.md",
        "Built from " + "PROTOCOLS" + ".md section 1",
        f"read /work/{sibling}/scenarios/year_2026.csv.gz",
    ):
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search("the shared compressor of the heat pump")


@pytest.mark.parametrize(
    "relative",
    [
        "tests/fixtures/README.md",
        "tests/fixtures/shelly",
        "tests/fixtures/viessmann",
        "tests/fixtures/prometheus",
        "tests/fixtures/forecast_solar",
        "tests/fixtures/scenarios/truth/s8_data_gaps_truth.csv",
        "bench/data/year_2026.csv.gz",
        "bench/data/README.md",
    ],
)
def test_the_data_the_tests_and_benchmarks_read_is_in_the_repository(relative: str) -> None:
    assert (ROOT / relative).exists(), relative


def test_every_fixture_file_has_its_provenance_listed() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    samples = [p for p in FIXTURES.rglob("*.json") if SCENARIOS not in p.parents]
    assert samples
    missing = [p.name for p in samples if p.name not in readme]
    assert not missing, f"not described in tests/fixtures/README.md: {missing}"
