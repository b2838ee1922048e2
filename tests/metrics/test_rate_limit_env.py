"""spec.calls.rateLimits reaches the calls container as documented environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callplatform.model import parse_platform
from callplatform.render import render_platform
from callplatform.render.workloads import RATE_LIMIT_ENV

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"calls-secrets": {"DATABASE_URL": "postgresql://u:p@127.0.0.1/db", "JITSI_JWT_SECRET": "x" * 40}}


def env(rate_limits: dict[str, Any] | None) -> dict[str, str]:
    calls: dict[str, Any] = {"image": "registry.test/calls:1"}
    if rate_limits is not None:
        calls["rateLimits"] = rate_limits
    manifest = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"calls": calls}}
    deployment = render_platform(parse_platform(manifest), SECRETS).deployment
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", "") for item in container["env"] if "valueFrom" not in item}


def test_each_limit_becomes_its_variable() -> None:
    found = env(
        {"starts": {"perUserPerMinute": 5, "globalPerMinute": 300}, "joins": {"perUserPerMinute": 20}}
    )
    assert found["CALLS_RATE_LIMIT_STARTS_PER_USER_PER_MINUTE"] == "5"
    assert found["CALLS_RATE_LIMIT_STARTS_PER_MINUTE"] == "300"
    assert found["CALLS_RATE_LIMIT_JOINS_PER_USER_PER_MINUTE"] == "20"
    assert "CALLS_RATE_LIMIT_JOINS_PER_MINUTE" not in found  # unset: no variable


def test_no_limits_no_variables_so_existing_deployments_do_not_roll() -> None:
    assert not set(RATE_LIMIT_ENV.values()) & env(None).keys()
    assert not set(RATE_LIMIT_ENV.values()) & env({"starts": {"globalPerMinute": 0}}).keys()


def test_malformed_limit_is_reported_not_raised() -> None:
    manifest = {"spec": {"calls": {"image": "x", "rateLimits": {"starts": {"globalPerMinute": "lots"}}}}}
    platform = parse_platform(manifest)
    assert ("spec.calls.rateLimits.starts.globalPerMinute", "must be an integer") in platform.malformed


def test_the_variable_names_are_documented() -> None:
    guide = (ROOT / "docs" / "production-guide.md").read_text()
    for name in RATE_LIMIT_ENV.values():
        assert f"`{name}`" in guide, name
