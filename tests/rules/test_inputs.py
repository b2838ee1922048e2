"""Loading manifests (files, directories, stdin, multi-document, Secrets) and env files."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from rules_fixtures import EXAMPLES, GOOD_SECRETS, valid_manifest

from callplatform.inputs import InputError, load_env_file, load_manifests

WriteFile = Callable[[str, str], Path]


def secret_yaml(
    name: str = "calls-secrets", data: dict[str, str] | None = None, string_data: str = ""
) -> str:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()}
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}
    return yaml.safe_dump(doc) + string_data


def platform_yaml() -> str:
    manifest = valid_manifest()
    del manifest["metadata"]["namespace"]
    return yaml.safe_dump(manifest)


def test_multi_document_file_with_data_and_string_data(write_file: WriteFile) -> None:
    secret = secret_yaml(data={"DATABASE_URL": GOOD_SECRETS["DATABASE_URL"]})
    secret += "stringData:\n  TURN_PASSWORD: 'from-string-data'\n"
    path = write_file("all.yaml", f"{secret}---\n{platform_yaml()}")
    [loaded] = load_manifests([str(path)])
    assert loaded.platform.name == "calls"
    assert loaded.secrets["calls-secrets"] == {
        "DATABASE_URL": GOOD_SECRETS["DATABASE_URL"],
        "TURN_PASSWORD": "from-string-data",
    }
    assert loaded.location == f"{path}:{secret.count(chr(10)) + 2}"


def test_string_data_wins_over_data_for_the_same_key(write_file: WriteFile) -> None:
    text = secret_yaml(data={"K": "from-data"}, string_data="stringData:\n  K: from-string-data\n")
    path = write_file("s.yaml", f"{text}---\n{platform_yaml()}")
    assert load_manifests([str(path)])[0].secrets["calls-secrets"]["K"] == "from-string-data"


def test_directory_is_read_recursively_and_skips_hidden_and_other_files(write_file: WriteFile) -> None:
    write_file("repo/platforms/a.yaml", platform_yaml())
    write_file("repo/secrets/s.yml", secret_yaml(data={"A": "1"}))
    write_file("repo/README.md", "not: yaml: at: all: [")
    write_file("repo/.git/broken.yaml", "{{{")
    write_file("repo/other.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
    [loaded] = load_manifests([str(write_file("repo/platforms/a.yaml", platform_yaml()).parent.parent)])
    assert loaded.secrets == {"calls-secrets": {"A": "1"}}


def test_stdin_and_list_kind(write_file: WriteFile) -> None:
    items = [yaml.safe_load(platform_yaml()), yaml.safe_load(secret_yaml(data={"A": "1"}))]
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})
    [loaded] = load_manifests(["-"], io.StringIO(text))
    assert loaded.location.startswith("<stdin>:")
    assert loaded.secrets == {"calls-secrets": {"A": "1"}}


def test_secrets_of_other_namespaces_are_not_visible(write_file: WriteFile) -> None:
    manifest = valid_manifest()  # namespace team-a
    other = secret_yaml(name="calls-secrets").replace(
        "name: calls-secrets", "name: calls-secrets\n  namespace: b"
    )
    path = write_file("ns.yaml", f"{yaml.safe_dump(manifest)}---\n{other}")
    assert load_manifests([str(path)])[0].secrets == {}


def test_examples_load() -> None:
    loaded = load_manifests([str(EXAMPLES)])
    assert sorted(item.platform.name for item in loaded) == ["broken", "production", "staging"]
    staging = next(item for item in loaded if item.platform.name == "staging")
    assert staging.secrets["calls-secrets-staging"]["DATABASE_URL"].startswith("postgresql://")


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "invalid YAML"),
        ("kind: Secret\n\tapiVersion: v1\n", 2, "invalid YAML"),
        ("a: 1\n---\nkey: 'unterminated\n", 4, "invalid YAML"),
        ("a: 1\nb:\n  c: 2001-13-45\n", 3, "invalid YAML value"),
        ("a: !!python/name:os.system ''\n", 1, "invalid YAML value"),
        ("? [a, b]\n: 1\n", 1, "invalid YAML value"),
        ("a: " + "[" * 999 + "]" * 999 + "\n", 1, "invalid YAML value: nested too deeply"),
        ("a: " + "[" * 1200 + "]" * 1200 + "\n", 1, "invalid YAML: exceeded maximum nesting depth"),
    ],
)
def test_malformed_yaml_names_file_and_line(
    write_file: WriteFile, text: str, line: int, problem: str
) -> None:
    path = write_file("bad.yaml", text)
    with pytest.raises(InputError) as raised:
        load_manifests([str(path)])
    assert raised.value.source == str(path)
    assert raised.value.line == line
    assert str(raised.value).startswith(f"{path}:{line}: {problem}")


def test_bad_base64_names_the_key_line_but_not_its_value(write_file: WriteFile) -> None:
    text = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n"
        "  GOOD: aGVsbG8=\n  BAD: 'not base64 SuperSecretValue!'\n"
    )
    path = write_file("secret.yaml", text)
    with pytest.raises(InputError) as raised:
        load_manifests([str(path)])
    assert raised.value.line == 6
    assert "'BAD' is not valid base64" in str(raised.value)
    assert "SuperSecretValue" not in str(raised.value)


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("data: [a, b]\n", 4, "Secret data must be a mapping"),
        ("stringData:\n  PORT: 5432\n", 5, "Secret stringData key 'PORT' must be a string"),
    ],
)
def test_malformed_secret_shapes(write_file: WriteFile, body: str, line: int, problem: str) -> None:
    path = write_file("s.yaml", f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n{body}")
    with pytest.raises(InputError, match=problem) as raised:
        load_manifests([str(path)])
    assert raised.value.line == line


def test_unreadable_inputs(write_file: WriteFile, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot be read"):
        load_manifests([str(tmp_path / "missing.yaml")])
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        load_manifests([str(binary)])


def test_env_file_parses_quotes_export_and_comments(write_file: WriteFile) -> None:
    path = write_file(
        ".env",
        "# checklist\nexport DATABASE_URL='postgresql://u:p@h/db'\n"
        'JITSI_JWT_SECRET="with # hash and spaces"\nEMPTY=\nBARE\nREF=${DATABASE_URL}\n',
    )
    assert load_env_file(str(path)) == {
        "DATABASE_URL": "postgresql://u:p@h/db",
        "JITSI_JWT_SECRET": "with # hash and spaces",
        "EMPTY": "",
        "BARE": "",
        "REF": "${DATABASE_URL}",
    }


def test_malformed_env_file_names_file_and_line_without_content(write_file: WriteFile) -> None:
    path = write_file("bad.env", 'A=1\nB=2\nTURN_PASSWORD="unterminated S3cretValue\nC=3\n')
    with pytest.raises(InputError) as raised:
        load_env_file(str(path))
    assert raised.value.line == 3
    assert str(raised.value) == f"{path}:3: cannot parse this line as KEY=VALUE"


def test_anchors_merge_keys_and_yaml_types_load_like_pyyaml(write_file: WriteFile) -> None:
    text = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: calls-secrets}\n"
        "stringData: &common\n  A: 'yes'\n  B: '0x10'\n---\n"
        "apiVersion: callplatform.io/v1alpha1\nkind: CallPlatform\nmetadata: {name: p}\n"
        "spec:\n  defaults: &d {replicas: 3, port: 0x10, allowUnsafeInlineStyles: off}\n"
        "  calls:\n    <<: *d\n    image: 'calls:1'\n"
    )
    [loaded] = load_manifests([str(write_file("anchors.yaml", text))])
    assert loaded.secrets["calls-secrets"] == {"A": "yes", "B": "0x10"}
    calls = loaded.platform.calls
    assert (calls.replicas, calls.port, calls.allow_unsafe_inline_styles, calls.image) == (
        3,
        16,
        False,
        "calls:1",
    )


def test_alias_bomb_is_cheap_and_recursive_alias_is_refused(write_file: WriteFile) -> None:
    # Eleven levels of ten aliases each would be 10**12 strings if aliases were expanded.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 12)]
    assert load_manifests([str(write_file("bomb.yaml", "\n".join(lines) + "\n"))]) == []
    with pytest.raises(InputError, match="invalid YAML value"):
        load_manifests([str(write_file("loop.yaml", "kind: Secret\nspec: &s [*s]\n"))])
