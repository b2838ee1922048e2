"""Input read like kubectl reads it: duplicate keys, unlistable directories, non-UTF-8 stdin, devices,
oversized inputs and merge keys are clean exit-2 errors (or fast), never a traceback or a silent skip."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rules_fixtures import EXAMPLES

from callplatform.inputs import MAX_INPUT_BYTES, MAX_MERGED_ENTRIES, InputError, load_manifests

WriteFile = Callable[[str, str], Path]
CLI = [str(Path(sys.executable).parent / "callplatform")]
PRODUCTION = (EXAMPLES / "production.yaml").read_text()


def _cli(
    *args: str, stdin: bytes | None = None, stdin_path: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    if stdin_path is not None:
        with open(stdin_path, "rb") as source:
            return subprocess.run([*CLI, *args], stdin=source, capture_output=True, timeout=60)
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, timeout=60)


def test_a_duplicate_key_is_an_input_error_naming_both_lines(write_file: WriteFile) -> None:
    text = PRODUCTION.replace(
        "  environment: production\n", "  environment: production\n  environment: development\n"
    )
    path = write_file("dup.yaml", text)
    first = text.splitlines().index("  environment: production") + 1
    with pytest.raises(InputError) as raised:
        load_manifests([str(path)])
    assert raised.value.line == first + 1
    assert f"first at line {first}" in raised.value.problem
    result = _cli("validate", str(path))
    assert result.returncode == 2
    assert b"duplicate mapping key" in result.stderr and b"Traceback" not in result.stderr


def test_the_same_key_in_two_mappings_is_fine(write_file: WriteFile) -> None:
    assert load_manifests([str(write_file("ok.yaml", PRODUCTION))])


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to drop root")
def test_an_unlistable_subdirectory_is_exit_2() -> None:
    # Run as an unprivileged user (root lists anything) on a tree it may enter, but not team-b.
    with tempfile.TemporaryDirectory(prefix="cp-unlistable-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        (root / "ok.yaml").write_text(PRODUCTION)
        locked = root / "team-b"
        locked.mkdir()
        (locked / "platform.yaml").write_text(PRODUCTION)
        locked.chmod(0)
        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if subprocess.run([*drop, *CLI, "--help"], capture_output=True, timeout=60, cwd="/").returncode != 0:
            pytest.skip("the unprivileged user cannot run this checkout's callplatform")
        result = subprocess.run([*drop, *CLI, "validate", tmp], capture_output=True, timeout=60, cwd="/")
        locked.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert b"team-b: cannot be listed: Permission denied" in result.stderr
    assert b"Traceback" not in result.stderr


def test_binary_stdin_is_a_clean_exit_2() -> None:
    result = _cli("validate", "-", stdin=b"kind: Secret\n\xff\xfe\x00binary")
    assert result.returncode == 2
    assert b"<stdin>:2: is not UTF-8 text" in result.stderr
    assert b"Traceback" not in result.stderr


def test_a_device_is_not_read(tmp_path: Path) -> None:
    result = _cli("validate", "/dev/zero")
    assert result.returncode == 2
    assert b"/dev/zero: is not a regular file" in result.stderr


def test_an_endless_stdin_stops_at_the_size_cap() -> None:
    result = _cli("validate", "-", stdin_path="/dev/zero")
    assert result.returncode == 2
    assert f"is larger than {MAX_INPUT_BYTES // 2**20} MiB".encode() in result.stderr


def test_an_oversized_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(MAX_INPUT_BYTES + 1)
    with pytest.raises(InputError) as raised:
        load_manifests([str(path)])
    assert "is larger than 8 MiB; split it into smaller files" in str(raised.value)


def _merge_chain(levels: int) -> str:
    lines = ["anchors:", "  a0: &a0 {k0: v}"]
    lines += [f"  a{i}: &a{i} {{<<: *a{i - 1}, k{i}: v}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n---\n" + PRODUCTION


def test_merge_keys_cost_the_size_of_the_result(write_file: WriteFile) -> None:
    """A 114 KB chain of merges took PyYAML 38 s; built from the merged mappings it is instant."""
    text = _merge_chain(3000)
    assert len(text.encode()) > 114_000
    path = write_file("merges.yaml", text)
    started = time.process_time()
    [loaded] = load_manifests([str(path)])
    assert time.process_time() - started < 5  # PyYAML: ~38 s; far from this bound either way
    assert loaded.platform.name == "production"


def test_merge_keys_keep_yaml_semantics(write_file: WriteFile) -> None:
    text = PRODUCTION.replace(
        "  calls:\n    image:",
        "  calls:\n    <<: [{replicas: 5, port: 8080}, {replicas: 7}]\n    port: 9090\n    image:",
    ).replace("    replicas: 2\n", "")
    [loaded] = load_manifests([str(write_file("merge.yaml", text))])
    assert loaded.platform.calls.replicas == 5  # the first mapping listed wins
    assert loaded.platform.calls.port == 9090  # an explicit key wins over merged ones


def test_merge_expansion_is_bounded_like_kubectls_alias_limit(write_file: WriteFile) -> None:
    with pytest.raises(InputError) as raised:
        load_manifests([str(write_file("bomb.yaml", _merge_chain(3500)))])  # 6 million merged entries
    assert f"merge keys (<<) expand to more than {MAX_MERGED_ENTRIES} entries" in str(raised.value)
