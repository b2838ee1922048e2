"""The fault suite (tests/chaos/) with large counts, printing each fault's figures.

The test command runs tests/chaos/ with small counts; this runs the same tests with the issue's:
20 SIGKILLs of `callplatform run` while 20 platforms roll out, 20 leader SIGKILLs among two
`--leader-elect` replicas during a rollout of 20 platforms, a 60 s kube-apiserver pause, and 20
platforms edited during a running migration. Each test prints one `chaos:` line (kills survived,
duplicate migration Jobs, recovery times); the lines are repeated at the end.

    .venv/bin/python bench/bench_chaos.py [--kills 20] [--platforms 20] [--pause-seconds 60] [-k EXPR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--platforms", type=int, default=20)
    parser.add_argument("--pause-seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("-k", default="", help="pytest -k expression, to run some of the faults")
    args = parser.parse_args()
    env = {
        **os.environ,
        "CHAOS_KILLS": str(args.kills),
        "CHAOS_PLATFORMS": str(args.platforms),
        "CHAOS_PAUSE_SECONDS": str(args.pause_seconds),
        "CHAOS_SEED": str(args.seed),
    }
    command = [sys.executable, "-m", "pytest", "tests/chaos", "-s", "-q", "-p", "no:cacheprovider",
               "-o", "timeout=3600", *(["-k", args.k] if args.k else [])]  # fmt: skip
    print(f"bench_chaos: kills {args.kills}, platforms {args.platforms}, pause {args.pause_seconds:.0f}s; "
          f"loadavg {' '.join(f'{x:.2f}' for x in os.getloadavg())}, nproc {os.cpu_count()}", flush=True)  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr[-4000:])
    figures = [line for line in result.stdout.splitlines() if "chaos: " in line]
    print("\n".join(["", "figures:", *figures]))
    print(f"loadavg at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
