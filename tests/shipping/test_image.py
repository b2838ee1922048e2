"""The operator image, built here (scripts/build-image.sh: a Debian-package base from mmdebstrap,
then the Dockerfile with buildah) and run with podman on the local control plane: the containerised
`callplatform run`, as the chart's ServiceAccount, as UID 10001 on a read-only root filesystem,
reconciles examples/production.yaml to Ready."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, Release
from .operator_process import (
    free_port,
    http_get,
    platform_condition,
    production_example,
    service_account_kubeconfig,
    wait_for,
)

pytestmark = pytest.mark.cluster

IMAGE = "localhost/callplatform-operator:test"
READY_TIMEOUT = 240.0
# runc, not crun (this host's hybrid cgroups); no systemd or journald; explicit ulimits.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
RUN = [
    *PODMAN,
    *("run", "--network", "host", "--read-only", "--user", "10001"),
    *("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"),
]


@pytest.fixture(scope="module")
def operator_image() -> str:
    """The image, built by scripts/build-image.sh (the base and the layers are cached)."""
    for tool in ("buildah", "podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/install-system-deps.sh installs it)")
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-image.sh"), IMAGE],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    print(result.stdout)  # image size and build time
    assert re.search(r"^image size: \d+ MiB", result.stdout, re.MULTILINE), result.stdout
    assert result.stdout.strip().splitlines()[-1] == f"image={IMAGE}"
    return IMAGE


def run_in_image(image: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUN, "--rm", "--entrypoint", "/bin/sh", image, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(900)
def test_image_runs_as_10001_without_compiler_or_pip_on_a_read_only_root(operator_image: str) -> None:
    result = run_in_image(
        operator_image,
        "id -u; id -g; touch /opt/venv/x 2>/dev/null && echo writable || echo read-only;"
        " for tool in gcc cc g++ make pip pip3; do command -v $tool; done;"
        " python3 -m pip --version 2>/dev/null || echo no-pip;"
        " callplatform --help >/dev/null && echo cli-ok",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10001", "10001", "read-only", "no-pip", "cli-ok"], result.stdout
    entrypoint = subprocess.run(
        [
            *PODMAN,
            "image",
            "inspect",
            "--format",
            "{{json .Config.Entrypoint}} {{.Config.User}}",
            operator_image,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert entrypoint == '["callplatform","run"] 10001:10001'


@contextlib.contextmanager
def operator_container(image: str, kubeconfig: Path, http_port: int, *args: str) -> Iterator[str]:
    name = f"callplatform-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            *RUN,
            *("--detach", "--name", name),
            *("--volume", f"{kubeconfig}:/etc/callplatform/kubeconfig:ro"),
            *("--env", "KUBECONFIG=/etc/callplatform/kubeconfig"),
            image,
            *("--http-host", "127.0.0.1", "--http-port", str(http_port), *args),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    try:
        yield name
    finally:
        subprocess.run(
            [*PODMAN, "rm", "--force", "--time", "5", name], capture_output=True, timeout=60, check=False
        )


def container_logs(name: str) -> str:
    result = subprocess.run([*PODMAN, "logs", name], capture_output=True, text=True, timeout=60, check=False)
    return result.stdout + result.stderr


def container_state(name: str, field: str) -> str:
    """One field of the container's State ("Running", "ExitCode"), or "" when it is gone."""
    result = subprocess.run(
        [*PODMAN, "inspect", "--format", f"{{{{.State.{field}}}}}", name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout.strip()


@pytest.mark.timeout(900)
def test_containerised_operator_as_the_service_account_reconciles_to_ready(
    operator_image: str, kube_cluster: Any, cluster_wide_release: Release, namespace: str, tmp_path: Path
) -> None:
    release = cluster_wide_release
    kubeconfig = service_account_kubeconfig(
        kube_cluster, release.namespace, release.service_account, tmp_path / "operator.kubeconfig"
    )
    kubeconfig.chmod(0o644)  # read by UID 10001 in the container
    documents, secret_values = production_example(namespace)
    kube_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    port = free_port()
    flags = ("--all-namespaces", "--standalone", "--leader-elect", f"--lease-namespace={release.namespace}")
    with operator_container(operator_image, kubeconfig, port, *flags, "--identity=image-test") as name:
        try:
            wait_for(
                "Ready=True on the production example, from the container",
                lambda: (
                    container_state(name, "Running") == "true"
                    and platform_condition(kube_cluster, namespace, "production", "Ready") == "True"
                ),
                READY_TIMEOUT,
                interval=1.0,
            )
        except AssertionError:
            raise AssertionError("container log:\n" + container_logs(name)[-4000:]) from None
        assert http_get(port, "/healthz")[0] == 200
        assert http_get(port, "/readyz")[0] == 200
        log = container_logs(name)
        assert "403" not in log and "Forbidden" not in log, log[-4000:]
        assert "Traceback" not in log, log[-4000:]
        for value in secret_values.values():
            assert value not in log
        stop = subprocess.run(
            [*PODMAN, "stop", "--time", "30", name], capture_output=True, text=True, timeout=90, check=False
        )
        assert stop.returncode == 0, stop.stderr
        exit_code = container_state(name, "ExitCode")
    assert exit_code == "0", f"the operator did not exit cleanly on SIGTERM: {exit_code}"
