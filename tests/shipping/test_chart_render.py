"""The Helm chart, offline: helm lint, schema validation of the rendered objects for several value
sets, least-privilege RBAC, the restricted pod, and one source of truth for the CRD and the alerts."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .conftest import CHART, REPO, Manifest, Render, of_kind, one, run_helm, template

pytestmark = pytest.mark.tools

KUBE_SCHEMA_VERSION = "1.37.0"


def example_values(name: str) -> dict[str, Any]:
    """The chart's example value sets, charts/callplatform-operator/ci/<name>-values.yaml."""
    values: dict[str, Any] = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())
    return values


NAMESPACED_MONITORED = example_values("namespaced-monitored")
HIGH_AVAILABILITY = example_values("high-availability")
CUSTOM_IMAGE_AND_RESOURCES = example_values("custom-image-and-resources")
VALUE_SETS = {
    "default": {},
    "namespaced-monitored": NAMESPACED_MONITORED,
    "high-availability": HIGH_AVAILABILITY,
    "custom-image-and-resources": CUSTOM_IMAGE_AND_RESOURCES,
}
# Kinds that come from CRDs kubernetes-validate has no schema for; checked by shape below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate", "deletecollection", "delete"}
# `update` (a full replace) only where nothing else works: the Lease and the owner finalizers.
UPDATABLE = {"leases", "callplatforms/finalizers"}
CLUSTER_SCOPED_READS = {("apiextensions.k8s.io", "customresourcedefinitions")}


def rbac_rules(objects: list[Manifest], kind: str) -> list[dict[str, Any]]:
    return [rule for role in of_kind(objects, kind) for rule in role["rules"]]


def test_helm_lint_passes_for_every_value_set(helm: Path, tmp_path: Path) -> None:
    for name, values in VALUE_SETS.items():
        values_file = tmp_path / f"{name}.yaml"
        values_file.write_text(yaml.safe_dump(values))
        result = run_helm(helm, "lint", str(CHART), "--strict", "--values", str(values_file), check=False)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_rendered_objects_validate_against_kubernetes_schemas(render: Render, value_set: str) -> None:
    objects = render(VALUE_SETS[value_set], "--include-crds")
    validated = 0
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBE_SCHEMA_VERSION, strict=True)
        validated += 1
    assert validated >= 5
    kinds = {obj["kind"] for obj in objects}
    assert {"CustomResourceDefinition", "Deployment", "Service"} <= kinds


def test_kubernetes_validate_catches_an_invalid_object() -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two"},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_SCHEMA_VERSION, strict=True)


def test_optional_objects_are_off_by_default(render: Render) -> None:
    kinds = {obj["kind"] for obj in render()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget"}


def test_service_monitor_scrapes_the_metrics_port(render: Render) -> None:
    objects = render(NAMESPACED_MONITORED)
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["callplatform-system"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def prometheus_rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted((REPO / "ops" / "prometheus").glob("*.yaml")):
        document = yaml.safe_load(path.read_text()) or {}
        groups.extend(document.get("groups", []))
    return groups


def test_prometheus_rule_carries_exactly_the_ops_prometheus_rules(render: Render) -> None:
    rule = one(render(NAMESPACED_MONITORED), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    expected = prometheus_rule_groups()
    assert expected, "ops/prometheus/ holds rule groups"
    assert rule["spec"]["groups"] == expected
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for alert in group["rules"]:
            assert ("alert" in alert) != ("record" in alert)
            assert isinstance(alert["expr"], str | int)


def test_helm_lint_and_template_print_no_symlink_warning(helm: Path) -> None:
    lint = run_helm(helm, "lint", str(CHART), "--strict")
    # No --kube-version: helm's own version ldflags make it report a current Kubernetes.
    rendered = run_helm(helm, "template", "cp", str(CHART), "--include-crds")
    for result in (lint, rendered):
        assert "symbolic link" not in result.stdout + result.stderr, result.stderr
    assert "kind: CustomResourceDefinition" in rendered.stdout


def test_helm_knows_its_own_version(helm: Path) -> None:
    versions = (REPO / "tests" / "controlplane" / "versions.env").read_text()
    (wanted,) = re.findall(r"^HELM_VERSION=(\S+)$", versions, re.MULTILINE)
    version = run_helm(helm, "version", "--short").stdout.strip()
    assert version.split("+")[0] == wanted, version


def test_packaged_chart_holds_the_same_crd_and_rules(helm: Path, tmp_path: Path) -> None:
    run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("callplatform-operator-*.tgz")
    with tarfile.open(package) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    unpacked = tmp_path / "unpacked" / "callplatform-operator"
    crd = unpacked / "crds" / "callplatform.io_callplatforms.yaml"
    assert yaml.safe_load(crd.read_text()) == yaml.safe_load(
        (REPO / "crds" / "callplatform.io_callplatforms.yaml").read_text()
    )
    sources = sorted((REPO / "ops" / "prometheus").glob("*.yaml"))
    assert sources
    for source in sources:
        packaged = unpacked / "files" / "prometheus" / source.name
        assert yaml.safe_load(packaged.read_text()) == yaml.safe_load(source.read_text())
    assert not (unpacked / "ci").exists()


def test_rendered_crd_is_the_repository_crd(render: Render) -> None:
    source = yaml.safe_load((REPO / "crds" / "callplatform.io_callplatforms.yaml").read_text())
    rendered = [
        obj
        for obj in render({}, "--include-crds")
        if obj["kind"] == "CustomResourceDefinition" and obj["spec"]["group"] == "callplatform.io"
    ]
    assert rendered == [source]


def assert_least_privilege(rule: dict[str, Any]) -> None:
    assert not FORBIDDEN_VERBS & set(rule["verbs"]), rule
    assert "*" not in rule["apiGroups"] and "*" not in rule["resources"], rule
    if "update" in rule["verbs"]:
        assert set(rule["resources"]) <= UPDATABLE, rule
    assert not {"roles", "clusterroles", "rolebindings", "clusterrolebindings", "pods/exec"} & set(
        rule["resources"]
    ), rule


def test_cluster_wide_rbac_is_least_privilege(render: Render) -> None:
    objects = render()
    (role,) = of_kind(objects, "ClusterRole")
    for rule in role["rules"]:
        assert_least_privilege(rule)
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                if (group, resource) in CLUSTER_SCOPED_READS:
                    assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
    (binding,) = of_kind(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cp-callplatform-operator", "namespace": "callplatform-system"}
    ]
    (lease_role,) = of_kind(objects, "Role")
    assert lease_role["metadata"]["namespace"] == "callplatform-system"
    assert lease_role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["callplatform-operator"],
            "verbs": ["get", "update"],
        }
    ]
    lease = one(objects, "Lease")
    assert lease["metadata"]["name"] == "callplatform-operator"
    assert lease["metadata"]["namespace"] == "callplatform-system"


def test_watch_list_rbac_is_namespaced_roles_only(render: Render) -> None:
    objects = render(NAMESPACED_MONITORED)
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    roles = {
        (role["metadata"]["namespace"], role["metadata"]["name"]): role for role in of_kind(objects, "Role")
    }
    assert sorted(roles) == [
        ("callplatform-system", "cp-callplatform-operator-leader-election"),
        ("team-a", "cp-callplatform-operator"),
        ("team-b", "cp-callplatform-operator"),
    ]
    bindings = sorted(b["metadata"]["namespace"] for b in of_kind(objects, "RoleBinding"))
    assert bindings == ["callplatform-system", "team-a", "team-b"]
    for role in roles.values():
        for rule in role["rules"]:
            assert_least_privilege(rule)
            assert "customresourcedefinitions" not in rule["resources"]
            if "namespaces" in rule["resources"]:  # its own namespace's Pod Security label, never a list
                assert rule["resources"] == ["namespaces"] and rule["verbs"] == ["get"]
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--all-namespaces" not in args


def test_secrets_access_is_read_and_write_without_delete(render: Render) -> None:
    for values in VALUE_SETS.values():
        objects = render(values)
        secret_rules = [
            rule
            for kind in ("Role", "ClusterRole")
            for rule in rbac_rules(objects, kind)
            if "secrets" in rule["resources"]
        ]
        assert secret_rules
        verbs = set().union(*(set(rule["verbs"]) for rule in secret_rules))
        assert verbs == {"get", "list", "watch", "create", "patch"}


def pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_operator_pod_follows_the_restricted_profile(render: Render, value_set: str) -> None:
    spec = pod_spec(render(VALUE_SETS[value_set]))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    dockerfile_user = re.findall(r"^USER (\d+):(\d+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)[-1]
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == tuple(
        int(part) for part in dockerfile_user
    )
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert set(container["resources"]["requests"]) >= {"cpu", "memory"}
        assert "memory" in container["resources"]["limits"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["port"] == "http"
        # The only writable mount is an in-memory emptyDir.
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for mount in container.get("volumeMounts", []):
            if not mount.get("readOnly"):
                assert volumes[mount["name"]]["emptyDir"]["medium"] == "Memory", mount
    assert "hostNetwork" not in spec and "hostPID" not in spec


def test_operator_args_follow_the_values(render: Render) -> None:
    default = pod_spec(render())["containers"][0]
    assert (
        default["image"]
        == "ghcr.io/callplatform/callplatform-operator:"
        + yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    )
    assert "--all-namespaces" in default["args"]
    # The image's entrypoint is `callplatform run`: the chart passes only its flags.
    assert all(arg.startswith("--") for arg in default["args"])
    assert 'ENTRYPOINT ["callplatform", "run"]' in (REPO / "Dockerfile").read_text()
    assert "--leader-elect" in default["args"] and "--lease-namespace=callplatform-system" in default["args"]
    env = {item["name"]: item for item in default["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "--http-port=8080" in default["args"]
    custom = pod_spec(render(CUSTOM_IMAGE_AND_RESOURCES))
    container = custom["containers"][0]
    assert container["image"] == "registry.example.com/platform/callplatform-operator@sha256:" + "ab" * 32
    assert "--standalone" in container["args"] and "--leader-elect" not in container["args"]
    assert "--verbose" in container["args"]
    assert not of_kind(render(CUSTOM_IMAGE_AND_RESOURCES), "Lease")
    assert container["ports"][0]["containerPort"] == 9090
    assert custom["serviceAccountName"] == "platform-operator"


def test_custom_values_drop_the_service_account_but_bind_the_named_one(render: Render) -> None:
    objects = render(CUSTOM_IMAGE_AND_RESOURCES)
    assert not of_kind(objects, "ServiceAccount")
    (binding,) = of_kind(objects, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == "platform-operator"


def test_high_availability_values(render: Render) -> None:
    objects = render(HIGH_AVAILABILITY)
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--lease-duration-seconds=20", "--renew-deadline-seconds=12", "--retry-period-seconds=3"} <= set(
        args
    )
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"replicaCount": 0}, "replicaCount"),
        ({"replicaCuont": 2}, "replicaCuont"),
        ({"watchNamespaces": ["Team_A"]}, "watchNamespaces"),
        ({"image": {"repository": "x", "digest": "latest"}}, "digest"),
        ({"logLevel": "verbose"}, "logLevel"),
        ({"resources": {"requests": {"cpu": "lots", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}, "cpu"),
        ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "needs leaderElection.enabled=true"),
        ({"leaderElection": {"renewDeadlineSeconds": 20}}, "renewDeadlineSeconds must be below"),
        ({"leaderElection": {"retryPeriodSeconds": 10}}, "retryPeriodSeconds must be below"),
        ({"replicaCount": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 2}}, "minAvailable"),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_value(
    helm: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    result = template(helm, values, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def permissions_the_code_uses() -> set[tuple[str, str, str]]:
    """(api group, resource, verb) for every request the operator's code makes in a watched namespace."""
    from callplatform import handlers, kube

    used: set[tuple[str, str, str]] = set()
    for (api_version, kind), resource in kube.RESOURCES.items():
        group = api_version.split("/")[0] if "/" in api_version else ""
        if kind == "Event":
            used.add((group, resource.plural, "create"))  # Kube.post_event
        elif kind == "Namespace":
            used.add((group, resource.plural, "get"))  # the Pod Security label (managed coturn)
        elif kind == "CallPlatform":
            used |= {(group, resource.plural, "get"), (group, resource.plural, "list")}  # read, resync
            used.add((group, f"{resource.plural}/status", "patch"))  # Kube.patch_status
        else:
            # Kube.get, and Kube.apply: a server-side apply PATCH that creates what is missing.
            used |= {(group, resource.plural, verb) for verb in ("get", "create", "patch")}
    owned = handlers.OWNED_KINDS + handlers.OPTIONAL_OWNED_KINDS
    watched = [(group, plural) for group, _, plural in owned]
    watched += [(handlers.GROUP, handlers.PLURAL), ("", "secrets")]  # kopf's watches
    used |= {(group, plural, verb) for group, plural in watched for verb in ("list", "watch")}
    # Implied rather than called: blockOwnerDeletion on owner references (see _rbac.tpl).
    used.add(("callplatform.io", "callplatforms/finalizers", "update"))
    return used


def test_namespaced_rules_are_exactly_what_the_code_uses(render: Render) -> None:
    objects = render(NAMESPACED_MONITORED)
    role = next(r for r in of_kind(objects, "Role") if r["metadata"]["namespace"] == "team-a")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    used = permissions_the_code_uses()
    assert not used - granted, f"the operator needs more than the chart grants: {sorted(used - granted)}"
    assert not granted - used, f"the chart grants what the operator never uses: {sorted(granted - used)}"
