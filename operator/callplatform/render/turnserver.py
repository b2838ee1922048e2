"""coturn's `turnserver.conf`, and the Secret that carries it.

Only options that coturn 4.6 accepts. Address ranges are written as `a-b`
ranges, never CIDRs: coturn drops a CIDR line with "Wrong address format" and
keeps running, which would silently open a hole in the deny list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from callplatform.model import Platform
from callplatform.render.conf_writer import ConfWriter
from callplatform.render.labels import object_name
from callplatform.render.secrets import SecretValues, secret_manifest
from callplatform.rules.coturn_conf import credential_problem, realm_problem
from callplatform.rules.values import DENIED_PEER_RANGES, judge_peer_cidr

CONF_KEY = "turnserver.conf"

# Every range a relay must never reach unless the platform opens it explicitly (and CP008
# reports opening any of them): one list, in rules/values.py.
DENIED_PEER_NETWORKS: tuple[str, ...] = tuple(cidr for cidr, _ in DENIED_PEER_RANGES)


def network_range(cidr: str) -> str | None:
    """`first-last` for a CIDR, or None when it is not a network (the rules report those)."""
    if not judge_peer_cidr(cidr).parsed:
        return None
    network = ipaddress.ip_network(cidr, strict=False)
    return f"{network.network_address}-{network.broadcast_address}"


def render_turnserver_conf(platform: Platform, secrets: SecretValues) -> str:
    """turnserver.conf through the safe writer: a value coturn would misread is left out (fail closed)."""
    turn = platform.turn
    creds = turn.credentials
    relay = turn.relay
    conf = ConfWriter(f"turnserver.conf for {platform.object_ref}, rendered by callplatform-operator.")
    conf.number("listening-port", turn.port)
    conf.number("tls-listening-port", turn.tls_port)
    conf.value("realm", turn.effective_realm, realm_problem, "CP019")
    conf.flag("fingerprint")
    values = secrets.get(creds.secret_name, {})
    shared_secret = values.get(creds.shared_secret_key, "")
    if creds.mode == "rest" and _secret_problem(shared_secret) is None:
        conf.flag("use-auth-secret")
        conf.value("static-auth-secret", shared_secret, _secret_problem, "CP017")
    elif creds.mode == "rest":  # long-term credentials without a user admit nobody
        conf.flag("lt-cred-mech")
        conf.value("static-auth-secret", "", lambda _: "refused", "CP017")
    else:
        conf.flag("lt-cred-mech")
        username = values.get(creds.username_key, "")
        password = values.get(creds.password_key, "")
        if credential_problem(username, username=True) is None and username:
            # user=name:password: the name cannot hold ':', so the first ':' splits them as written.
            conf.value("user", f"{username}:{password}", _user_line_problem(password), "CP017")
        else:
            conf.value("user", "", lambda _: "refused", "CP017")
    for flag in ("no-cli", "no-multicast-peers", "no-tlsv1", "no-tlsv1_1"):
        conf.flag(flag)
    conf.number("min-port", relay.min_port)
    conf.number("max-port", relay.max_port)
    conf.number("user-quota", relay.user_quota)
    conf.number("total-quota", relay.total_quota)
    conf.number("stale-nonce", 600)
    conf.value("log-file", "stdout", _never, "")
    for cidr in DENIED_PEER_NETWORKS:
        conf.value("denied-peer-ip", network_range(cidr) or "", _is_range, "")
    for cidr in relay.allowed_peer_cidrs:
        span = network_range(cidr)
        if span is not None:  # the rules report what is not a CIDR (CP011)
            conf.value("allowed-peer-ip", span, _is_range, "CP011")
    if turn.prometheus_port:
        conf.flag("prometheus")
        conf.number("prometheus-port", turn.prometheus_port)
    return conf.text()


def _never(_: str) -> str | None:
    return None


def _secret_problem(value: str) -> str | None:
    return "empty" if not value else credential_problem(value)


def _user_line_problem(password: str) -> Callable[[str], str | None]:
    def problem(_: str) -> str | None:
        return "empty" if not password else credential_problem(password)

    return problem


def _is_range(value: str) -> str | None:
    first, _, last = value.partition("-")
    try:
        ipaddress.ip_address(first), ipaddress.ip_address(last)
    except ValueError:
        return "not an address range"
    return None


def turn_config_secret_name(platform: Platform) -> str:
    return object_name(platform, "turn")


def render_turn_config_secret(platform: Platform, secrets: SecretValues) -> dict[str, Any]:
    conf = render_turnserver_conf(platform, secrets)
    return secret_manifest(platform, turn_config_secret_name(platform), "turn", {CONF_KEY: conf})
