#!/usr/bin/env python3
"""Copy the CRD and the alert rules into the Helm chart.

The repository keeps one source of each: crds/callplatform.io_callplatforms.yaml and
ops/prometheus/*.yaml. The chart carries generated copies (not symlinks, which make every helm
command warn and which checkov's Helm scan silently skips). Run this after editing either source;
tests/shipping/test_chart_sync.py fails while a copy has drifted.

    python scripts/sync_chart.py          # write the copies
    python scripts/sync_chart.py --check  # exit 1 and name the drifted files
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python scripts/sync_chart.py"


def mirrors(repo: Path) -> dict[Path, tuple[Path, str]]:
    """chart directory -> (source directory, file pattern) of the files it mirrors."""
    chart = repo / "charts" / "callplatform-operator"
    return {
        chart / "crds": (repo / "crds", "*.yaml"),
        chart / "files" / "prometheus": (repo / "ops" / "prometheus", "*.yaml"),
    }


def header(repo: Path, source: Path) -> bytes:
    relative = source.relative_to(repo)
    return f"# GENERATED from {relative} by `{COMMAND}`: edit that file, not this copy.\n".encode()


def expected_files(repo: Path) -> dict[Path, bytes]:
    """Every file the mirrored chart directories should hold, with its content."""
    return {
        target / source.name: header(repo, source) + source.read_bytes()
        for target, (source_dir, pattern) in mirrors(repo).items()
        for source in sorted(source_dir.glob(pattern))
    }


def drift(repo: Path = REPO) -> list[str]:
    """What differs between the chart's copies and their sources (empty when in sync)."""
    expected = expected_files(repo)
    problems = []
    for path, content in expected.items():
        if path.is_symlink():
            problems.append(f"{path.relative_to(repo)} is a symlink")
        elif not path.is_file():
            problems.append(f"{path.relative_to(repo)} is missing")
        elif path.read_bytes() != content:
            problems.append(f"{path.relative_to(repo)} differs from its source")
    for target in mirrors(repo):
        if target.is_symlink():
            problems.append(f"{target.relative_to(repo)} is a symlink")
            continue
        for path in sorted(target.glob("*")) if target.is_dir() else []:
            if path not in expected:
                problems.append(f"{path.relative_to(repo)} has no source")
    return problems


def sync(repo: Path = REPO) -> list[Path]:
    """Write the copies; remove symlinks and files whose source is gone. Returns what changed."""
    expected = expected_files(repo)
    changed = []
    for target in mirrors(repo):
        if target.is_symlink():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(target.glob("*")):
            if path not in expected:
                path.unlink()
                changed.append(path)
    for path, content in expected.items():
        if path.is_symlink():
            path.unlink()
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        problems = drift()
        for problem in problems:
            print(f"sync_chart: {problem}", file=sys.stderr)
        if problems:
            print(f"sync_chart: run `{COMMAND}`", file=sys.stderr)
        return 1 if problems else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for path in sync():
        print(f"sync_chart: wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
