"""Run every benchmark script bench/bench_*.py in turn (what `make bench` does).

Each script prints its own figures and exits non-zero when a target or a check fails; this
runner reports which ones did and exits non-zero if any did.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    only = set(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if s.stem in only or s.name in only]
    if not scripts:
        print("no benchmark scripts found (bench/bench_*.py)", file=sys.stderr)
        return 1
    failed: list[str] = []
    for script in scripts:
        print(f"=== {script.name}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        took = time.perf_counter() - t0
        status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        print(f"=== {script.name}: {status} in {took:.1f} s\n", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
