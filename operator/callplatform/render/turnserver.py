"""coturn's `turnserver.conf`, and the Secret that carries it.

Only options that coturn 4.6 accepts. Address ranges are written as `a-b`
ranges, never CIDRs: coturn drops a CIDR line with "Wrong address format" and
keeps running, which would silently open a hole in the deny list.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from callplatform.model import Platform
from callplatform.render.labels import object_name
from callplatform.render.secrets import SecretValues, secret_manifest
from callplatform.rules.values import turn_credential_problem

CONF_KEY = "turnserver.conf"

# Every range a relay must never reach unless the platform opens it explicitly.
DENIED_PEER_NETWORKS: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network"; CVE-2020-26262 reached loopback through it
    "10.0.0.0/8",
    "100.64.0.0/10",  # CGNAT, also Alibaba's 100.100.100.200 metadata endpoint
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, including the 169.254.169.254 metadata endpoint
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, including 255.255.255.255
    "::/128",
    "::1/128",
    "::ffff:0:0/96",  # IPv4-mapped: would reach every IPv4 range above
    "64:ff9b::/96",  # NAT64
    "64:ff9b:1::/48",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",  # unique local, including AWS's fd00:ec2::254 metadata endpoint
    "fe80::/10",  # link-local
    "ff00::/8",  # multicast
)


def network_range(cidr: str) -> str | None:
    """`first-last` for a CIDR, or None when it is not a network (the rules report those)."""
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return None
    return f"{network.network_address}-{network.broadcast_address}"


def render_turnserver_conf(platform: Platform, secrets: SecretValues) -> str:
    turn = platform.turn
    creds = turn.credentials
    relay = turn.relay
    lines = [
        f"# turnserver.conf for {platform.object_ref}, rendered by callplatform-operator.",
        f"listening-port={turn.port}",
        f"tls-listening-port={turn.tls_port}",
        f"realm={turn.effective_realm}",
        "fingerprint",
    ]
    values = secrets.get(creds.secret_name, {})
    if creds.mode == "rest":
        shared_secret = values.get(creds.shared_secret_key, "")
        credential_lines = ["use-auth-secret", f"static-auth-secret={shared_secret}"]
        refused = turn_credential_problem(shared_secret) is not None
    else:
        username = values.get(creds.username_key, "")
        password = values.get(creds.password_key, "")
        credential_lines = ["lt-cred-mech", f"user={username}:{password}"]
        refused = (
            turn_credential_problem(username, username=True) is not None
            or turn_credential_problem(password) is not None
        )
    if refused:
        # Defence in depth behind rule CP017 (which blocks the apply): a value that would add lines
        # to the config is never written. Long-term credentials without a user admit nobody.
        credential_lines = ["lt-cred-mech", "# TURN credentials refused (CP017): no user can authenticate."]
    lines += credential_lines
    lines += [
        "no-cli",
        "no-multicast-peers",
        "no-tlsv1",
        "no-tlsv1_1",
        f"min-port={relay.min_port}",
        f"max-port={relay.max_port}",
        f"user-quota={relay.user_quota}",
        f"total-quota={relay.total_quota}",
        "stale-nonce=600",
        "log-file=stdout",
    ]
    lines += [f"denied-peer-ip={network_range(cidr)}" for cidr in DENIED_PEER_NETWORKS]
    allowed = (network_range(cidr) for cidr in relay.allowed_peer_cidrs)
    lines += [f"allowed-peer-ip={span}" for span in allowed if span is not None]
    if turn.prometheus_port:
        lines += ["prometheus", f"prometheus-port={turn.prometheus_port}"]
    return "\n".join(lines) + "\n"


def turn_config_secret_name(platform: Platform) -> str:
    return object_name(platform, "turn")


def render_turn_config_secret(platform: Platform, secrets: SecretValues) -> dict[str, Any]:
    conf = render_turnserver_conf(platform, secrets)
    return secret_manifest(platform, turn_config_secret_name(platform), "turn", {CONF_KEY: conf})
