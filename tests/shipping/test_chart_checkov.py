"""checkov (PyPI) on the chart: its Kubernetes checks on `helm template` output for the default and
every ci/ value set, and its own Helm scan of the chart directory. Every failed check is either fixed
or listed with a reason in charts/checkov-skips.txt; a scan that ran no check fails (symlinks once
made checkov's Helm scan skip every file and report 0 checks with exit code 0)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHART, REPO, _helm_env, run_helm

pytestmark = pytest.mark.tools

SKIPS_FILE = REPO / "charts" / "checkov-skips.txt"


def skips() -> dict[str, str]:
    """check id -> the reason it is skipped."""
    found = {}
    for line in SKIPS_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            check, _, reason = line.partition(" ")
            found[check] = reason.strip()
    return found


@pytest.fixture(scope="module")
def checkov() -> Path:
    """checkov in its own virtualenv under the cache (scripts/install-checkov.sh; cached)."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-checkov.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"checkov is not installed: scripts/install-checkov.sh failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def scan(checkov: Path, helm: Path, framework: str, directory: Path) -> list[dict[str, Any]]:
    """checkov's JSON report(s) for one framework over a directory, offline (--skip-download)."""
    env = _helm_env()
    env["PATH"] = f"{helm.parent}{os.pathsep}{env['PATH']}"  # the Helm scan runs `helm template`
    result = subprocess.run(
        [
            str(checkov),
            *("--skip-download", "--output", "json"),
            *("--framework", framework, "--directory", str(directory)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=directory,
    )
    assert result.returncode in (0, 1), result.stderr[-4000:]  # 1: some check failed
    assert "symbolic link" not in result.stderr
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def failed_and_passed(reports: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    failed = [check for report in reports for check in report["results"]["failed_checks"]]
    passed = [check for report in reports for check in report["results"]["passed_checks"]]
    return failed, passed


@pytest.fixture(scope="module")
def rendered(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`helm template` output (no --kube-version) for the default and every ci/ value set."""
    out = tmp_path_factory.mktemp("rendered")
    value_files = sorted((CHART / "ci").glob("*-values.yaml"))
    assert value_files
    for name, extra in [("default", []), *((path.stem, ["--values", str(path)]) for path in value_files)]:
        result = run_helm(
            helm, "template", "cp", str(CHART), "--namespace", "callplatform-system", "--include-crds", *extra
        )
        (out / f"{name}.yaml").write_text(result.stdout)
    return out


def describe(failed: list[dict[str, Any]]) -> str:
    return "\n".join(f"{c['check_id']} {c['check_name']} ({c['file_path']}: {c['resource']})" for c in failed)


def test_skip_file_gives_a_reason_for_each_check() -> None:
    listed = skips()
    assert listed
    for check, reason in listed.items():
        assert re.fullmatch(r"CKV2?_K8S_\d+", check), check
        assert len(reason) > 20, f"{check}: say why it is skipped"


@pytest.fixture(scope="module")
def kubernetes_scan(checkov: Path, helm: Path, rendered: Path) -> list[dict[str, Any]]:
    return scan(checkov, helm, "kubernetes", rendered)


@pytest.fixture(scope="module")
def helm_scan(checkov: Path, helm: Path) -> list[dict[str, Any]]:
    return scan(checkov, helm, "helm", CHART)


def test_kubernetes_checks_on_every_rendered_value_set(
    kubernetes_scan: list[dict[str, Any]], rendered: Path
) -> None:
    failed, passed = failed_and_passed(kubernetes_scan)
    per_file = {Path(check["file_path"]).name for check in passed}
    assert per_file == {path.name for path in rendered.glob("*.yaml")}, "every value set was scanned"
    assert len(passed) > 100
    unexplained = [check for check in failed if check["check_id"] not in skips()]
    assert not unexplained, "fix these or list them in charts/checkov-skips.txt:\n" + describe(unexplained)


def test_checkovs_helm_scan_reads_the_chart(helm_scan: list[dict[str, Any]]) -> None:
    failed, passed = failed_and_passed(helm_scan)
    assert len(passed) > 50, "checkov's Helm scan ran (almost) no check"
    unexplained = [check for check in failed if check["check_id"] not in skips()]
    assert not unexplained, "fix these or list them in charts/checkov-skips.txt:\n" + describe(unexplained)


def test_no_skip_is_stale(kubernetes_scan: list[dict[str, Any]], helm_scan: list[dict[str, Any]]) -> None:
    failed = failed_and_passed(kubernetes_scan)[0] + failed_and_passed(helm_scan)[0]
    stale = set(skips()) - {check["check_id"] for check in failed}
    assert not stale, f"these checks pass now; remove them from charts/checkov-skips.txt: {sorted(stale)}"
