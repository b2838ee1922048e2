"""Run the whole test suite.

No collected test is a failure, never a vacuous pass, and so is a control-plane
process left running after the session: the fixtures must always clean up.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

CLUSTERS = Path(os.environ.get("CALLPLATFORM_CACHE", Path.home() / ".cache" / "callplatform")) / "clusters"


def leftover_cluster_processes(session_marker: str) -> list[str]:
    leftovers = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if session_marker in cmdline:
            leftovers.append(f"{proc.name}: {cmdline[:160]}")
    return leftovers


def main(argv: list[str]) -> int:
    code = pytest.main(argv)
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("run_tests: pytest collected no test; that is a failure, not a pass", file=sys.stderr)
        return 1
    leftovers = leftover_cluster_processes(str(CLUSTERS / f"cp-test-{os.getpid()}"))
    if leftovers:
        print("run_tests: the test cluster was not torn down:\n  " + "\n  ".join(leftovers), file=sys.stderr)
        return 1
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
