"""The operator's /metrics over HTTP: probe, operator and call metrics, parsed the way Prometheus reads them."""

from __future__ import annotations

import uuid

import httpx
import pytest
from callmetrics_db import SPEC, CallDatabase
from prometheus_client.parser import text_string_to_metric_families

from callplatform import metrics
from callplatform.calls.db import CallMetricsCollector, CollectorSettings
from callplatform.httpserver import OperatorHttpServer
from callplatform.probes.health import HealthRegistry
from callplatform.probes.result import ProbeResult

pytestmark = pytest.mark.postgres


async def test_metrics_endpoint_serves_every_kind_of_series(call_db: CallDatabase) -> None:
    ns, name = "ns-" + uuid.uuid4().hex[:6], "cp-" + uuid.uuid4().hex[:6]
    collector = CallMetricsCollector(settings=CollectorSettings(interval_seconds=0.2))
    collector.upsert(ns, name, call_db.reader_url, SPEC)
    server = OperatorHttpServer(HealthRegistry(), lambda: True, lambda: True, host="127.0.0.1", port=0)
    await server.start()
    try:
        await collector.start()
        metrics.record_reconcile(ns, name, "success", 0.2)
        metrics.set_platform_conditions(ns, name, {"Ready": "True", "SecretsValid": "True"})
        metrics.record_probe(ns, name, ProbeResult("jitsi", "web", True, "", 0.08, cert_not_after=1.9e9))
        assert await collector.collect_once(ns, name)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = {
            (s.name, s.labels.get("type", ""), s.labels.get("status", "")): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
            if s.labels.get("platform") == name
        }
        assert found[("callplatform_reconciles_total", "", "")] == 1
        assert found[("callplatform_platform_condition", "Ready", "True")] == 1
        assert found[("callplatform_probe_success", "", "")] == 1
        assert found[("callplatform_probe_certificate_expiry_timestamp_seconds", "", "")] == 1.9e9
        assert found[("callplatform_calls_active", "", "")] == 40
        assert found[("callplatform_calls_database_up", "", "")] == 1
        assert call_db.reader_password not in response.text
    finally:
        await collector.stop()
        await server.stop()
        collector.remove(ns, name)
        metrics.forget_platform(ns, name)
