"""The production checklist given as environment variables (`validate --env-file`)."""

from __future__ import annotations

import pytest
from rules_fixtures import GOOD_SECRETS, good_env

from callplatform.findings import Severity
from callplatform.model import ENVIRONMENTS
from callplatform.rules import check_env

E, W = Severity.ERROR, Severity.WARNING


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_good_env_file_has_no_findings(environment: str) -> None:
    assert check_env(good_env(), environment) == []


@pytest.mark.parametrize(
    ("variable", "value", "rule", "severities"),
    [
        ("JITSI_JWT_SECRET", "Ab3dE6gH9jK2mN5pQ8sT1vW4", "CP001", (E, W, None)),
        ("JITSI_JWT_SECRET", None, "CP002", (E, W, None)),
        ("DATABASE_URL", "", "CP002", (E, W, None)),
        ("JITSI_DOMAIN", None, "CP002", (E, W, None)),
        ("JITSI_PUBLIC_HOST", None, "CP002", (E, W, None)),
        ("TURN_HOST", "", "CP002", (E, W, None)),
        ("TURN_USERNAME", None, "CP002", (E, W, None)),
        ("TURN_PASSWORD", None, "CP002", (E, W, None)),
        ("ALLOW_DEMO_SEED", "true", "CP003", (E, None, None)),
        ("ALLOW_DEMO_SEED", "1", "CP003", (E, None, None)),
        ("DEMO_USER_PASSWORD", "hunter2", "CP004", (E, E, E)),
        ("DATABASE_URL", "postgresql://db.example.com", "CP005", (E, E, E)),
        ("TURN_PASSWORD", "password", "CP006", (E, W, None)),
        ("TURN_PASSWORD", "zzzzzzzzzzzzzzzzzzzz", "CP006", (E, W, None)),
        ("JITSI_JWT_SECRET", "keepthissecret", "CP006", (E, W, None)),
        ("TURN_HOST", "turn.example.com:3478", "CP007", (E, E, E)),
        ("JITSI_PUBLIC_HOST", "https://meet.example.com/", "CP007", (E, E, E)),
        (
            "DATABASE_URL",
            "postgresql://calls:Zr8pQ2vLx7Nd4KwT@db/calls?sslmode=disable",
            "CP009",
            (W, None, None),
        ),
        ("ALLOW_DEMO_SEED", "maybe", "CP011", (E, E, E)),
        ("TURN_PASSWORD", GOOD_SECRETS["JITSI_JWT_SECRET"], "CP016", (E, W, None)),
        ("TURN_USERNAME", "calls:admin", "CP017", (E, E, E)),
        ("TURN_PASSWORD", GOOD_SECRETS["TURN_PASSWORD"] + "\x1b", "CP017", (E, E, E)),
        ("JITSI_DOMAIN", "meet internal", "CP011", (E, E, E)),
    ],
)
def test_each_checklist_rule_on_env_files(
    variable: str, value: str | None, rule: str, severities: tuple[Severity | None, ...]
) -> None:
    env = good_env()
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    for environment, expected in zip(ENVIRONMENTS, severities, strict=True):
        hits = [f for f in check_env(env, environment, "env file prod.env") if f.rule == rule]
        if expected is None:
            assert hits == [], environment
        else:
            assert [(f.severity, f.field, f.object) for f in hits] == [
                (expected, variable, "env file prod.env")
            ]


def test_missing_variable_says_not_set_and_empty_says_empty() -> None:
    env = good_env()
    del env["TURN_HOST"]
    env["TURN_PASSWORD"] = ""
    messages = {f.field: f.message for f in check_env(env, "production")}
    assert "is not set" in messages["TURN_HOST"]
    assert "is empty" in messages["TURN_PASSWORD"]


def test_shared_secret_instead_of_static_credentials_is_rest_mode() -> None:
    env = good_env()
    del env["TURN_USERNAME"], env["TURN_PASSWORD"]
    assert [f.field for f in check_env(env, "production")] == ["TURN_PASSWORD", "TURN_USERNAME"]
    env["TURN_SHARED_SECRET"] = GOOD_SECRETS["TURN_SHARED_SECRET"]
    assert [f.field for f in check_env(env, "production")] == []
    env["TURN_SHARED_SECRET"] = "tooshort"
    assert [(f.rule, f.field) for f in check_env(env, "production")] == [("CP006", "TURN_SHARED_SECRET")]


def test_demo_seed_unset_means_disabled_and_demo_password_is_optional() -> None:
    env = good_env()
    del env["ALLOW_DEMO_SEED"], env["DEMO_USER_PASSWORD"]
    assert check_env(env, "production") == []


def test_unknown_environment_is_cp011() -> None:
    assert [(f.rule, f.field) for f in check_env(good_env(), "prod")] == [("CP011", "--environment")]
