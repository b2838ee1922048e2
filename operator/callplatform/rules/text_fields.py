"""Every free-text field of the spec, with what its consumer accepts (rule CP019).

One table for the rules engine and the CRD: tests/rules/test_crd_schema.py checks that each
field here has exactly this `pattern` and `maxLength` in crds/, so `kubectl apply`, `validate`
and the operator refuse the same values. Patterns are anchored and mean the same in Python's
`re` (used with fullmatch) and in the API server's RE2. Hosts, CIDRs and enums have their own
rules (CP007, CP008, CP011) and are not repeated here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from callplatform.model import Platform
from callplatform.rules.coturn_conf import MAX_REALM_LENGTH, REALM_PATTERN, realm_problem

DNS_SUBDOMAIN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$"
DNS_LABEL = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"
SECRET_KEY = r"^[-._a-zA-Z0-9]*$"
PRINTABLE_ASCII = r"^[!-~]*$"  # no spaces, no control characters, nothing a terminal could hide
URL = r"^(https?://[!-~]+)?$"
SQL_IDENTIFIER = r"^([A-Za-z_][A-Za-z0-9_]*)?$"
HTTP_PATH = r"^(/[!-~]*)?$"
IMAGE_TAG = r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)?$"
# A command argument: any text but control characters other than tab and newline (scripts).
COMMAND_ARGUMENT = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"

_MEANS = {
    DNS_SUBDOMAIN: "a Kubernetes name (lower-case letters, digits, '-' and '.')",
    DNS_LABEL: "a Kubernetes namespace (lower-case letters, digits and '-')",
    SECRET_KEY: "a Secret key (letters, digits, '-', '_' and '.')",
    PRINTABLE_ASCII: "printable ASCII without spaces",
    URL: "an http:// or https:// URL of printable ASCII without spaces",
    SQL_IDENTIFIER: "an SQL identifier (letters, digits and '_', not starting with a digit)",
    HTTP_PATH: "an HTTP path starting with '/' (printable ASCII without spaces)",
    IMAGE_TAG: "an image tag (letters, digits, '_', '.' and '-', not starting with '.' or '-')",
    COMMAND_ARGUMENT: "text without control characters (tab and newline are fine)",
}


@dataclass(frozen=True, slots=True)
class TextField:
    path: str  # as in the CRD; `[]` marks the items of a list
    pattern: str
    max_length: int
    values: Callable[[Platform], tuple[str, ...]]

    def problem(self, value: str) -> str | None:
        if len(value) > self.max_length:
            return f"is longer than {self.max_length} characters"
        if _compiled(self.pattern).fullmatch(value) is None:
            return f"must be {_MEANS[self.pattern]}"
        return None


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _CACHE:
        _CACHE[pattern] = re.compile(pattern)
    return _CACHE[pattern]


def _one(get: Callable[[Platform], str]) -> Callable[[Platform], tuple[str, ...]]:
    return lambda p: (get(p),)


def _attr(section: Callable[[Platform], object], name: str) -> Callable[[Platform], tuple[str, ...]]:
    return lambda p: (str(getattr(section(p), name)),)


def _ref_fields(path: str, get: Callable[[Platform], tuple[str, str] | None], key: str) -> list[TextField]:
    def part(index: int) -> Callable[[Platform], tuple[str, ...]]:
        def values(p: Platform) -> tuple[str, ...]:
            ref = get(p)
            return (ref[index],) if ref is not None else ()

        return values

    return [
        TextField(f"{path}.name", DNS_SUBDOMAIN, 253, part(0)),
        TextField(f"{path}.{key}", SECRET_KEY, 253, part(1)),
    ]


_CALL_LOG = (
    ("table", "table"),
    ("idColumn", "id_column"),
    ("startedAtColumn", "started_at_column"),
    ("endedAtColumn", "ended_at_column"),
    ("durationColumn", "duration_column"),
    ("participantsColumn", "participants_column"),
    ("participantsTable", "participants_table"),
    ("participantsCallIdColumn", "participants_call_id_column"),
    ("participantsLeftAtColumn", "participants_left_at_column"),
    ("startedByColumn", "started_by_column"),
    ("participantsJoinedAtColumn", "participants_joined_at_column"),
    ("participantsUserColumn", "participants_user_column"),
)
_HEADERS_PROBE_URLS = (("rootURL", "root_url"), ("callURL", "call_url"), ("chatURL", "chat_url"))


def _parent_refs(attr: str) -> Callable[[Platform], tuple[str, ...]]:
    return lambda p: tuple(str(getattr(ref, attr)) for ref in p.gateway.parent_refs)


def _none(_: Platform) -> tuple[str, ...]:
    return ()


_PROBE_URLS = (
    ("webURL", "web_url"),
    ("boshURL", "bosh_url"),
    ("jvbHealthURL", "jvb_health_url"),
    ("jicofoHealthURL", "jicofo_health_url"),
    ("tokenURL", "token_url"),
    ("prosodyHealthURL", "prosody_health_url"),
    ("colibriStatsURL", "colibri_stats_url"),
)


def _creds(p: Platform) -> tuple[str, str, str, str]:
    c = p.turn.credentials
    return c.secret_name, c.username_key, c.password_key, c.shared_secret_key


TEXT_FIELDS: tuple[TextField, ...] = (
    TextField("metadata.name", DNS_SUBDOMAIN, 253, _one(lambda p: p.name)),
    TextField("metadata.namespace", DNS_LABEL, 63, _one(lambda p: p.namespace)),
    TextField("spec.jitsi.jwt.appId", PRINTABLE_ASCII, 253, _one(lambda p: p.jitsi.jwt.app_id)),
    TextField("spec.jitsi.jwt.audience", PRINTABLE_ASCII, 253, _one(lambda p: p.jitsi.jwt.audience)),
    *_ref_fields(
        "spec.jitsi.jwt.secretRef",
        lambda p: (p.jitsi.jwt.secret_ref.name, p.jitsi.jwt.secret_ref.key),
        "key",
    ),
    *(
        TextField(f"spec.jitsi.probes.{name}", URL, 2048, _attr(lambda p: p.jitsi.probes, attr))
        for name, attr in _PROBE_URLS
    ),
    TextField("spec.jitsi.metrics.jicofo", URL, 2048, _one(lambda p: p.jitsi.metrics.jicofo_url)),
    TextField("spec.jitsi.metrics.jvb[]", URL, 2048, lambda p: p.jitsi.metrics.jvb_urls),
    TextField("spec.turn.credentials.secretRef.name", DNS_SUBDOMAIN, 253, _one(lambda p: _creds(p)[0])),
    TextField("spec.turn.credentials.secretRef.usernameKey", SECRET_KEY, 253, _one(lambda p: _creds(p)[1])),
    TextField("spec.turn.credentials.secretRef.passwordKey", SECRET_KEY, 253, _one(lambda p: _creds(p)[2])),
    TextField(
        "spec.turn.credentials.secretRef.sharedSecretKey", SECRET_KEY, 253, _one(lambda p: _creds(p)[3])
    ),
    *_ref_fields(
        "spec.database.urlSecretRef", lambda p: (p.database.url_ref.name, p.database.url_ref.key), "key"
    ),
    *(
        TextField(
            f"spec.database.callLog.{name}",
            SQL_IDENTIFIER,
            63,
            _attr(lambda p: p.database.call_log, attr),
        )
        for name, attr in _CALL_LOG
    ),
    TextField("spec.calls.image", PRINTABLE_ASCII, 512, _one(lambda p: p.calls.image)),
    TextField("spec.calls.command[]", COMMAND_ARGUMENT, 8192, lambda p: p.calls.command),
    TextField("spec.calls.migration.command[]", COMMAND_ARGUMENT, 8192, lambda p: p.calls.migration.command),
    TextField("spec.calls.imagePullSecrets[].name", DNS_SUBDOMAIN, 253, lambda p: p.calls.image_pull_secrets),
    TextField("spec.calls.livenessProbePath", HTTP_PATH, 1024, _one(lambda p: p.calls.liveness_probe_path)),
    TextField("spec.demoSeed.command[]", COMMAND_ARGUMENT, 8192, lambda p: p.demo_seed.command),
    TextField("spec.turn.tls.secretRef.name", DNS_SUBDOMAIN, 253, _one(lambda p: p.turn.tls_secret_name)),
    TextField(
        "spec.turn.server.image.repository", PRINTABLE_ASCII, 253, _one(lambda p: p.turn.server.repository)
    ),
    TextField("spec.turn.server.image.tag", IMAGE_TAG, 128, _one(lambda p: p.turn.server.tag)),
    TextField("spec.gateway.hostname", DNS_SUBDOMAIN, 253, _one(lambda p: p.gateway.hostname)),
    TextField("spec.gateway.parentRefs[].name", DNS_SUBDOMAIN, 253, _parent_refs("name")),
    TextField("spec.gateway.parentRefs[].namespace", DNS_LABEL, 63, _parent_refs("namespace")),
    TextField("spec.gateway.parentRefs[].sectionName", DNS_SUBDOMAIN, 253, _parent_refs("section_name")),
    # parentRef is the same schema node as parentRefs[] (a YAML anchor in the CRD); the model merges
    # both into parent_refs, judged above.
    TextField("spec.gateway.parentRef.name", DNS_SUBDOMAIN, 253, _none),
    TextField("spec.gateway.parentRef.namespace", DNS_LABEL, 63, _none),
    TextField("spec.gateway.parentRef.sectionName", DNS_SUBDOMAIN, 253, _none),
    *(
        TextField(
            f"spec.gateway.headersProbe.{name}", URL, 2048, _attr(lambda p: p.gateway.headers_probe, attr)
        )
        for name, attr in _HEADERS_PROBE_URLS
    ),
    *_ref_fields(
        "spec.demoSeed.passwordSecretRef",
        lambda p: (
            None
            if p.demo_seed.password_ref is None
            else (p.demo_seed.password_ref.name, p.demo_seed.password_ref.key)
        ),
        "key",
    ),
)

REALM_FIELD = "spec.turn.realm"
REALM_CRD_PATTERN = f"^({REALM_PATTERN[1:-1]})?$"  # empty: the realm defaults to spec.turn.host


def spec_text_problems(platform: Platform) -> Iterator[tuple[str, str]]:
    """(field path, what is wrong) for every free-text value its consumer would not take as given."""
    for text_field in TEXT_FIELDS:
        values = text_field.values(platform)
        for index, value in enumerate(values):
            problem = text_field.problem(value)
            if problem is not None:
                path = text_field.path.replace("[]", f"[{index}]")
                yield path, problem
    turn = platform.turn
    if turn.realm:
        problem = realm_problem(turn.realm)
        if problem is not None:
            yield REALM_FIELD, f"{problem}; coturn would not use it as given"
    elif len(turn.host) > MAX_REALM_LENGTH:  # the default realm; CP007 judges the host's syntax
        yield (
            REALM_FIELD,
            (
                f"is unset, so it defaults to spec.turn.host, which is longer than {MAX_REALM_LENGTH} "
                "characters, more than coturn keeps; set a shorter realm"
            ),
        )
