"""The alert rules: promtool checks and unit tests, plus what promtool cannot know about our repository."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from callplatform import metrics

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "callplatform-rules.yaml"
RULE_TESTS = sorted((ROOT / "ops" / "prometheus" / "tests").glob("*.yaml"))
RUNBOOK = ROOT / "ops" / "jitsi-runbook.md"
DASHBOARD = ROOT / "ops" / "grafana" / "callplatform.json"
REQUIRED_ALERTS = {
    "JitsiDown",
    "JitsiNoOperationalBridges",
    "JitsiBridgeDraining",
    "JitsiBridgeStressHigh",
    "JitsiMetricsUnreadable",
    "CoturnDown",
    "TurnAuthFailing",
    "TurnAllocationFailing",
    "TurnRelaysToInternalPeers",
    "TurnRelayBroken",
    "TurnRelayPacketLoss",
    "TurnCertificateExpiring",
    "JitsiCertificateExpiring",
    "PlatformNotReady",
    "SecretsInvalid",
    "MigrationFailed",
    "ReconcileErrors",
    "CallsDatabaseUnreachable",
    "OperatorAbsent",
    "SecurityHeadersNotServed",
    "CallRateLimitExceeded",
}
METRIC_NAME = re.compile(r"\bcallplatform_[a-z0-9_]+")


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: apt-get install prometheus (Debian's package ships promtool)"
    return path


def alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def exported_names() -> set[str]:
    names: set[str] = set()
    for collector in (
        metrics.BUILD_INFO,
        metrics.RECONCILE_DURATION,
        metrics.API_ERRORS,
        metrics.PLATFORM_CONDITION,
        *metrics.PLATFORM_METRICS,
    ):
        for family in collector.describe():
            names.add(family.name)
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(
                family.type, ()
            )
            names.update(family.name + suffix for suffix in suffixes)
    return names


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The harness notices a wrong expectation (so a passing run means something)."""
    broken = tmp_path / "broken.test.yaml"
    text = RULE_TESTS[0].read_text().replace("probe: jvb}", "probe: web}", 1)
    broken.write_text(text.replace("../callplatform-rules.yaml", str(RULES)))
    result = subprocess.run(
        [promtool(), "test", "rules", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_required_alerts_have_for_severity_and_annotations() -> None:
    by_name = {rule["alert"]: rule for rule in alerts()}
    assert by_name.keys() >= REQUIRED_ALERTS
    for name, rule in by_name.items():
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert {"summary", "description", "runbook_url"} <= rule["annotations"].keys(), name


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_every_runbook_url_points_at_a_runbook_section() -> None:
    anchors = {
        github_anchor(line.lstrip("#")) for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")
    }
    for rule in alerts():
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert path == "ops/jitsi-runbook.md", rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"no '## {rule['alert']}' section in the runbook"


def test_every_alert_has_firing_and_not_firing_unit_tests() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested not firing"


def test_rules_use_only_exported_metrics() -> None:
    used = set(METRIC_NAME.findall(RULES.read_text()))
    assert used, "the rules should use the operator's metrics"
    assert used <= exported_names(), used - exported_names()


def test_dashboard_queries_use_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])] + [
        variable.get("query", "")
        if isinstance(variable.get("query"), str)
        else variable["query"].get("query", "")
        for variable in dashboard["templating"]["list"]
    ]
    used = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert {
        "callplatform_calls_active",
        "callplatform_call_participants_active",
        "callplatform_probe_success",
    } <= used
    assert used <= exported_names(), used - exported_names()
    assert {panel["title"] for panel in dashboard["panels"]} >= {
        "Platform health",
        "Probe latency (p95)",
        "Active calls",
        "Participants in active calls",
        "Average call duration",
    }


@pytest.mark.parametrize("name", sorted(REQUIRED_ALERTS))
def test_runbook_section_says_how_to_confirm_and_fix(name: str) -> None:
    text = RUNBOOK.read_text()
    section = text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
    assert "kubectl" in section or "callplatform" in section, name
    for part in ("Meaning", "Confirm", "Fix"):
        assert f"**{part}**" in section, (name, part)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each dashboard query as a recording rule, with Grafana's variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query_{i}",
                        "expr": expr.replace("$__rate_interval", "5m")
                        .replace("$namespace", ".*")
                        .replace("$platform", ".*"),
                    }
                    for i, expr in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_list_every_alert() -> None:
    docs = (ROOT / "docs" / "metrics.md").read_text()
    for rule in alerts():
        assert f"| `{rule['alert']}` | {rule['labels']['severity']} | {rule['for']} |" in docs, rule["alert"]


# Issue 12's alerts (what is in force) each need a panel that shows what they fire on.
ALERT_PANEL_QUERIES = {
    "SecurityHeadersNotServed": 'component="headers"',
    "CallRateLimitExceeded": "callplatform_call_rate_limit_per_minute",
    "TurnRelaysToInternalPeers": 'component="coturn_acl", probe="acl"',
    "TurnRelayBroken": "callplatform_turn_relay_rtt_seconds",
    "TurnRelayPacketLoss": "callplatform_turn_relay_loss_ratio",
}


@pytest.mark.parametrize("alert", sorted(ALERT_PANEL_QUERIES))
def test_in_force_alerts_have_a_dashboard_panel(alert: str) -> None:
    assert alert in {rule["alert"] for rule in alerts()}
    dashboard = json.loads(DASHBOARD.read_text())
    titles = [
        panel["title"]
        for panel in dashboard["panels"]
        if any(ALERT_PANEL_QUERIES[alert] in target["expr"] for target in panel.get("targets", []))
    ]
    assert titles, f"no dashboard panel queries {ALERT_PANEL_QUERIES[alert]} for {alert}"
