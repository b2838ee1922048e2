"""A managed coturn (`spec.turn.server.managed`): the workload, its Service, PDB, NetworkPolicy
and, with Prometheus on, a metrics Service and ServiceMonitor.

coturn runs the rendered `<platform>-turn` turnserver.conf as is; only what depends on where it
runs is on the command line (the TLS files, the pid file, the database path, the external
address). coturn reads neither its config nor its certificate again at runtime, so the pod
template carries a checksum of both: a change to either rolls the pods once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callplatform.model import Platform
from callplatform.render.labels import common_labels, metadata, object_name, selector_labels
from callplatform.render.turnserver import CONF_KEY, DENIED_PEER_NETWORKS, turn_config_secret_name
from callplatform.render.workloads import canonical_resources

COMPONENT = "coturn"
METRICS_COMPONENT = "coturn-metrics"
CONTAINER = "coturn"
CHECKSUM_ANNOTATION = "callplatform.io/turn-checksum"
# The upstream images run as nobody:nogroup.
RUN_AS_USER = 65534

CONF_DIR = "/etc/coturn/conf"
TLS_DIR = "/etc/coturn/tls"
# coturn opens an SQLite user database even when every user is in the config; with a read-only
# root filesystem it goes to a scratch volume, with the pid file.
STATE_DIR = "/var/lib/coturn"
TLS_CERT_KEY, TLS_KEY_KEY = "tls.crt", "tls.key"


@dataclass(frozen=True, slots=True)
class Mount:
    """A read-only file set the container sees at `path` (the same-command-line test maps these)."""

    volume: str
    path: str


CONF_MOUNT = Mount("turn-conf", CONF_DIR)
TLS_MOUNT = Mount("turn-tls", TLS_DIR)
STATE_MOUNT = Mount("state", STATE_DIR)


def coturn_name(platform: Platform) -> str:
    return object_name(platform, "coturn")


def coturn_metrics_name(platform: Platform) -> str:
    return object_name(platform, "coturn-metrics")


def has_tls(platform: Platform) -> bool:
    return bool(platform.turn.tls_secret_name)


def turn_checksum(conf: str, tls: Mapping[str, str] | None) -> str:
    """A digest of everything coturn reads once at start: the conf and the TLS Secret's data."""
    payload = {"conf": conf, "tls": dict(sorted((tls or {}).items()))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def coturn_args(platform: Platform) -> list[str]:
    """turnserver's arguments after the config file: where things live in the pod."""
    args = [
        "-c",
        f"{CONF_DIR}/{CONF_KEY}",
        "--pidfile",
        f"{STATE_DIR}/turnserver.pid",
        "--db",
        f"{STATE_DIR}/turndb",
    ]
    if has_tls(platform):
        args += ["--cert", f"{TLS_DIR}/{TLS_CERT_KEY}", "--pkey", f"{TLS_DIR}/{TLS_KEY_KEY}"]
    else:  # without a certificate coturn would listen on tlsPort and fail every handshake
        args += ["--no-tls", "--no-dtls"]
    if platform.turn.server.external_ip:
        args += ["--external-ip", platform.turn.server.external_ip]
    return args


def _listening_ports(platform: Platform) -> list[tuple[str, int, str]]:
    """(name, port, protocol) of every port clients connect to."""
    turn = platform.turn
    ports = [("turn-udp", turn.port, "UDP"), ("turn-tcp", turn.port, "TCP")]
    if has_tls(platform):
        ports += [("turns-tcp", turn.tls_port, "TCP"), ("turns-udp", turn.tls_port, "UDP")]
    return ports


def _container_ports(platform: Platform) -> list[dict[str, Any]]:
    ports = list(_listening_ports(platform))
    if platform.turn.prometheus_port:
        ports.append(("metrics", platform.turn.prometheus_port, "TCP"))
    rendered = []
    for name, port, protocol in ports:
        entry: dict[str, Any] = {"name": name, "containerPort": port, "protocol": protocol}
        if platform.turn.server.host_network:  # the API server defaults hostPort to it; say so
            entry["hostPort"] = port
        rendered.append(entry)
    return rendered


def _container(platform: Platform) -> dict[str, Any]:
    server = platform.turn.server
    mounts = [{"name": CONF_MOUNT.volume, "mountPath": CONF_MOUNT.path, "readOnly": True}]
    if has_tls(platform):
        mounts.append({"name": TLS_MOUNT.volume, "mountPath": TLS_MOUNT.path, "readOnly": True})
    mounts.append({"name": STATE_MOUNT.volume, "mountPath": STATE_MOUNT.path})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": server.image,
        "command": ["turnserver"],
        "args": coturn_args(platform),
        "ports": _container_ports(platform),
        "readinessProbe": {"tcpSocket": {"port": "turn-tcp"}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": "turn-tcp"}, "periodSeconds": 20, "failureThreshold": 3},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    resources = canonical_resources(server.resources)
    if resources:
        container["resources"] = resources
    return container


def _volumes(platform: Platform) -> list[dict[str, Any]]:
    # 0440 with fsGroup: readable by coturn's group, by nobody else in the pod.
    volumes: list[dict[str, Any]] = [
        {
            "name": CONF_MOUNT.volume,
            "secret": {
                "secretName": turn_config_secret_name(platform),
                "items": [{"key": CONF_KEY, "path": CONF_KEY}],
                "defaultMode": 0o440,
            },
        }
    ]
    if has_tls(platform):
        volumes.append(
            {
                "name": TLS_MOUNT.volume,
                "secret": {
                    "secretName": platform.turn.tls_secret_name,
                    "items": [
                        {"key": TLS_CERT_KEY, "path": TLS_CERT_KEY},
                        {"key": TLS_KEY_KEY, "path": TLS_KEY_KEY},
                    ],
                    "defaultMode": 0o440,
                },
            }
        )
    volumes.append({"name": STATE_MOUNT.volume, "emptyDir": {}})
    return volumes


def _pod_template(platform: Platform, checksum: str) -> dict[str, Any]:
    server = platform.turn.server
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": server.termination_grace_period_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(platform)],
        "volumes": _volumes(platform),
    }
    if server.host_network:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    return {
        "metadata": {
            "labels": common_labels(platform, COMPONENT),
            "annotations": {CHECKSUM_ANNOTATION: checksum},
        },
        "spec": spec,
    }


def render_coturn_workload(platform: Platform, checksum: str) -> dict[str, Any]:
    """The Deployment (mode Deployment) or DaemonSet (mode DaemonSet, hostNetwork) running coturn."""
    server = platform.turn.server
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(platform, COMPONENT)},
        "template": _pod_template(platform, checksum),
    }
    kind = "DaemonSet" if server.host_network else "Deployment"
    if kind == "Deployment":
        spec = {"replicas": server.replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": metadata(platform, coturn_name(platform), COMPONENT),
        "spec": spec,
    }


def render_coturn_service(platform: Platform) -> dict[str, Any]:
    """UDP and TCP on the listening (and TLS) ports. The relay range is not on it: see the docs."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(platform, coturn_name(platform), COMPONENT),
        "spec": {
            "type": platform.turn.server.service_type,
            # Local keeps the client's source address, which coturn needs for XOR-MAPPED-ADDRESS.
            "externalTrafficPolicy": "Local",
            "selector": selector_labels(platform, COMPONENT),
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": protocol}
                for name, port, protocol in _listening_ports(platform)
            ],
        },
    }


def render_coturn_pdb(platform: Platform) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(platform, coturn_name(platform), COMPONENT),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(platform, COMPONENT)}},
    }


# The API server refuses IPv4-mapped ranges in an ipBlock; packets to ::ffff:a.b.c.d leave as
# IPv4, which the IPv4 exceptions already cover.
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def _split_denied() -> tuple[list[str], list[str]]:
    networks = [ipaddress.ip_network(c) for c in DENIED_PEER_NETWORKS]
    v4 = [str(n) for n in networks if n.version == 4]
    v6 = [str(n) for n in networks if n.version == 6 and n != IPV4_MAPPED]
    return v4, v6


def render_coturn_network_policy(platform: Platform) -> dict[str, Any]:
    """coturn may reach public peers, the explicitly allowed peer CIDRs and the relay range of its
    own pods; nothing else (no cluster network, no metadata endpoint, no DNS). Replies to clients
    are allowed by the policy's connection tracking."""
    turn, relay = platform.turn, platform.turn.relay
    own_pods = {"podSelector": {"matchLabels": selector_labels(platform, COMPONENT)}}
    relay_ports = [{"protocol": "UDP", "port": relay.min_port, "endPort": relay.max_port}]
    denied_v4, denied_v6 = _split_denied()
    ingress: list[dict[str, Any]] = [
        {"ports": [{"protocol": protocol, "port": port} for _, port, protocol in _listening_ports(platform)]},
        {"ports": relay_ports},  # peers answering on the relayed addresses
    ]
    if turn.prometheus_port:
        ingress.append(
            {
                "from": [{"namespaceSelector": {}}],
                "ports": [{"protocol": "TCP", "port": turn.prometheus_port}],
            }
        )
    egress: list[dict[str, Any]] = [
        {
            "to": [
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": denied_v4}},
                {"ipBlock": {"cidr": "::/0", "except": denied_v6}},
            ]
        },
        {"to": [own_pods], "ports": relay_ports},
    ]
    allowed = [
        str(ipaddress.ip_network(c.strip(), strict=False)) for c in _parsable(relay.allowed_peer_cidrs)
    ]
    if allowed:
        egress.insert(1, {"to": [{"ipBlock": {"cidr": cidr}} for cidr in allowed]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(platform, coturn_name(platform), COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(platform, COMPONENT)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def _parsable(cidrs: tuple[str, ...]) -> list[str]:
    """CIDRs that parse (the rules report the others, CP011, and block the apply)."""
    good = []
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            continue
        good.append(cidr)
    return good


def render_coturn_metrics_service(platform: Platform) -> dict[str, Any]:
    """A ClusterIP Service for the Prometheus listener, so metrics never sit on the public Service."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(platform, coturn_metrics_name(platform), METRICS_COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(platform, COMPONENT),
            "ports": [
                {
                    "name": "metrics",
                    "port": platform.turn.prometheus_port,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                }
            ],
        },
    }


def render_coturn_service_monitor(platform: Platform) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(platform, coturn_metrics_name(platform), METRICS_COMPONENT),
        "spec": {
            "selector": {"matchLabels": selector_labels(platform, METRICS_COMPONENT)},
            "endpoints": [{"port": "metrics", "interval": "30s"}],
        },
    }


@dataclass(frozen=True, slots=True)
class CoturnObjects:
    workload: dict[str, Any]
    service: dict[str, Any]
    pdb: dict[str, Any]
    network_policy: dict[str, Any]
    metrics_service: dict[str, Any] | None
    service_monitor: dict[str, Any] | None

    def objects(self) -> list[dict[str, Any]]:
        ordered = [
            self.service,
            self.metrics_service,
            self.network_policy,
            self.pdb,
            self.workload,
            self.service_monitor,
        ]
        return [manifest for manifest in ordered if manifest is not None]


def render_coturn(
    platform: Platform, conf: str, tls: Mapping[str, str] | None, *, service_monitor: bool
) -> CoturnObjects:
    """Every object of a managed coturn. `service_monitor`: whether the cluster serves the CRD."""
    prometheus = bool(platform.turn.prometheus_port)
    return CoturnObjects(
        workload=render_coturn_workload(platform, turn_checksum(conf, tls)),
        service=render_coturn_service(platform),
        pdb=render_coturn_pdb(platform),
        network_policy=render_coturn_network_policy(platform),
        metrics_service=render_coturn_metrics_service(platform) if prometheus else None,
        service_monitor=render_coturn_service_monitor(platform) if prometheus and service_monitor else None,
    )
