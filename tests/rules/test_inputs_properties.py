"""Property-based: whatever text a file holds, reading it either works or raises InputError."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from callplatform.inputs import InputError, load_env_file, load_manifests

YAML_PIECES = st.sampled_from(
    [
        "apiVersion: v1\n", "kind: Secret\n", "kind: CallPlatform\n", "apiVersion: callplatform.io/v1alpha1\n",
        "kind: List\n", "items:\n", "- ", "metadata: {name: s}\n", "metadata:\n  name: 7\n", "data:\n",
        "  K: aGVsbG8=\n", "  K: '%%'\n", "stringData:\n", "  K: 5\n", "spec:\n", "  jitsi: [1, 2]\n", "---\n",
        "&a ", "*a\n", "<<: *a\n", "{", "}", "[", "]", ":", "'", '"', "\t", "!!binary ", "!!python/object ", "2001-13-45", "2001-02-03", "1e999", "? [a]\n", "\n",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(YAML_PIECES, max_size=25).map("".join), st.text(max_size=200)))
def test_any_manifest_text_loads_or_raises_input_error(text: str) -> None:
    try:
        load_manifests(["-"], io.StringIO(text))
    except InputError as exc:
        assert exc.source == "<stdin>"
        assert str(exc).startswith("<stdin>")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_env_text_loads_or_raises_input_error(text: str) -> None:
    try:
        variables = load_env_file("-", io.StringIO(text))
    except InputError as exc:
        assert exc.line is not None and exc.line >= 1
    else:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in variables.items())
