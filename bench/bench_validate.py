"""How fast `callplatform validate` judges a repository of 500 manifests.

Generates 500 files (a Secret and a CallPlatform each, a third of them broken) in a temporary
directory, then measures, in one run:
  1. in-process `validate` over the directory (load + rules), best of N;
  2. the same with PyYAML's pure-Python loader instead of libyaml (why inputs.py prefers libyaml);
  3. the rules engine alone on already-parsed platforms;
  4. one `callplatform validate DIR` process (what a pipeline pays, interpreter start included);
  5. one `callplatform validate FILE` process per file, timed on a sample and scaled to 500.
Prints figures and ratios; asserts nothing. Caches that remember judged values across runs
(the secret-strength cache) are cleared before every repetition, so each figure is a first look.

By default the same measurements also run, in the same invocation and on the same generated
files, with the code of BASELINE_COMMIT (the commit before issue 10's trust boundary, extracted
with `git archive` into a temporary directory and run with PYTHONPATH=<it>/operator), and both
columns are printed side by side with their ratio. `--compare DIR` measures another checkout
instead (e.g. `git worktree add /tmp/base cf9d820`); `--no-compare` measures this one alone.
Issue 10's goal: in-process validate within 1.10x of the baseline.

    .venv/bin/python bench/bench_validate.py [--files 500] [--repeat 5] [--sample 10] [--compare DIR]
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

import callplatform.inputs as inputs
from callplatform.commands.validate import collect_findings
from callplatform.rules import check_platform

ROOT = Path(__file__).resolve().parent.parent
# The commit before issue 10 (cf21566, "Trust boundary") changed validate: the figure not to exceed.
BASELINE_COMMIT = "cf9d820"
GOAL_RATIO = 1.10

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: calls-secrets-{i}
stringData:
  DATABASE_URL: "postgresql://calls:Zr8pQ2vLx7Nd{i:04d}@db-{i}.calls.svc:5432/calls?sslmode={sslmode}"
  JITSI_JWT_SECRET: "{jwt}"
  TURN_USERNAME: "calls"
  TURN_PASSWORD: "Tp9Lk3Mn7Bv2Cx5Zq8W-{i}"
"""
PLATFORM = """\
apiVersion: callplatform.io/v1alpha1
kind: CallPlatform
metadata:
  name: platform-{i}
spec:
  environment: {environment}
  jitsi:
    domain: meet-{i}.internal.example
    publicHost: meet-{i}.example.com
    jwt:
      appId: calls
      secretRef: {{name: calls-secrets-{i}, key: JITSI_JWT_SECRET}}
  turn:
    host: turn-{i}.example.com
    credentials:
      mode: static
      secretRef: {{name: calls-secrets-{i}, usernameKey: TURN_USERNAME, passwordKey: TURN_PASSWORD}}
    relay:
      allowedPeerCIDRs: [{cidrs}]
  database:
    urlSecretRef: {{name: calls-secrets-{i}, key: DATABASE_URL}}
  calls:
    image: registry.example.com/calls-backend:1.4.{i}
    replicas: 2
    resources:
      requests: {{cpu: 250m, memory: 256Mi}}
  demoSeed:
    enabled: false
"""


def generate(directory: Path, count: int) -> None:
    environments = ("production", "staging", "development")
    for i in range(count):
        broken = i % 3 == 0
        text = SECRET.format(
            i=i,
            sslmode="disable" if broken else "require",
            jwt="short" if broken else f"S3cr3t-JWT-value-Wq9Xe4Rt7Yu2Io5Pa8-{i:06d}",
        )
        text += "---\n" + PLATFORM.format(
            i=i,
            environment=environments[i % 3],
            cidrs='"10.0.0.0/8"' if broken else '"203.0.113.0/24"',
        )
        (directory / f"platform-{i:04d}.yaml").write_text(text, encoding="utf-8")


def extract_commit(commit: str, target: Path) -> None:
    """The commit's operator/ tree, from this repository, into target (no worktree, no checkout)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "operator"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def _clear_value_caches() -> None:
    try:
        secret_values = importlib.import_module("callplatform.rules.secret_values")
    except ImportError:  # an older checkout has no such cache
        return
    getattr(secret_values, "_CACHE", {}).clear()


def best_of(repeat: int, action: Callable[[], object]) -> tuple[float, float, object]:
    """Best wall time, median CPU time of this process (the work, whatever else the machine runs)."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        _clear_value_caches()
        started, started_cpu = time.perf_counter(), time.process_time()
        result = action()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return min(wall), statistics.median(cpu), result


def cli(*argv: str) -> tuple[float, float]:
    """Wall time and CPU time (user + system of the child) of one `callplatform validate` process."""
    before = os.times()
    started = time.perf_counter()
    command = [sys.executable, "-m", "callplatform.cli", "validate", "--format", "json", *argv]
    subprocess.run(command, capture_output=True, check=False)  # PYTHONPATH picks the checkout
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def measure(directory: Path, n: int, repeat: int, sample: int) -> dict[str, object]:
    tmp = str(directory)
    full_best, full_cpu, findings = best_of(repeat, lambda: collect_findings([tmp], [], None)[0])
    assert isinstance(findings, list)

    fast_loader = inputs._Loader
    inputs._Loader = yaml.SafeLoader
    try:
        py_best, py_cpu, _ = best_of(max(1, repeat // 2), lambda: collect_findings([tmp], [], None)[0])
    finally:
        inputs._Loader = fast_loader

    loaded = inputs.load_manifests([tmp])
    rules_best, rules_cpu, _ = best_of(
        repeat, lambda: [check_platform(item.platform, item.secrets) for item in loaded]
    )

    one_process = min(cli(tmp) for _ in range(2))
    files = sorted(directory.glob("*.yaml"))[:sample]
    per_file_runs = [cli(str(path)) for path in files]
    per_file = (
        sum(w for w, _ in per_file_runs) / len(files) * n,
        sum(c for _, c in per_file_runs) / len(files) * n,
    )
    errors = sum(1 for f in findings if f.severity == "error")
    return {
        "findings": len(findings),
        "errors": errors,
        "rows": [
            ("in-process validate (libyaml loader + rules)", full_best, full_cpu),
            ("in-process validate (pure-Python YAML loader)", py_best, py_cpu),
            ("rules engine only (platforms already parsed)", rules_best, rules_cpu),
            ("one `callplatform validate DIR` process", *one_process),
            (f"one process per file (mean of {len(files)}, x{n})", *per_file),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sample", type=int, default=10, help="files for the per-file CLI estimate")
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help=f"measure the checkout in DIR instead of {BASELINE_COMMIT}, side by side",
    )
    parser.add_argument("--no-compare", action="store_true", help="measure this checkout alone")
    parser.add_argument("--directory", help=argparse.SUPPRESS)  # --compare's child: measure these files
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.directory:
        figures = measure(Path(args.directory), args.files, args.repeat, args.sample)
        print(json.dumps(figures))
        return

    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        directory = Path(tmp) / "manifests"
        directory.mkdir()
        generate(directory, args.files)
        n = args.files
        other, compared = None, args.compare
        if compared is None and not args.no_compare:
            compared = str(Path(tmp) / f"baseline-{BASELINE_COMMIT}")
            extract_commit(BASELINE_COMMIT, Path(compared))
        if compared:
            env = {**os.environ, "PYTHONPATH": str(Path(compared).resolve() / "operator")}
            command = [sys.executable, __file__, "--directory", str(directory), "--files", str(n)]
            command += ["--repeat", str(args.repeat), "--sample", str(args.sample)]
            child = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            other = json.loads(child.stdout.splitlines()[-1])
        figures = measure(directory, n, args.repeat, args.sample)

    print(
        f"validate over {n} manifests ({n} CallPlatforms + {n} Secrets, {figures['findings']} findings, "
        f"{figures['errors']} errors)"
    )
    if other is not None:
        label = compared if args.compare else f"{BASELINE_COMMIT} (before issue 10)"
        print(f"compared with {label}: {other['findings']} findings, {other['errors']} errors")
        print(f"{'measurement (CPU median)':<52} {'this':>10} {'compared':>10} {'ratio':>7}")
        for (label, _, cpu), (_, _, other_cpu) in zip(figures["rows"], other["rows"], strict=True):  # type: ignore[call-overload]
            print(f"{label:<52} {cpu * 1000:>8.1f}ms {other_cpu * 1000:>8.1f}ms {cpu / other_cpu:>6.2f}x")
        print(f"{'measurement (wall best)':<52} {'this':>10} {'compared':>10} {'ratio':>7}")
        for (label, wall, _), (_, other_wall, _) in zip(figures["rows"], other["rows"], strict=True):  # type: ignore[call-overload]
            print(f"{label:<52} {wall * 1000:>8.1f}ms {other_wall * 1000:>8.1f}ms {wall / other_wall:>6.2f}x")
        ratio = figures["rows"][0][2] / other["rows"][0][2]  # type: ignore[index]
        verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(
            f"goal: in-process validate (CPU) within {GOAL_RATIO:.2f}x of the baseline: {ratio:.2f}x, {verdict}"
        )
        print()
    rows = figures["rows"]
    print(f"{'measurement':<52} {'wall best':>10} {'CPU median':>11} {'CPU/file':>10}")
    for label, wall, cpu in rows:  # type: ignore[attr-defined]
        print(f"{label:<52} {wall * 1000:>8.1f}ms {cpu * 1000:>9.1f}ms {cpu / n * 1e6:>8.1f}us")
    full_cpu, py_cpu, rules_cpu = rows[0][2], rows[1][2], rows[2][2]  # type: ignore[index]
    print()
    print(f"ratio pure-Python loader / libyaml loader (CPU):     {py_cpu / full_cpu:6.1f}x")
    print(f"ratio one process per file / one for the dir (CPU):  {rows[4][2] / rows[3][2]:6.1f}x")  # type: ignore[index]
    print(f"share of in-process CPU spent in the rules:          {rules_cpu / full_cpu:6.1%}")
    print(f"load average during the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
