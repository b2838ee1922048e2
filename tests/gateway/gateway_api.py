"""The Gateway API standard-channel CRDs, from the Go module `sigs.k8s.io/gateway-api`.

`go mod download -json` fetches the module zip through the Go module proxy (the same path
the control plane's sources take); its `config/crd/standard/*.yaml` are copied into
~/.cache/callplatform/gateway-api/<version>/, so later runs need no network. The version is
pinned in tests/controlplane/versions.env.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "tests" / "controlplane" / "versions.env"
CACHE = Path(os.environ.get("CALLPLATFORM_CACHE", Path.home() / ".cache" / "callplatform")) / "gateway-api"
MODULE = "sigs.k8s.io/gateway-api"


def pinned_version() -> str:
    match = re.search(r"^GATEWAY_API_VERSION=(\S+)$", VERSIONS.read_text(), re.MULTILINE)
    assert match, f"GATEWAY_API_VERSION missing from {VERSIONS}"
    return match.group(1)


def standard_crds(version: str | None = None) -> list[Path]:
    """The standard channel's CRD files (CustomResourceDefinitions only), downloaded once per version."""
    version = version or pinned_version()
    target = CACHE / version
    done = target / ".done"
    if not done.exists():
        _download(version, target)
        done.touch()
    return sorted(target.glob("gateway.networking.k8s.io_*.yaml"))


def _download(version: str, target: Path) -> None:
    go = shutil.which("go")
    if go is None:
        raise FileNotFoundError("go not installed (needed to fetch the Gateway API CRDs)")
    with tempfile.TemporaryDirectory() as scratch:
        # Outside any module, so no go.mod is consulted or changed.
        result = subprocess.run(
            [go, "mod", "download", "-json", f"{MODULE}@{version}"],
            cwd=scratch, capture_output=True, text=True, check=False, timeout=300,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
        )  # fmt: skip
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or info.get("Error") or not info.get("Zip"):
        raise RuntimeError(f"go mod download {MODULE}@{version} failed: {info.get('Error') or result.stderr}")
    prefix = f"{MODULE}@{version}/config/crd/standard/"
    partial = target.with_name(target.name + ".tmp")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with zipfile.ZipFile(info["Zip"]) as archive:
        for member in archive.namelist():
            name = member.removeprefix(prefix)
            if member.startswith(prefix) and "/" not in name and name.endswith(".yaml"):
                text = archive.read(member).decode()
                if "kind: CustomResourceDefinition" in text:
                    (partial / name).write_text(text)
    if not any(partial.glob("*.yaml")):
        raise RuntimeError(f"no CRDs under {prefix} in {info['Zip']}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
