#!/usr/bin/env bash
# Regenerate the image's locked dependency sets from pyproject.toml (run after changing the
# project's dependencies; tests/shipping/test_dockerfile.py fails while the lock is stale).
# Needs uv (`pip install uv`); the resolution is universal, so the locks serve amd64 and arm64.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv=${UV:-uv}
common=(--universal --python-version 3.11 --generate-hashes --no-header --annotation-style line)
"$uv" pip compile "${common[@]}" pyproject.toml -o docker/requirements.lock
"$uv" pip compile "${common[@]}" docker/requirements-build.in -o docker/requirements-build.lock
