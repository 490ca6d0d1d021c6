"""`make bench`: runs every bench/bench_*.py in turn and prints their figures.

Each benchmark is a standalone script that sets up what it measures (on PostgreSQL and Redis when
DATABASE_URL / REDIS_URL are set, which most targets assume), talks only to this machine, stops by
itself, prints a summary, and writes its figures to bench/out/<name>.json.
Run one: `make bench BENCH_ARGS=numbers` (names match bench_<name>.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(selected: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if selected:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in selected]
    (HERE / "out").mkdir(exist_ok=True)
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        print(f"--- {script.stem}: exit {result.returncode} in {time.monotonic() - started:.1f}s", flush=True)
        if result.returncode:
            failed.append(script.stem)
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
