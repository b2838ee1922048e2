"""Pure render functions: a Platform and its Secret values in, Kubernetes manifests out.

The operator and `callplatform render` both call `render_platform`, so what a
reviewer sees offline is what the operator applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callplatform.model import Platform
from callplatform.render.coturn_server import CoturnObjects, render_coturn
from callplatform.render.gateway_route import render_gateway_route
from callplatform.render.ice_servers import render_ice_servers_secret
from callplatform.render.secrets import (
    SecretValues,
    effective_secrets,
    render_generated_secret,
    secrets_checksum,
)
from callplatform.render.security_headers import render_security_headers_configmap
from callplatform.render.turnserver import render_turn_config_secret, render_turnserver_conf
from callplatform.render.workloads import (
    render_demo_seed_job,
    render_deployment,
    render_migration_job,
    render_service,
)

Manifest = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DesiredObjects:
    generated_secret: Manifest | None
    turn_config_secret: Manifest
    ice_servers_secret: Manifest
    security_headers: Manifest
    service: Manifest
    migration_job: Manifest
    deployment: Manifest | None
    demo_seed_job: Manifest | None
    secrets_checksum: str
    gateway_route: Manifest | None = None  # spec.gateway with a parent Gateway
    coturn: CoturnObjects | None = None  # spec.turn.server.managed

    def objects(self) -> list[Manifest]:
        """Every object in the order the operator applies them (migration before the Deployment)."""
        ordered = [
            self.generated_secret,
            self.turn_config_secret,
            *(self.coturn.objects() if self.coturn is not None else []),
            self.ice_servers_secret,
            self.security_headers,
            self.service,
            self.gateway_route,
            self.migration_job,
            self.deployment,
            self.demo_seed_job,
        ]
        return [manifest for manifest in ordered if manifest is not None]


def demo_seed_allowed(platform: Platform) -> bool:
    """The seed never runs in production, whatever the spec says (the rules flag the attempt)."""
    return platform.demo_seed.enabled and platform.environment != "production"


def render_platform(
    platform: Platform,
    secrets: SecretValues,
    *,
    generated: Mapping[str, str] | None = None,
    deployment_image: str | None = None,
    include_deployment: bool = True,
    turn_tls: Mapping[str, str] | None = None,
    service_monitor: bool = False,
) -> DesiredObjects:
    """Everything a platform owns, once its migrations for `deployment_image` have completed.

    `deployment_image` is the image the Deployment runs: the spec's image by default,
    the previous one while a migration for the new image has not completed. `turn_tls` is the
    data of the TLS Secret a managed coturn mounts; `service_monitor`, whether the cluster
    serves the ServiceMonitor CRD.
    """
    generated = generated or {}
    # Workloads only name Secrets (the user's, or the generated one where the user left a key
    # empty), so they get the user's values; the TURN config and ICE servers embed the values.
    values = effective_secrets(platform, secrets, generated)
    checksum = secrets_checksum(platform, values)
    seed = demo_seed_allowed(platform)
    deployment = None
    if include_deployment:
        deployment = render_deployment(
            platform,
            secrets,
            image=deployment_image or platform.calls.image,
            secrets_checksum=checksum,
            allow_demo_seed=seed,
        )
    coturn = None
    if platform.turn.server.managed:
        conf = render_turnserver_conf(platform, values)
        coturn = render_coturn(platform, conf, turn_tls, service_monitor=service_monitor)
    return DesiredObjects(
        generated_secret=render_generated_secret(platform, generated),
        turn_config_secret=render_turn_config_secret(platform, values),
        ice_servers_secret=render_ice_servers_secret(platform, values),
        security_headers=render_security_headers_configmap(platform),
        service=render_service(platform),
        migration_job=render_migration_job(platform, secrets),
        deployment=deployment,
        demo_seed_job=render_demo_seed_job(platform, secrets) if seed else None,
        secrets_checksum=checksum,
        gateway_route=render_gateway_route(platform),
        coturn=coturn,
    )
