"""The CRD's schema and operator/callplatform/model.py describe the same fields with the same defaults."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from rules_fixtures import CRD_FILE, EXAMPLES, valid_manifest

from callplatform.model import parse_platform
from callplatform.rules.coturn_conf import MAX_REALM_LENGTH
from callplatform.rules.text_fields import REALM_CRD_PATTERN, REALM_FIELD, TEXT_FIELDS
from callplatform.rules.values import DENIED_PEER_RANGES

# Fields the model takes as a whole (copied into the Deployment), so it reads none of their keys.
OPAQUE = {"spec.calls.resources", "spec.calls.jobResources", "spec.turn.server.resources"}


def crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))


def spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]


def schema_paths(schema: Mapping[str, Any], prefix: str) -> Iterator[str]:
    for name, child in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        yield path
        if child.get("type") == "array":
            yield from schema_paths(child.get("items", {}), f"{path}[]")
        else:
            yield from schema_paths(child, path)


class Recorder(dict[str, Any]):
    """A dict that records every key the model reads, with its dotted path."""

    def __init__(self, data: Mapping[str, Any], path: str, seen: set[str]) -> None:
        super().__init__({k: wrap(v, f"{path}.{k}", seen) for k, v in data.items()})
        self.path, self.seen = path, seen

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.seen.add(f"{self.path}.{key}")
        return super().get(key, default)


def wrap(value: Any, path: str, seen: set[str]) -> Any:
    if isinstance(value, Mapping):
        return Recorder(value, path, seen)
    if isinstance(value, list):
        return [wrap(item, f"{path}[]", seen) for item in value]
    return value


def everything_manifest() -> dict[str, Any]:
    """A manifest that sets every field of the schema (objects for objects, one item for arrays)."""

    def fill(schema: Mapping[str, Any]) -> Any:
        kind = schema.get("type")
        if kind == "object" and "properties" in schema:
            return {name: fill(child) for name, child in schema["properties"].items()}
        if kind == "array":
            return [fill(schema.get("items", {}))]
        return {"integer": 1, "boolean": True, "object": {}}.get(kind or "", "x")

    return {"metadata": {"name": "n"}, "spec": fill(spec_schema())}


def test_every_field_the_model_reads_is_in_the_crd() -> None:
    seen: set[str] = set()
    parse_platform(wrap(everything_manifest(), "", seen))
    read = {path.lstrip(".") for path in seen if path.startswith(".spec.")}
    assert read - set(schema_paths(spec_schema(), "spec")) == set()


def test_every_crd_field_is_read_by_the_model() -> None:
    seen: set[str] = set()
    parse_platform(wrap(everything_manifest(), "", seen))
    read = {path.lstrip(".") for path in seen}
    unread = {
        path
        for path in schema_paths(spec_schema(), "spec")
        if path not in read and not any(path.startswith(f"{opaque}.") for opaque in OPAQUE)
    }
    assert unread == set()


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """Structural defaulting as the API server does it: absent fields get their default, recursively."""
    if isinstance(value, dict) and "properties" in schema:
        for name, child in schema["properties"].items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                value[name] = apply_defaults(value[name], child)
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def minimal_manifest() -> dict[str, Any]:
    return {
        "metadata": {"name": "m"},
        "spec": {
            "jitsi": {"domain": "meet.internal.example", "publicHost": "meet.example.com"},
            "turn": {"host": "turn.example.com"},
            "calls": {"image": "calls:1"},
            "demoSeed": {"passwordSecretRef": {}},
            "database": {"callLog": {}},
        },
    }


def test_crd_defaults_are_the_model_defaults() -> None:
    minimal = minimal_manifest()
    defaulted = copy.deepcopy(minimal)
    defaulted["spec"] = apply_defaults(defaulted["spec"], spec_schema())
    assert defaulted != minimal  # the schema does default something
    assert parse_platform(defaulted) == parse_platform(minimal)


def test_examples_and_fixture_fit_the_schema_types() -> None:
    """Every field in the examples exists in the CRD (the cluster test checks them against the API server)."""
    known = set(schema_paths(spec_schema(), "spec"))
    docs = [valid_manifest()]
    for path in EXAMPLES.glob("*.yaml"):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "CallPlatform"]

    def paths(value: Any, prefix: str) -> Iterator[str]:
        if isinstance(value, Mapping):
            for key, child in value.items():
                yield f"{prefix}.{key}"
                if f"{prefix}.{key}" not in OPAQUE:
                    yield from paths(child, f"{prefix}.{key}")
        elif isinstance(value, list):
            for item in value:
                yield from paths(item, f"{prefix}[]")

    for doc in docs:
        assert set(paths(doc["spec"], "spec")) - known == set(), doc["metadata"]["name"]


def test_printer_columns_and_names() -> None:
    document = crd()
    names = document["spec"]["names"]
    assert (names["plural"], names["shortNames"], names["categories"]) == (
        "callplatforms",
        ["cp"],
        ["callplatforms", "calls"],
    )
    version = document["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Environment", "Ready", "Jitsi", "TURN", "Reason", "Age"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions", "findings", "appliedImage", "migratedImage", "health"} <= set(
        status
    )
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_crd_cel_ranges_are_the_rules_ranges() -> None:
    """The API server refuses (in production) the same ranges CP008 reports: the one deny list."""
    text = CRD_FILE.read_text(encoding="utf-8")
    cel_list = re.search(r"\[('0\.0\.0\.0/8'.*?)\]\.all", text, re.DOTALL)
    assert cel_list is not None
    cel_ranges = set(re.findall(r"'([^']+)'", cel_list.group(1)))
    assert cel_ranges == {cidr for cidr, _ in DENIED_PEER_RANGES}


def _field_schema(path: str) -> dict[str, Any]:
    node = spec_schema()
    for part in path.removeprefix("spec.").split("."):
        node = node["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            node = node["items"]
    return node


def test_every_text_field_has_the_rules_pattern_and_length_in_the_crd() -> None:
    """CP019 and `kubectl apply` refuse the same values: one table (rules/text_fields.py)."""
    fields = [(f.path, f.pattern, f.max_length) for f in TEXT_FIELDS if f.path.startswith("spec.")]
    for path, pattern, max_length in [*fields, (REALM_FIELD, REALM_CRD_PATTERN, MAX_REALM_LENGTH)]:
        schema = _field_schema(path)
        assert schema.get("maxLength") == max_length, path
        rules = [v["rule"] for v in schema.get("x-kubernetes-validations", [])]
        assert rules == [f"self.matches(r'{pattern}')"], path
        messages = [v["message"] for v in schema["x-kubernetes-validations"]]
        assert all(m.startswith("CP019: ") for m in messages), path


def test_every_string_in_the_spec_is_bounded_or_judged() -> None:
    """No free-text spec field escapes the table: each string is an enum, a host, a CIDR or in it."""
    judged = {f.path for f in TEXT_FIELDS if f.path.startswith("spec.")} | {REALM_FIELD}
    other_rules = {
        "spec.environment",  # enum
        "spec.jitsi.domain",  # CP011 hostname
        "spec.jitsi.publicHost",  # CP007
        "spec.turn.host",  # CP007
        "spec.turn.probeHost",  # CP011 hostname
        "spec.turn.credentials.mode",  # enum
        "spec.turn.relay.allowedPeerCIDRs[]",  # CP011 isCIDR, CP008
        "spec.turn.server.mode",  # enum
        "spec.turn.server.service.type",  # enum
        "spec.turn.server.image.digest",  # CP011 sha256 digest
        "spec.turn.server.externalIP",  # CP011 isIP
    }

    def strings(schema: Mapping[str, Any], prefix: str) -> Iterator[str]:
        for name, child in schema.get("properties", {}).items():
            path = f"{prefix}.{name}"
            if child.get("type") == "string":
                yield path
            elif child.get("type") == "array" and child.get("items", {}).get("type") == "string":
                yield f"{path}[]"
            elif child.get("type") == "array":
                yield from strings(child.get("items", {}), f"{path}[]")
            else:
                yield from strings(child, path)

    assert set(strings(spec_schema(), "spec")) == judged | other_rules
