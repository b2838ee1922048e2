"""Run the whole test suite; no collected test is a failure, never a vacuous pass."""

from __future__ import annotations

import sys

import pytest

NO_TESTS_COLLECTED = pytest.ExitCode.NO_TESTS_COLLECTED


def main(argv: list[str]) -> int:
    code = pytest.main(argv)
    if code == NO_TESTS_COLLECTED:
        print("run_tests: pytest collected no test; that is a failure, not a pass", file=sys.stderr)
        return 1
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
