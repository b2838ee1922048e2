"""The calls Deployment and Service, the migration Job and the demo seed Job.

Every Secret value reaches the app through `secretKeyRef`; nothing secret is
copied into plain env or a ConfigMap. Pods follow the `restricted` Pod Security
profile. Job names are derived from a digest of their pod template, so the same
image and command always give the same Job and a second pass finds it instead
of creating another.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, cast

from callplatform.model import Platform, SecretKeyRef
from callplatform.render.labels import common_labels, metadata, object_name, selector_labels, short_hash
from callplatform.render.secrets import SecretValues, effective_ref

CALLS_CONTAINER = "calls"
SECRETS_CHECKSUM_ANNOTATION = "callplatform.io/secrets-checksum"
IMAGE_ANNOTATION = "callplatform.io/image"
RUN_AS_USER = 1000


def calls_name(platform: Platform) -> str:
    return object_name(platform, "calls")


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def _plain_env(name: str, value: str) -> dict[str, Any]:
    # The API server stores `value: ""` as no value at all; writing it would never match.
    return {"name": name, "value": value} if value else {"name": name}


_DECIMAL_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_MILLI = Decimal("1e-3")


def _parse_quantity(text: str) -> Decimal:
    # Imported here: the Kubernetes client takes most of a second to import, and `validate`
    # (which imports this package for its Secret helpers) never parses a quantity.
    from kubernetes.utils import parse_quantity

    return cast(Callable[[str], Decimal], parse_quantity)(text)


def canonical_quantity(raw: Any) -> Any:
    """A resource quantity as the API server writes it back (`resource.Quantity.String()`).

    1 -> "1", 0.5 -> "500m", "1024Mi" -> "1Gi", "1000m" -> "1", "1.5G" -> "1500M". The suffix
    family is kept (binary stays binary from 1Ki up, `e` notation stays `e`), the mantissa is
    the smallest integer with an exponent that is a multiple of 3 (of 10 bits for binary), and
    precision below 1m is rounded up (core/v1 defaulting rounds every ResourceList value up to
    milli), as the API server does. Anything that is not a quantity is
    returned unchanged, for the API server to reject.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return raw
    text = raw.strip() if isinstance(raw, str) else json.dumps(raw)
    try:
        value = Decimal(_parse_quantity(text))
    except (ValueError, InvalidOperation, ArithmeticError):
        return raw
    if not value.is_finite():
        return raw
    suffix = text.lstrip("+-0123456789.")
    value = (value / _MILLI).to_integral_value(rounding=ROUND_CEILING) * _MILLI
    if suffix.endswith("i") and abs(value) >= 1024 and value == value.to_integral_value():
        number, power = int(value), 0
        while number % 1024 == 0 and power < len(_BINARY_SUFFIXES) - 1:
            number, power = number // 1024, power + 1
        return f"{number}{_BINARY_SUFFIXES[power]}"
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)  # finite
    mantissa = int("".join(map(str, digits)))
    shift = exponent % 3
    mantissa, exponent = mantissa * 10**shift, exponent - shift
    if mantissa == 0:
        return "0"
    exponent_form = len(suffix) > 1 and suffix[0] in "eE"
    if exponent_form or exponent not in _DECIMAL_SUFFIXES:
        unit = f"{suffix[0] if exponent_form else 'e'}{exponent}" if exponent else ""  # 3E3 stays 3E3
    else:
        unit = _DECIMAL_SUFFIXES[exponent]
    return f"{'-' if sign else ''}{mantissa}{unit}"


def canonical_resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    """`resources` as the API server stores it: canonical quantities, no empty maps or lists."""
    out: dict[str, Any] = {}
    for key, value in resources.items():
        if key in ("requests", "limits") and isinstance(value, Mapping):
            value = {name: canonical_quantity(quantity) for name, quantity in value.items()}
        if value in ({}, [], None):
            continue
        out[key] = value
    return out


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# A read-only root filesystem still needs somewhere for npm and Node to write:
# an emptyDir private to the pod, not the node's /tmp.
_SCRATCH_DIR = "/tmp"  # noqa: S108
_SCRATCH_ENV = [_plain_env("HOME", _SCRATCH_DIR), _plain_env("npm_config_cache", f"{_SCRATCH_DIR}/.npm")]
_SCRATCH_MOUNT = {"name": "tmp", "mountPath": _SCRATCH_DIR}
_SCRATCH_VOLUME = {"name": "tmp", "emptyDir": {}}


def database_env(platform: Platform, secrets: SecretValues) -> list[dict[str, Any]]:
    return [_secret_env("DATABASE_URL", effective_ref(platform, platform.database.url_ref, secrets))]


# spec.calls.rateLimits -> the env var the app reads; unset limits add no variable (no rollout).
RATE_LIMIT_ENV = {
    ("starts", "per_user"): "CALLS_RATE_LIMIT_STARTS_PER_USER_PER_MINUTE",
    ("starts", "global"): "CALLS_RATE_LIMIT_STARTS_PER_MINUTE",
    ("joins", "per_user"): "CALLS_RATE_LIMIT_JOINS_PER_USER_PER_MINUTE",
    ("joins", "global"): "CALLS_RATE_LIMIT_JOINS_PER_MINUTE",
}


def rate_limit_env(platform: Platform) -> list[dict[str, Any]]:
    limits = platform.calls.rate_limits.by_event_and_scope()
    return [_plain_env(name, str(limits[key])) for key, name in RATE_LIMIT_ENV.items() if limits[key] > 0]


def app_env(platform: Platform, secrets: SecretValues, *, allow_demo_seed: bool) -> list[dict[str, Any]]:
    creds = platform.turn.credentials
    env = [
        *database_env(platform, secrets),
        _secret_env("JITSI_JWT_SECRET", effective_ref(platform, platform.jitsi.jwt.secret_ref, secrets)),
        _plain_env("JITSI_APP_ID", platform.jitsi.jwt.app_id),
        _plain_env("JITSI_DOMAIN", platform.jitsi.domain),
        _plain_env("JITSI_PUBLIC_HOST", platform.jitsi.public_host),
        _plain_env("TURN_HOST", platform.turn.host),
        _plain_env("TURN_PORT", str(platform.turn.port)),
        _plain_env("TURN_TLS_PORT", str(platform.turn.tls_port)),
    ]
    if creds.mode == "rest":
        env.append(
            _secret_env("TURN_SHARED_SECRET", effective_ref(platform, creds.shared_secret_ref, secrets))
        )
        env.append(_plain_env("TURN_CREDENTIAL_TTL_SECONDS", str(creds.rest_ttl_seconds)))
    else:
        env.append(_secret_env("TURN_USERNAME", creds.username_ref))
        env.append(_secret_env("TURN_PASSWORD", creds.password_ref))
    env.append(_plain_env("ALLOW_DEMO_SEED", "true" if allow_demo_seed else "false"))
    env.append(_plain_env("PORT", str(platform.calls.port)))
    env += rate_limit_env(platform)
    return env + _SCRATCH_ENV


def _pod_spec(platform: Platform, containers: list[dict[str, Any]], *, restart_policy: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": restart_policy,
        "securityContext": pod_security_context(),
        "containers": containers,
        "volumes": [_SCRATCH_VOLUME],
    }
    if platform.calls.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in platform.calls.image_pull_secrets]
    return spec


def _container(name: str, image: str, command: tuple[str, ...], env: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if command:  # the API server drops `command: []`; writing it would never match
        container["command"] = list(command)
    container.update(env=env, securityContext=container_security_context(), volumeMounts=[_SCRATCH_MOUNT])
    return container


def render_deployment(
    platform: Platform,
    secrets: SecretValues,
    *,
    image: str,
    secrets_checksum: str,
    allow_demo_seed: bool,
) -> dict[str, Any]:
    container = _container(
        CALLS_CONTAINER,
        image,
        platform.calls.command,
        app_env(platform, secrets, allow_demo_seed=allow_demo_seed),
    )
    container["ports"] = [{"name": "http", "containerPort": platform.calls.port, "protocol": "TCP"}]
    container["readinessProbe"] = {"tcpSocket": {"port": "http"}, "periodSeconds": 10}
    if platform.calls.liveness_probe_path:
        container["livenessProbe"] = liveness_probe(platform.calls.liveness_probe_path)
    resources = canonical_resources(platform.calls.resources)
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(platform, calls_name(platform), "calls"),
        "spec": {
            "replicas": platform.calls.replicas,
            "selector": {"matchLabels": selector_labels(platform, "calls")},
            "template": {
                "metadata": {
                    "labels": common_labels(platform, "calls"),
                    "annotations": {SECRETS_CHECKSUM_ANNOTATION: secrets_checksum},
                },
                "spec": _pod_spec(platform, [container], restart_policy="Always"),
            },
        },
    }


def liveness_probe(path: str) -> dict[str, Any]:
    """An HTTP GET on the app's port: a TCP check never restarts a process that hangs but still accepts.

    Written with the API server's defaults filled in, so the stored object matches what we render.
    """
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "initialDelaySeconds": 10,
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "successThreshold": 1,
        "failureThreshold": 3,
    }


def render_service(platform: Platform) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(platform, calls_name(platform), "calls"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(platform, "calls"),
            "ports": [{"name": "http", "port": platform.calls.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _job_template(platform: Platform, component: str, container: dict[str, Any]) -> dict[str, Any]:
    resources = canonical_resources(platform.calls.job_resources)
    if resources:  # bounded by default (model.DEFAULT_JOB_RESOURCES): a runaway Job cannot starve the node
        container["resources"] = resources
    return {
        "metadata": {"labels": common_labels(platform, component)},
        "spec": _pod_spec(platform, [container], restart_policy="Never"),
    }


def _job_name(platform: Platform, prefix: str, template: Mapping[str, Any]) -> str:
    """The pod template's digest: the same version always gives the same Job."""
    return object_name(platform, f"{prefix}-{short_hash(json.dumps(template, sort_keys=True))}")


def _job(platform: Platform, prefix: str, component: str, container: dict[str, Any]) -> dict[str, Any]:
    migration = platform.calls.migration
    template = _job_template(platform, component, container)
    name = _job_name(platform, prefix, template)
    job_metadata = metadata(platform, name, component)
    job_metadata["annotations"] = {IMAGE_ANNOTATION: container["image"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_metadata,
        "spec": {
            "backoffLimit": migration.backoff_limit,
            "activeDeadlineSeconds": migration.active_deadline_seconds,
            "ttlSecondsAfterFinished": migration.ttl_seconds_after_finished,
            "template": template,
        },
    }


def _migration_container(platform: Platform, secrets: SecretValues) -> dict[str, Any]:
    env = database_env(platform, secrets) + _SCRATCH_ENV
    return _container("migrate", platform.calls.image, platform.calls.migration.command, env)


def render_migration_job(platform: Platform, secrets: SecretValues) -> dict[str, Any]:
    return _job(platform, "migrate", "migration", _migration_container(platform, secrets))


def migration_job_name(platform: Platform, secrets: SecretValues) -> str:
    """The name `render_migration_job` gives the Job: what the reconciler decides migrations by,
    before it renders."""
    return _job_name(
        platform, "migrate", _job_template(platform, "migration", _migration_container(platform, secrets))
    )


def render_demo_seed_job(platform: Platform, secrets: SecretValues) -> dict[str, Any]:
    env = [*database_env(platform, secrets), _plain_env("ALLOW_DEMO_SEED", "true")]
    if platform.demo_seed.password_ref is not None:
        env.append(_secret_env("DEMO_USER_PASSWORD", platform.demo_seed.password_ref))
    container = _container("seed", platform.calls.image, platform.demo_seed.command, env + _SCRATCH_ENV)
    return _job(platform, "seed", "demo-seed", container)
