"""EMS: a PV self-consumption optimiser for one house (heat pump, hot water, two wallboxes)."""

import sys

__version__ = "0.1.0"

# httpx 0.28 imports its own command-line client (click, rich, pygments: about 6 MB resident)
# whenever rich is installed, and rich is, for our CLI tables. Nothing here runs the httpx
# CLI: a None entry makes httpx's `from ._main import main` fail as it does without rich,
# and httpx then defines a stub. (Its successor imports that module only for the CLI.)
# docs/performance.md, "Memory"; tests/unit/test_startup_imports.py checks it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
