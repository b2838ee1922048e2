"""Watch-fed object caches: what a reconcile pass reads instead of asking the API server.

kopf already streams every watched kind (CallPlatforms, Secrets, the owned kinds). Its event
handlers feed each body into an `ObjectCache` before they ask for a pass, so the pass an event
triggers always reads a cache at least as new as that event. Bodies are kept by
(apiVersion, kind, namespace, name) and only ever replaced by a newer resourceVersion, so a late
event or a stale listing never overwrites what a write just returned.

A deletion leaves a tombstone (the object's uid and last resourceVersion): a write's response
stored after the DELETED event (the pass was writing the status as the object went) would
otherwise put back an object no event will ever remove. A body is refused while a tombstone of the
same uid is at least as new; a recreated object (another uid, a higher resourceVersion) replaces
it. Tombstones last TOMBSTONE_SECONDS (far longer than a pass's write takes to come back), at most
TOMBSTONE_LIMIT of them, oldest dropped first.

A kind is trusted only once it is *synced* in a scope (a namespace, or None for all): the
`CacheSyncer` lists it once with the same selector kopf's handlers care about, and merges that
listing with what the watch delivered meanwhile. Until then, and again while kopf re-lists after
a broken watch (objects deleted during the gap would otherwise stay behind), `CachedReader`
reads through to the API server. kopf's watch restarting (`relisting`, from its log line, see
callplatform.watch_restarts) or a listing of kopf's long after ours (`observe`, type None) starts
that distrust. The merge reports the entries it dropped (`Dropped`), so that the platforms owning
them get a pass: no event will ever say they went.

Owned kinds whose CRDs a cluster may lack (HTTPRoutes, ServiceMonitors) are *optional*: the cache
serves them only while kopf watches them (its resource scan found them served; `serve_optional`),
and forgets them when kopf stops. A listing answered 404 (the CRD went before kopf noticed) stops
serving the kind too, until kopf's view of it changes. Kinds nobody watches (optional kinds
without their CRDs, the Namespace, API discovery) go through a small memo with a time to live, so
an idle resync of a Ready platform makes no request at all.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from callplatform.kube import Kube, KubeError, Manifest

log = logging.getLogger(__name__)

CacheKey = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)
Scope = str | None  # a namespace, or None for the whole cluster
# A listing of kopf's (its watch restarted) this long after our own listing means a re-list.
RELIST_AFTER_SECONDS = 30.0
MEMO_SECONDS = 300.0
MEMO_LIMIT = 4096
TOMBSTONE_SECONDS = 600.0
TOMBSTONE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class WatchedKind:
    """A kind kopf watches, and the labels an object needs for the cache to keep it. An optional
    kind (its CRD may not be installed) is cached only while kopf watches it."""

    api_version: str
    kind: str
    labels: tuple[tuple[str, str], ...] = ()
    optional: bool = False

    @property
    def id(self) -> tuple[str, str]:
        return (self.api_version, self.kind)

    def keeps(self, body: Mapping[str, Any]) -> bool:
        labels = (body.get("metadata") or {}).get("labels") or {}
        return all(labels.get(key) == value for key, value in self.labels)


def resource_version(body: Mapping[str, Any]) -> int | None:
    """The object's resourceVersion as a number (etcd's revision), or None if it is not one."""
    try:
        return int((body.get("metadata") or {}).get("resourceVersion", ""))
    except ValueError:
        return None


def _older(candidate: int | None, current: int | None) -> bool:
    """Whether `candidate` is known to be older than `current`; unknown versions replace."""
    return candidate is not None and current is not None and candidate < current


@dataclass(frozen=True, slots=True)
class _Tombstone:
    """What a deleted object was: a body of the same uid, no newer, is a ghost of it."""

    version: int
    uid: str
    expires: float

    def buries(self, body: Mapping[str, Any]) -> bool:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if self.uid and uid and uid != self.uid:
            return False  # another object of the same name: created after the deletion
        return not _older(self.version, resource_version(body))


@dataclass(frozen=True, slots=True)
class _Entry:
    """A body as compact, zlib-compressed JSON (about a twelfth of its size as Python objects, and
    every read parses a private copy), without managedFields (the pass never reads them; they are
    much of a body). At 1000 platforms the cache holds about 8000 bodies: 12 MiB as JSON, 4 MiB
    compressed; a read decompresses in microseconds."""

    version: int | None
    labels: Mapping[str, str]
    raw: bytes

    @classmethod
    def of(cls, body: Mapping[str, Any], api_version: str, kind: str) -> _Entry:
        meta = {key: value for key, value in (body.get("metadata") or {}).items() if key != "managedFields"}
        kept = {**body, "apiVersion": api_version, "kind": kind, "metadata": meta}  # list items carry neither
        raw = json.dumps(kept, separators=(",", ":"), default=str).encode()
        return cls(resource_version(body), dict(meta.get("labels") or {}), zlib.compress(raw, 1))

    def body(self) -> Manifest:
        loaded: Manifest = json.loads(zlib.decompress(self.raw))
        return loaded


def _key(api_version: str, kind: str, body: Mapping[str, Any]) -> CacheKey:
    meta = body.get("metadata") or {}
    return (api_version, kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclass(frozen=True, slots=True)
class Dropped:
    """A cached object a listing no longer had: deleted while the watch could not tell."""

    api_version: str
    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]


def _labelled(labels: Mapping[str, str], selector: Mapping[str, str] | None) -> bool:
    return all(labels.get(key) == value for key, value in (selector or {}).items())


class ObjectCache:
    """Bodies of watched kinds by (apiVersion, kind, namespace, name); thread-safe."""

    def __init__(
        self,
        kinds: Iterable[WatchedKind],
        scopes: Iterable[Scope],
        *,
        clock: Callable[[], float] = time.monotonic,
        relist_after_seconds: float = RELIST_AFTER_SECONDS,
        tombstone_seconds: float = TOMBSTONE_SECONDS,
        tombstone_limit: int = TOMBSTONE_LIMIT,
    ) -> None:
        self.kinds = {kind.id: kind for kind in kinds}
        self.scopes = tuple(scopes) or (None,)
        self._clock = clock
        self._relist_after = relist_after_seconds
        self._tombstone_seconds = tombstone_seconds
        self._tombstone_limit = tombstone_limit
        self._entries: dict[CacheKey, _Entry] = {}
        self._tombstones: OrderedDict[CacheKey, _Tombstone] = OrderedDict()  # oldest first
        self._synced: set[tuple[str, str, Scope]] = set()
        self._listed_at: dict[tuple[str, str, Scope], float] = {}
        # How often kopf's watch of each kind and scope restarted, and as of which our listing began.
        self._restarts: dict[tuple[str, str, Scope], int] = {}
        self._listing_after: dict[tuple[str, str, Scope], int] = {}
        self._served = {kind.id for kind in self.kinds.values() if not kind.optional}
        self._kopf_watches: frozenset[tuple[str, str]] = frozenset()  # optional kinds, last we heard
        self._wanted: set[tuple[str, str, Scope]] = {
            (*kind, scope) for kind in self._served for scope in self.scopes
        }
        self._cv = threading.Condition()

    # --- what the watches and writes feed in ----------------------------------

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A kopf watch event: type None (a listing), ADDED, MODIFIED or DELETED."""
        api_version, kind = str(body.get("apiVersion", "")), str(body.get("kind", ""))
        watched = self.kinds.get((api_version, kind))
        if watched is None:
            return
        key = _key(api_version, kind, body)
        version = resource_version(body)
        with self._cv:
            if watched.id not in self._served:
                return  # not yet: the listing that starts serving it is newer than this event
            if event_type is None and self._relisted_long_after_ours(watched, key[2]):
                log.info("%s %s in %s is listed again by its watch: reading through until re-listed",
                         api_version, kind, key[2] or "all namespaces")  # fmt: skip
                self._distrust(watched, key[2])
            if event_type == "DELETED":
                current = self._entries.get(key)
                if current is None or not _older(version, current.version):
                    self._entries.pop(key, None)
                if version is not None:
                    self._bury(key, version, str((body.get("metadata") or {}).get("uid") or ""))
                return
            if not watched.keeps(body):  # e.g. someone removed our managed-by label
                self._entries.pop(key, None)
                return
            self._put(key, body)

    def store(self, body: Mapping[str, Any]) -> None:
        """What the API server returned for a write or a read-through: at least as new as we knew."""
        api_version, kind = str(body.get("apiVersion", "")), str(body.get("kind", ""))
        watched = self.kinds.get((api_version, kind))
        if watched is None or not watched.keeps(body):
            return
        with self._cv:
            if watched.id in self._served:
                self._put(_key(api_version, kind, body), body)

    def _bury(self, key: CacheKey, version: int, uid: str) -> None:
        now = self._clock()
        while self._tombstones:
            oldest = next(iter(self._tombstones.values()))
            if oldest.expires > now and len(self._tombstones) < self._tombstone_limit:
                break
            self._tombstones.popitem(last=False)
        self._tombstones.pop(key, None)
        self._tombstones[key] = _Tombstone(version, uid, now + self._tombstone_seconds)

    def _put(self, key: CacheKey, body: Mapping[str, Any]) -> None:
        tombstone = self._tombstones.get(key)
        if tombstone is not None:
            if tombstone.expires > self._clock() and tombstone.buries(body):
                return
            del self._tombstones[key]  # recreated, or too old to matter
        current = self._entries.get(key)
        if current is not None and _older(resource_version(body), current.version):
            return
        self._entries[key] = _Entry.of(body, key[0], key[1])

    def _relisted_long_after_ours(self, watched: WatchedKind, namespace: str) -> bool:
        """Whether a listing event of kopf's is a re-list: it comes long after our listing of a
        synced kind (kopf's first listing races ours). The second signal, after `relisting`: it
        catches the re-lists kopf logs nothing about (a listing cut by a dropped connection, a
        stream restarted after 429s), but not an empty re-listing (no event at all)."""
        now = self._clock()
        return any(
            state in self._synced and now - self._listed_at.get(state, now) >= self._relist_after
            for state in self._states(watched, namespace)
        )

    def relisting(self, api_version: str, kind: str, namespace: str | None) -> bool:
        """kopf's watch of a kind in a namespace (None: cluster-wide) restarts and lists again
        (410 Gone, or resumed after a pause). Objects deleted in the gap get no DELETED event, and
        one that was the only one of its kind gets no event at all: distrust the kind until we
        list it again. Whether the kind is one we cache."""
        watched = self.kinds.get((api_version, kind))
        if watched is None:
            return False
        with self._cv:
            if watched.id not in self._served:
                return False
            self._distrust(watched, namespace)
        log.info("%s %s in %s: kopf's watch restarts and lists again: reading through until re-listed",
                 api_version, kind, namespace or "all namespaces")  # fmt: skip
        return True

    def _states(self, watched: WatchedKind, namespace: str | None) -> list[tuple[str, str, Scope]]:
        return [
            (*watched.id, scope) for scope in self.scopes if namespace is None or scope in (None, namespace)
        ]

    def _distrust(self, watched: WatchedKind, namespace: str | None) -> None:
        for state in self._states(watched, namespace):
            self._synced.discard(state)
            self._wanted.add(state)
            # A listing of ours running now may predate the gap: replace_listing sees this count move.
            self._restarts[state] = self._restarts.get(state, 0) + 1
        self._cv.notify_all()

    # --- optional kinds -------------------------------------------------------------

    def serve_optional(self, kopf_watches: Iterable[tuple[str, str]]) -> None:
        """The optional kinds (apiVersion, kind) kopf watches now: each newly watched one is listed
        and then served from the cache; each no longer watched is forgotten (memo reads again)."""
        now = frozenset(k for k in kopf_watches if k in self.kinds and self.kinds[k].optional)
        with self._cv:
            if now == self._kopf_watches:
                return
            for started in sorted(now - self._kopf_watches):
                log.info("%s is watched now: read from the cache once listed", started[1])
                self._served.add(started)
                self._wanted.update((*started, scope) for scope in self.scopes)
            for stopped in sorted(self._kopf_watches - now):
                log.info("%s is no longer watched (its CRD went): read through the memo", stopped[1])
                self._stop_serving(stopped)
            self._kopf_watches = now
            self._cv.notify_all()

    def listing_not_found(self, watched: WatchedKind) -> None:
        """A 404 listing an optional kind: its CRD is gone, and kopf will stop watching it."""
        with self._cv:
            self._stop_serving(watched.id)

    def _stop_serving(self, kind_id: tuple[str, str]) -> None:
        self._served.discard(kind_id)
        self._synced = {state for state in self._synced if state[:2] != kind_id}
        self._wanted = {state for state in self._wanted if state[:2] != kind_id}
        for key in [key for key in self._entries if key[:2] == kind_id]:
            del self._entries[key]

    # --- listings (CacheSyncer) --------------------------------------------------

    def wanted(self) -> list[tuple[WatchedKind, Scope]]:
        with self._cv:
            return [(self.kinds[(api_version, kind)], scope) for api_version, kind, scope in sorted(
                self._wanted, key=lambda state: (state[0], state[1], state[2] or ""))]  # fmt: skip

    def wait_wanted(self, timeout: float) -> None:
        with self._cv:
            if not self._wanted:
                self._cv.wait(timeout)

    def listing_started(self, watched: WatchedKind, scope: Scope) -> None:
        with self._cv:
            state = (*watched.id, scope)
            self._listed_at[state] = self._clock()
            self._listing_after[state] = self._restarts.get(state, 0)
            self._wanted.discard(state)

    def listing_failed(self, watched: WatchedKind, scope: Scope) -> None:
        with self._cv:
            self._wanted.add((*watched.id, scope))

    def replace_listing(
        self, watched: WatchedKind, scope: Scope, items: Iterable[Mapping[str, Any]], list_version: str
    ) -> list[Dropped]:
        """Merge a listing (at resourceVersion `list_version`) with what the watch delivered
        meanwhile; the entries it dropped (gone with no DELETED event)."""
        api_version, kind = watched.id
        try:
            at: int | None = int(list_version)
        except ValueError:
            at = None
        with self._cv:
            if watched.id not in self._served:
                return []  # kopf stopped watching it while this listing ran
            listed: set[CacheKey] = set()
            dropped: list[Dropped] = []
            for item in items:
                key = _key(api_version, kind, item)
                listed.add(key)
                self._put(key, item)  # unless deleted after this listing's copy (its tombstone)
            for key in [k for k in self._entries if k[:2] == watched.id and scope in (None, k[2])]:
                if key in listed:
                    continue
                newer = at is not None and _older(at, self._entries[key].version)
                if not newer:  # not in a listing taken after it was written: gone
                    dropped.append(Dropped(*key, self._entries.pop(key).labels))
            state = (api_version, kind, scope)
            if self._listing_after.pop(state, 0) == self._restarts.get(state, 0):
                self._synced.add(state)  # else kopf's watch restarted while this ran: list once more
            return dropped

    # --- reads -------------------------------------------------------------------

    def watches(self, api_version: str, kind: str) -> bool:
        """Whether a watch feeds this kind into the cache (optional kinds: only while kopf's does)."""
        with self._cv:
            return (api_version, kind) in self._served

    def synced(self, api_version: str, kind: str, namespace: str | None) -> bool:
        with self._cv:
            return self._synced_locked(api_version, kind, namespace)

    def _synced_locked(self, api_version: str, kind: str, namespace: str | None) -> bool:
        if (api_version, kind, None) in self._synced:
            return True
        if namespace is None:
            return all((api_version, kind, scope) in self._synced for scope in self.scopes)
        return (api_version, kind, namespace) in self._synced

    def keys(self, api_version: str, kind: str, namespace: str | None) -> list[tuple[str, str]]:
        """(namespace, name) of the cached objects of a kind, without decoding a body (a resync of
        1000 platforms would otherwise parse all of them at once: 31 MiB for a list of names)."""
        with self._cv:
            return [
                (ns, name)
                for (av, k, ns, name) in self._entries
                if (av, k) == (api_version, kind) and namespace in (None, ns)
            ]

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        with self._cv:
            found = self._entries.get((api_version, kind, namespace, name))
        return found.body() if found is not None else None

    def list(
        self, api_version: str, kind: str, namespace: str | None, selector: Mapping[str, str] | None = None
    ) -> list[Manifest]:
        with self._cv:
            found = [
                entry
                for (av, k, ns, _), entry in self._entries.items()
                if (av, k) == (api_version, kind)
                and namespace in (None, ns)
                and _labelled(entry.labels, selector)
            ]
        return [entry.body() for entry in found]

    def __len__(self) -> int:
        with self._cv:
            return len(self._entries)


class ListingApi(Protocol):
    def list_snapshot(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: Mapping[str, str] | None = None,
    ) -> tuple[list[Manifest], str]: ...


class CacheSyncer:
    """Lists each watched kind once per scope (and again after kopf re-lists it) into the cache.
    `kopf_watches` tells which optional kinds kopf watches now (none without it); `on_dropped`
    hears, on the syncer's thread, of the entries a listing dropped."""

    def __init__(
        self,
        api: ListingApi,
        cache: ObjectCache,
        *,
        retry_seconds: float = 2.0,
        kopf_watches: Callable[[], Iterable[tuple[str, str]]] = tuple,
        on_dropped: Callable[[list[Dropped]], None] = lambda dropped: None,
    ) -> None:
        self._api = api
        self._on_dropped = on_dropped
        self._cache = cache
        self._retry = retry_seconds
        self._kopf_watches = kopf_watches
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        with self._cache._cv:
            self._cache._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def sync_once(self) -> bool:
        """List everything wanted now; whether all listings succeeded."""
        ok = True
        self._cache.serve_optional(self._kopf_watches())
        for watched, scope in self._cache.wanted():
            self._cache.listing_started(watched, scope)
            selector = dict(watched.labels) or None
            try:
                items, version = self._api.list_snapshot(watched.api_version, watched.kind, scope, selector)
            except KubeError as exc:
                if watched.optional and exc.status == 404:
                    log.info("%s is not served (its CRD went): read through the memo", watched.kind)
                    self._cache.listing_not_found(watched)
                    continue
                log.warning("cannot list %s for the cache (%s); reading through meanwhile", watched.kind, exc)
                self._cache.listing_failed(watched, scope)
                ok = False
                continue
            dropped = self._cache.replace_listing(watched, scope, items, version)
            if dropped:
                log.info("%d %s gone while the watch could not tell: asking for their platforms' passes",
                         len(dropped), watched.kind)  # fmt: skip
                self._on_dropped(dropped)
        return ok

    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self.sync_once():
                self._stopped.wait(self._retry)
                continue
            self._cache.wait_wanted(timeout=1.0)


class ObjectReader(Protocol):
    """The reads of a reconcile pass."""

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None: ...
    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: Mapping[str, str] | None = None,
    ) -> list[Manifest]: ...
    def serves(self, group_version: str, plural: str) -> bool: ...
    def remember(self, written: Manifest) -> None:
        """What a write returned, so the next pass does not read it again."""

    def forget(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Read this object afresh next time (an answer that holds the platform back)."""


class DirectReader:
    """Every read goes to the API server (tests, and `callplatform` tools that run one pass)."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        return self._kube.get(api_version, kind, namespace, name)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: Mapping[str, str] | None = None,
    ) -> list[Manifest]:
        return self._kube.list(api_version, kind, namespace, label_selector=label_selector)

    def serves(self, group_version: str, plural: str) -> bool:
        return self._kube.serves(group_version, plural)

    def remember(self, written: Manifest) -> None:
        return None

    def forget(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        return None


class Memo:
    """Answers for what nobody watches, each kept for `ttl_seconds`, at most `limit` of them."""

    def __init__(
        self,
        *,
        ttl_seconds: float = MEMO_SECONDS,
        limit: int = MEMO_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._limit = limit
        self._clock = clock
        self._answers: OrderedDict[tuple[str, ...], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], read: Callable[[], Any]) -> Any:
        now = self._clock()
        with self._lock:
            found = self._answers.get(key)
            if found is not None and found[0] > now:
                self._answers.move_to_end(key)
                return copy.deepcopy(found[1])
        value = read()  # errors are not remembered
        self.put(key, value)
        return value

    def drop(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._answers.pop(key, None)

    def put(self, key: tuple[str, ...], value: Any) -> None:
        with self._lock:
            self._answers[key] = (self._clock() + self._ttl, copy.deepcopy(value))
            self._answers.move_to_end(key)
            while len(self._answers) > self._limit:
                self._answers.popitem(last=False)


class CachedReader:
    """Reads from the watch-fed cache where a kind is synced, through to the API server where it
    is not yet, and through a memo for kinds nobody watches."""

    def __init__(self, kube: Kube, cache: ObjectCache, memo: Memo | None = None) -> None:
        self._kube = kube
        self.cache = cache
        self.memo = memo or Memo()

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        if not self.cache.watches(api_version, kind):
            found: Manifest | None = self.memo.get(
                ("get", api_version, kind, namespace, name),
                lambda: self._kube.get(api_version, kind, namespace, name),
            )
            return found
        if self.cache.synced(api_version, kind, namespace):
            return self.cache.get(api_version, kind, namespace, name)
        live = self._kube.get(api_version, kind, namespace, name)
        if live is not None:
            self.cache.store(live)
        return live

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: Mapping[str, str] | None = None,
    ) -> list[Manifest]:
        if self.cache.watches(api_version, kind) and self.cache.synced(api_version, kind, namespace):
            return self.cache.list(api_version, kind, namespace, label_selector)
        return self._kube.list(api_version, kind, namespace, label_selector=label_selector)

    def serves(self, group_version: str, plural: str) -> bool:
        served: bool = self.memo.get(
            ("serves", group_version, plural), lambda: self._kube.serves(group_version, plural)
        )
        return served

    def remember(self, written: Manifest) -> None:
        api_version, kind = str(written.get("apiVersion", "")), str(written.get("kind", ""))
        if not kind or not written.get("metadata"):
            return
        if self.cache.watches(api_version, kind):
            self.cache.store(written)
            return
        meta = written.get("metadata") or {}
        self.memo.put(
            ("get", api_version, kind, str(meta.get("namespace") or ""), str(meta.get("name"))), written
        )

    def forget(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Only memoised answers are dropped: watched kinds are kept fresh by their watch."""
        self.memo.drop(("get", api_version, kind, namespace, name))
