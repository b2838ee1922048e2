"""The control-plane build: generated staging replaces, version ldflags, and a cache that makes rebuilds free."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

CONTROLPLANE = Path(__file__).resolve().parents[1] / "controlplane"


def load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_kube_gomod", CONTROLPLANE / "gen_kube_gomod.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pinned(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", (CONTROLPLANE / "versions.env").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


SAMPLE_GOMOD = """module k8s.io/kubernetes

go 1.26.0

require k8s.io/api v0.0.0

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/other/thing => github.com/fork/thing v1.0.0
)
"""


def test_generator_maps_every_staging_module_to_its_published_version() -> None:
    gomod = load_generator().render_wrapper_gomod("v1.37.2", SAMPLE_GOMOD)
    assert "require k8s.io/kubernetes v1.37.2" in gomod
    assert "\tk8s.io/api v0.0.0 => k8s.io/api v0.37.2" in gomod
    assert "\tk8s.io/client-go v0.0.0 => k8s.io/client-go v0.37.2" in gomod
    assert "github.com/other/thing" not in gomod
    assert "go 1.26.0" in gomod


def test_generator_refuses_a_version_it_cannot_map() -> None:
    with pytest.raises(SystemExit):
        load_generator().render_wrapper_gomod("v2.0.0-rc.1", SAMPLE_GOMOD)


def test_committed_wrapper_replaces_exactly_the_staging_modules_of_the_pinned_release() -> None:
    generator = load_generator()
    version = pinned("KUBERNETES_VERSION")
    upstream = generator.download_kubernetes_gomod(version)
    expected = set(generator.render_wrapper_gomod(version, upstream).splitlines())
    committed = (CONTROLPLANE / "kube" / "go.mod").read_text()
    replaces = {line for line in committed.splitlines() if " v0.0.0 => " in line}
    assert replaces, "kube/go.mod has no staging replace lines"
    assert replaces == {line for line in expected if " v0.0.0 => " in line}
    assert f"k8s.io/kubernetes {version}" in committed


@pytest.mark.cluster
def test_a_second_build_uses_the_cache(kube_cluster: object) -> None:
    """The cluster fixture has built everything; building again must compile nothing."""
    result = subprocess.run(
        ["bash", str(CONTROLPLANE / "build.sh")], capture_output=True, text=True, check=True, timeout=120
    )
    assert "building" not in result.stderr, result.stderr
    steps = [
        line
        for line in (CONTROLPLANE / "build.sh").read_text().splitlines()
        if line.startswith("build_once ")
    ]
    assert len(steps) >= 4, steps
    assert result.stderr.count(": cached in ") == len(steps), result.stderr
    bin_dir = Path(result.stdout.strip().splitlines()[-1])
    for binary in (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
        "kwok",
        "kwokctl",
        "helm",
    ):
        assert (bin_dir / binary).exists(), binary
    version = subprocess.run(
        [str(bin_dir / "kube-apiserver"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.strip() == f"Kubernetes {pinned('KUBERNETES_VERSION')}"
