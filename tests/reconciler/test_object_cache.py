"""The watch-fed cache: versions only move forward, listings merge with the watch, kinds read
through until synced, and a pass over a synced cache makes no read at all."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from reconciler_fake_kube import Clock, FakeKube, bring_up
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.cache import CachedReader, CacheSyncer, Memo, ObjectCache, WatchedKind
from callplatform.handlers import cached_kinds
from callplatform.kube import KubeError
from callplatform.reconcile import Reconciler

NS = "cached"
SECRET = WatchedKind("v1", "Secret")
DEPLOYMENT = WatchedKind(
    "apps/v1", "Deployment", (("app.kubernetes.io/managed-by", "callplatform-operator"),)
)


def _secret(name: str, version: int, value: str = "x", namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(version),
                     "managedFields": [{"manager": "kubectl"}]},
        "data": {"k": base64.b64encode(value.encode()).decode()},
    }  # fmt: skip


def _value(cache: ObjectCache, name: str) -> str | None:
    found = cache.get("v1", "Secret", NS, name)
    return None if found is None else base64.b64decode(found["data"]["k"]).decode()


def test_only_a_newer_version_replaces_an_entry() -> None:
    cache = ObjectCache([SECRET], [NS])
    cache.observe("ADDED", _secret("a", 10, "ten"))
    cache.observe("MODIFIED", _secret("a", 9, "nine"))  # a late event, older than what we hold
    assert _value(cache, "a") == "ten"
    cache.store(_secret("a", 12, "twelve"))  # a write's response
    cache.observe("MODIFIED", _secret("a", 11, "eleven"))
    assert _value(cache, "a") == "twelve"
    cache.observe("MODIFIED", _secret("a", 13, "thirteen"))
    assert _value(cache, "a") == "thirteen"
    stored = cache.get("v1", "Secret", NS, "a")
    assert stored is not None and "managedFields" not in stored["metadata"]
    cache.observe("DELETED", _secret("a", 14))
    assert cache.get("v1", "Secret", NS, "a") is None


def test_an_object_that_loses_our_label_leaves_the_cache() -> None:
    cache = ObjectCache([DEPLOYMENT], [NS])
    labels = {"app.kubernetes.io/managed-by": "callplatform-operator"}
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": NS, "resourceVersion": "5", "labels": labels}}  # fmt: skip
    cache.observe("ADDED", body)
    assert cache.get("apps/v1", "Deployment", NS, "d") is not None
    cache.observe(
        "MODIFIED", {**body, "metadata": {**body["metadata"], "resourceVersion": "6", "labels": {}}}
    )
    assert cache.get("apps/v1", "Deployment", NS, "d") is None
    cache.observe("ADDED", {"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": "other", "namespace": NS, "resourceVersion": "7"}})  # fmt: skip
    assert cache.get("apps/v1", "Deployment", NS, "other") is None


def test_a_listing_merges_with_what_the_watch_delivered_meanwhile() -> None:
    cache = ObjectCache([SECRET], [NS])
    assert not cache.synced("v1", "Secret", NS)
    cache.observe("ADDED", _secret("written-after-the-list", 30))
    cache.observe("ADDED", _secret("gone-before-the-list", 5))  # its DELETED was lost
    cache.observe("DELETED", _secret("deleted-after-the-list", 25))
    cache.observe("MODIFIED", _secret("changed-after-the-list", 28, "new"))
    cache.replace_listing(
        SECRET,
        NS,
        [_secret("deleted-after-the-list", 15), _secret("changed-after-the-list", 16, "old"),
         _secret("plain", 17, "plain")],
        "20",
    )  # fmt: skip
    assert cache.synced("v1", "Secret", NS) and cache.synced("v1", "Secret", None)
    assert _value(cache, "written-after-the-list") == "x"
    assert _value(cache, "gone-before-the-list") is None
    assert _value(cache, "deleted-after-the-list") is None
    assert _value(cache, "changed-after-the-list") == "new"
    assert _value(cache, "plain") == "plain"


def _with_uid(body: dict[str, Any], uid: str) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "uid": uid}}


def test_a_write_response_stored_after_the_deletion_does_not_bring_the_object_back() -> None:
    kube = FakeKube()
    cache = ObjectCache([SECRET], [NS])
    CacheSyncer(kube, cache).sync_once()  # type: ignore[arg-type]
    reader = CachedReader(kube, cache)  # type: ignore[arg-type]
    cache.observe("ADDED", _with_uid(_secret("a", 10), "first"))
    cache.observe("DELETED", _with_uid(_secret("a", 12), "first"))
    reader.remember(_with_uid(_secret("a", 11, "written"), "first"))  # the write answered before
    cache.observe("MODIFIED", _with_uid(_secret("a", 12), "first"))  # a late event, just as stale
    assert reader.get("v1", "Secret", NS, "a") is None
    reader.remember(_with_uid(_secret("a", 20, "recreated"), "second"))
    assert _value(cache, "a") == "recreated"
    cache.observe("DELETED", _secret("b", 30))  # no uid known: the version alone decides
    cache.store(_secret("b", 30))
    assert cache.get("v1", "Secret", NS, "b") is None
    cache.store(_secret("b", 31, "again"))
    assert _value(cache, "b") == "again"


def test_tombstones_expire_and_are_bounded() -> None:
    now = [0.0]
    cache = ObjectCache([SECRET], [NS], clock=lambda: now[0], tombstone_seconds=60.0, tombstone_limit=2)
    for index, name in enumerate(("a", "b", "c")):
        cache.observe("DELETED", _secret(name, 10 + index))
    assert list(cache._tombstones) == [("v1", "Secret", NS, "b"), ("v1", "Secret", NS, "c")]
    now[0] += 61
    cache.observe("DELETED", _secret("d", 20))
    assert list(cache._tombstones) == [("v1", "Secret", NS, "d")]


def test_kopf_listing_again_after_a_broken_watch_distrusts_the_kind_until_listed_again() -> None:
    now = [100.0]
    cache = ObjectCache([SECRET], [NS], clock=lambda: now[0], relist_after_seconds=30.0)
    cache.listing_started(SECRET, NS)
    cache.replace_listing(SECRET, NS, [_secret("a", 3)], "3")
    now[0] += 5
    cache.observe(None, _secret("a", 3))  # kopf's own first listing, racing ours
    assert cache.synced("v1", "Secret", NS) and cache.wanted() == []
    now[0] += 600
    cache.observe(None, _secret("a", 3))  # kopf listed again: a DELETED may have been lost
    assert not cache.synced("v1", "Secret", NS)
    assert cache.wanted() == [(SECRET, NS)]


def _service(name: str, version: int, instance: str = "calls") -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "callplatform-operator", "app.kubernetes.io/instance": instance}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS, "resourceVersion": str(version), "labels": labels}}  # fmt: skip


def test_kopf_restarting_a_watch_distrusts_the_kind_even_when_its_listing_will_be_empty() -> None:
    service = WatchedKind("v1", "Service", (("app.kubernetes.io/managed-by", "callplatform-operator"),))
    cache = ObjectCache([service], [NS, "other"])
    for scope in (NS, "other"):
        cache.listing_started(service, scope)
        cache.replace_listing(service, scope, [_service("calls-calls", 3)] if scope == NS else [], "3")
    assert cache.synced("v1", "Service", NS)
    # The only Service of NS is deleted during the gap: kopf's listing is empty, no event comes.
    assert cache.relisting("v1", "Service", NS)
    assert not cache.synced("v1", "Service", NS) and cache.synced("v1", "Service", "other")
    assert cache.wanted() == [(service, NS)]
    cache.listing_started(service, NS)
    dropped = cache.replace_listing(service, NS, [], "9")
    assert [(d.kind, d.namespace, d.name, d.labels["app.kubernetes.io/instance"]) for d in dropped] == [
        ("Service", NS, "calls-calls", "calls")
    ]
    assert cache.synced("v1", "Service", NS) and cache.get("v1", "Service", NS, "calls-calls") is None
    assert not cache.relisting("apps/v1", "Deployment", NS)  # not a kind this cache keeps
    assert cache.relisting("v1", "Service", None)  # cluster-wide: every scope
    assert not cache.synced("v1", "Service", "other")


def test_a_restart_during_our_own_listing_lists_once_more() -> None:
    cache = ObjectCache([SECRET], [NS])
    cache.listing_started(SECRET, NS)
    cache.relisting("v1", "Secret", NS)  # our listing may have been taken before the gap's deletion
    assert cache.replace_listing(SECRET, NS, [_secret("a", 3)], "3") == []
    assert not cache.synced("v1", "Secret", NS) and cache.wanted() == [(SECRET, NS)]


class _ListedAt(FakeKube):
    def __init__(self, version: str) -> None:
        super().__init__()
        self.version = version

    def list_snapshot(
        self, api_version: str, kind: str, namespace: str | None, label_selector: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        return self.list(api_version, kind, namespace, label_selector), self.version


def test_the_syncer_reports_what_a_listing_dropped_and_nothing_else() -> None:
    kube = _ListedAt("5")
    kube.put(_secret("kept", 1))
    cache = ObjectCache([SECRET], [NS])
    reports: list[list[str]] = []
    syncer = CacheSyncer(kube, cache, on_dropped=lambda dropped: reports.append([d.name for d in dropped]))
    cache.observe("ADDED", _secret("gone", 1))  # its DELETED is lost
    assert syncer.sync_once() and reports == [["gone"]]
    cache.relisting("v1", "Secret", NS)
    assert syncer.sync_once() and reports == [["gone"]]  # nothing dropped: no report
    assert syncer.sync_once() and reports == [["gone"]]  # nothing wanted: no listing


def test_reads_go_through_until_synced_and_unwatched_kinds_are_memoised() -> None:
    kube = FakeKube()
    kube.put(_secret("a", 1, "one"))
    cache = ObjectCache([SECRET], [NS])
    reader = CachedReader(kube, cache, Memo(ttl_seconds=60))  # type: ignore[arg-type]
    assert reader.get("v1", "Secret", NS, "a") is not None
    assert kube.reads == ["get Secret/a"]
    CacheSyncer(kube, cache).sync_once()  # type: ignore[arg-type]
    kube.reads.clear()
    assert reader.get("v1", "Secret", NS, "a") is not None
    assert reader.get("v1", "Secret", NS, "missing") is None
    assert kube.reads == []  # synced: absent from the cache means absent
    for _ in range(3):
        assert reader.get("v1", "Namespace", "", NS) is None
        assert reader.serves("monitoring.coreos.com/v1", "servicemonitors") is False
    assert kube.reads == ["get Namespace/cached", "discover monitoring.coreos.com/v1"]


def test_an_idle_pass_over_a_synced_cache_reads_nothing_and_a_secret_event_is_not_stale() -> None:
    kube = FakeKube()
    bring_up(kube, Reconciler(kube, clock=Clock()), NS,  # type: ignore[arg-type]
             secret_manifest(STRONG_SECRETS, namespace=NS), platform_manifest(namespace=NS))  # fmt: skip
    cache = ObjectCache(cached_kinds(), [NS])
    assert CacheSyncer(kube, cache).sync_once()  # type: ignore[arg-type]
    reconciler = Reconciler(kube, clock=Clock(), reader=CachedReader(kube, cache))  # type: ignore[arg-type]
    reconciler.reconcile(NS, "calls")  # settles anything the fake's controllers left behind
    kube.reads.clear()
    kube.writes.clear()
    for _ in range(3):
        assert reconciler.reconcile(NS, "calls").ready
    assert kube.reads == [] and kube.writes == []

    before = kube.obj("Deployment", NS, "calls-calls")
    assert before is not None
    checksum = before["spec"]["template"]["metadata"]["annotations"]["callplatform.io/secrets-checksum"]
    changed = kube.put(
        secret_manifest(
            {**STRONG_SECRETS, "JITSI_JWT_SECRET": "jwt-9Rt4wQ2zX7nM5bV8cK1hJ6fL3pS0dG4aE9"}, namespace=NS
        )
    )
    cache.observe("MODIFIED", changed)  # what the Secret handler does before it asks for the pass
    reconciler.reconcile(NS, "calls")
    after = kube.obj("Deployment", NS, "calls-calls")
    assert after is not None
    assert (
        after["spec"]["template"]["metadata"]["annotations"]["callplatform.io/secrets-checksum"] != checksum
    )
    assert kube.reads == []


ROUTE_ID = ("gateway.networking.k8s.io/v1", "HTTPRoute")


def _route(version: int, name: str = "calls-calls") -> dict[str, Any]:
    return {"apiVersion": ROUTE_ID[0], "kind": ROUTE_ID[1],
            "metadata": {"name": name, "namespace": NS, "resourceVersion": str(version),
                         "labels": {"app.kubernetes.io/managed-by": "callplatform-operator"}}}  # fmt: skip


class _NotServedKube(FakeKube):
    """An API server without the Gateway API CRDs: listing HTTPRoutes answers 404."""

    def list_snapshot(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: dict[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        if kind == "HTTPRoute":
            self.reads.append(f"list {kind}")
            raise KubeError(f"list {kind}", 404, "Not Found")
        return super().list_snapshot(api_version, kind, namespace, label_selector)


def test_an_optional_kind_is_cached_only_while_kopf_watches_it() -> None:
    kube = FakeKube()
    kube.put(_route(5))
    cache = ObjectCache(cached_kinds(), [NS])
    kopf_watches: list[tuple[str, str]] = []
    syncer = CacheSyncer(kube, cache, kopf_watches=lambda: kopf_watches)  # type: ignore[arg-type]
    reader = CachedReader(kube, cache, Memo(ttl_seconds=60))  # type: ignore[arg-type]
    assert syncer.sync_once()
    assert "list HTTPRoute" not in kube.reads  # no CRD as far as kopf knows: never listed
    cache.observe("ADDED", _route(6))  # cannot happen without kopf's watch; ignored all the same
    kube.reads.clear()
    for _ in range(2):
        assert reader.get(*ROUTE_ID, NS, "calls-calls") is not None
    assert kube.reads == ["get HTTPRoute/calls-calls"]  # the memo, as before

    kopf_watches.append(ROUTE_ID)  # its CRD is served: kopf's scan watches it
    assert syncer.sync_once()
    assert cache.watches(*ROUTE_ID) and cache.synced(*ROUTE_ID, NS)
    kube.reads.clear()
    cache.observe("DELETED", _route(7))  # someone deleted it: the pass sees that at once
    assert reader.get(*ROUTE_ID, NS, "calls-calls") is None
    assert kube.reads == []

    kopf_watches.clear()  # the CRD went: kopf stopped watching
    syncer.sync_once()
    assert not cache.watches(*ROUTE_ID) and cache.list(*ROUTE_ID, NS) == []
    reader.memo.drop(("get", *ROUTE_ID, NS, "calls-calls"))  # what it memoised before kopf watched
    reader.get(*ROUTE_ID, NS, "calls-calls")
    assert kube.reads == ["get HTTPRoute/calls-calls"]


def test_a_404_listing_an_optional_kind_falls_back_to_the_memo_without_retrying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = _NotServedKube()
    cache = ObjectCache(cached_kinds(), [NS])
    syncer = CacheSyncer(kube, cache, kopf_watches=lambda: [ROUTE_ID])  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="callplatform.cache"):
        for _ in range(5):
            assert syncer.sync_once()  # not a failure: no retry loop
    assert kube.reads.count("list HTTPRoute") == 1
    assert [r.getMessage() for r in caplog.records if "HTTPRoute" in r.getMessage()] == [
        "HTTPRoute is watched now: read from the cache once listed",
        "HTTPRoute is not served (its CRD went): read through the memo",
    ]
    assert not cache.watches(*ROUTE_ID) and cache.wanted() == []
    reader = CachedReader(kube, cache, Memo(ttl_seconds=60))  # type: ignore[arg-type]
    kube.reads.clear()
    for _ in range(2):
        assert reader.get(*ROUTE_ID, NS, "calls-calls") is None
    assert kube.reads == ["get HTTPRoute/calls-calls"]


def test_keys_name_the_cached_objects_of_a_kind_without_decoding_them() -> None:
    cache = ObjectCache([SECRET, DEPLOYMENT], [NS, "other"])
    cache.observe("ADDED", _secret("a", 1))
    cache.observe("ADDED", _secret("b", 2, namespace="other"))
    cache.observe("ADDED", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "d", "namespace": NS, "resourceVersion": "3",
        "labels": {"app.kubernetes.io/managed-by": "callplatform-operator"}}})  # fmt: skip
    assert sorted(cache.keys("v1", "Secret", None)) == [(NS, "a"), ("other", "b")]
    assert cache.keys("v1", "Secret", "other") == [("other", "b")]
    assert cache.keys("apps/v1", "Deployment", None) == [(NS, "d")]
    cache.observe("DELETED", _secret("a", 4))
    assert cache.keys("v1", "Secret", NS) == []
