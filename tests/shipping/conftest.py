"""Fixtures for the shipping tests: the Helm binary built from its Go module, and chart rendering."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "callplatform-operator"
KUBE_VERSION = "1.37.2"  # tests/controlplane/versions.env

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


def helm_path() -> Path | None:
    """Helm from tests/controlplane/build.sh (or $CALLPLATFORM_HELM), if it has been built."""
    candidates = [
        os.environ.get("CALLPLATFORM_HELM", ""),
        str(
            Path(os.environ.get("CALLPLATFORM_CACHE", Path.home() / ".cache" / "callplatform"))
            / "bin/current/helm"
        ),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def helm() -> Path:
    path = helm_path()
    if path is None:
        pytest.skip("helm is not built: run tests/controlplane/build.sh (or set CALLPLATFORM_HELM)")
    return path


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
