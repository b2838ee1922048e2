"""Fixtures for the shipping tests: the Helm binary built from its Go module, and chart rendering."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "callplatform-operator"
KUBE_VERSION = "1.37.2"  # tests/controlplane/versions.env

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def helm() -> Path:
    """Helm built from its Go module by tests/controlplane/build.sh (a no-op on a warm cache),
    or $CALLPLATFORM_HELM."""
    override = os.environ.get("CALLPLATFORM_HELM", "")
    if override:
        return Path(override)
    sys.path.insert(0, str(REPO / "tests" / "controlplane"))
    import localcluster

    return Path(localcluster.build_binaries()) / "helm"


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False, env=_helm_env()
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def _helm_env() -> dict[str, str]:
    # Keep helm away from the user's config, cache and repositories.
    env = dict(os.environ)
    home = Path(os.environ.get("PYTEST_HELM_HOME", "/tmp/callplatform-shipping-helm-home"))
    for key, sub in (
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ):
        env[key] = str(home / sub)
    return env


def template(
    helm: Path,
    values: Mapping[str, Any] | None,
    tmp_path: Path,
    *extra: str,
    namespace: str = "callplatform-system",
) -> subprocess.CompletedProcess[str]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(dict(values or {})))
    return run_helm(
        helm,
        "template",
        "cp",
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        "--values",
        str(values_file),
        *extra,
        check=False,
    )


@pytest.fixture
def render(helm: Path, tmp_path: Path) -> Render:
    """Render the chart with some values; fail the test if helm refuses."""

    def _render(
        values: Mapping[str, Any] | None = None, *extra: str, namespace: str = "callplatform-system"
    ) -> list[Manifest]:
        result = template(helm, values, tmp_path, *extra, namespace=namespace)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj.get("kind") == kind]


def one(objects: list[Manifest], kind: str) -> Manifest:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


# --- the chart installed into the local control plane (tests marked `cluster`) -------------------

PSA_RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    watch_namespaces: tuple[str, ...]

    @property
    def fullname(self) -> str:
        return f"{self.name}-callplatform-operator"

    @property
    def service_account(self) -> str:
        return self.fullname

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def create_namespace(cluster: Any, name: str, labels: Mapping[str, str] | None = None) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(labels or {})},
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))


@contextlib.contextmanager
def installed_release(
    cluster: Any, tmp_dir: Path, name: str, values: Mapping[str, Any], watch_namespaces: tuple[str, ...] = ()
) -> Iterator[Release]:
    """`helm install --wait` of the packaged chart into a fresh namespace that enforces the
    restricted Pod Security profile."""
    helm_binary = Path(cluster.bin_dir) / "helm"
    release = Release(name, f"{name}-{uuid.uuid4().hex[:6]}", watch_namespaces)
    create_namespace(cluster, release.namespace, PSA_RESTRICTED)
    for watched in watch_namespaces:
        create_namespace(cluster, watched)
    values_file = tmp_dir / f"{name}-values.yaml"
    values_file.write_text(yaml.safe_dump({**values, "watchNamespaces": list(watch_namespaces)}))
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", release.namespace)
    # Install the packaged chart, as a chart repository would serve it.
    package_dir = tmp_dir / f"{name}-package"
    run_helm(helm_binary, "package", str(CHART), "--destination", str(package_dir))
    (package,) = package_dir.glob("callplatform-operator-*.tgz")
    try:
        run_helm(
            helm_binary,
            "install",
            name,
            str(package),
            *kube,
            "--values",
            str(values_file),
            "--wait",
            "--timeout",
            "180s",
        )
        yield release
    finally:
        run_helm(helm_binary, "uninstall", name, *kube, "--wait", "--timeout", "60s", check=False)
        for namespace in (release.namespace, *watch_namespaces):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="session")
def cluster_wide_release(kube_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """The chart with its default values: all namespaces, two replicas, leader election."""
    with installed_release(kube_cluster, tmp_path_factory.mktemp("helm"), "cpall", {}) as release:
        yield release


@pytest.fixture(scope="session")
def namespaced_release(kube_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """The chart watching one namespace: Roles only."""
    watched = (f"watched-{uuid.uuid4().hex[:6]}",)
    values = {"replicaCount": 1}
    with installed_release(kube_cluster, tmp_path_factory.mktemp("helm"), "cpns", values, watched) as release:
        yield release
