"""The catalogue of production rules: id, title, rationale, fix and severity per environment.

This is the single source for `docs/rules.md` and for the severities the engine
assigns; a rule that does not apply in an environment has no entry for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callplatform.findings import Severity
from callplatform.model import ENVIRONMENTS

E = Severity.ERROR
W = Severity.WARNING


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    rationale: str
    fix: str
    severities: Mapping[str, Severity]  # environment -> severity; absent: the rule is off there
    security_debt: bool = False
    api_server: bool = False  # also enforced by the CRD's CEL validations at `kubectl apply`

    def severity_in(self, environment: str) -> Severity | None:
        """Severity in `environment`; an unknown environment is judged as production."""
        if environment not in ENVIRONMENTS:
            environment = "production"
        return self.severities.get(environment)


def _rule(
    rule_id: str,
    title: str,
    rationale: str,
    fix: str,
    production: Severity | None,
    staging: Severity | None,
    development: Severity | None,
    security_debt: bool = False,
    api_server: bool = False,
) -> Rule:
    levels = {"production": production, "staging": staging, "development": development}
    return Rule(
        id=rule_id,
        title=title,
        rationale=rationale,
        fix=fix,
        severities={env: level for env, level in levels.items() if level is not None},
        security_debt=security_debt,
        api_server=api_server,
    )


_CATALOGUE = (
    _rule(
        "CP001",
        "JITSI_JWT_SECRET shorter than 32 characters",
        "The JWT secret signs every meeting token (HS256). A short secret can be brute-forced offline "
        "from one captured token, after which anyone can mint tokens for any room. Counted: characters "
        "(code points, not bytes) without whitespace at either end and without control characters, so "
        "3 characters padded with 29 spaces or NULs count as 3 (and the padding is CP021).",
        "Generate at least 32 random characters, e.g. `openssl rand -base64 48`, and store them in the "
        "Secret key that spec.jitsi.jwt.secretRef names.",
        E,
        W,
        None,
    ),
    _rule(
        "CP002",
        "A production-required variable is missing or empty",
        "DATABASE_URL, JITSI_JWT_SECRET, JITSI_DOMAIN, JITSI_PUBLIC_HOST, TURN_HOST and the TURN "
        "credentials (TURN_USERNAME and TURN_PASSWORD in static mode, the shared secret in rest mode) "
        "are needed for calls to work at all; an empty value starts a backend that fails at the first call.",
        "Set the spec field, or put a non-empty value under the Secret key the spec references.",
        E,
        W,
        None,
    ),
    _rule(
        "CP003",
        "Demo seed enabled (ALLOW_DEMO_SEED) in production",
        "The demo seed creates users with a known password. In production that is a ready-made account "
        "for anyone who reads the docs.",
        "Set spec.demoSeed.enabled: false (ALLOW_DEMO_SEED=false) in production; seed demo data only in "
        "staging or development.",
        E,
        None,
        None,
        api_server=True,
    ),
    _rule(
        "CP004",
        "DEMO_USER_PASSWORD is set but is not a bcrypt hash",
        "The backend stores the demo password as given and compares it with bcrypt. A plain-text value "
        "both fails every login and leaves a password in clear text in the Secret. The raw value is "
        "judged, as the backend reads it (no stripping): $2a$, $2b$ or $2y$, a cost from 10 to 14 "
        "(04 is brute-forceable, 31 takes days per login), 53 characters of bcrypt base64. $2x$ (hashes "
        "from the broken pre-2011 crypt_blowfish) is refused.",
        "Store a bcrypt hash: `python -c \"import bcrypt;print(bcrypt.hashpw(b'pw', "
        'bcrypt.gensalt()).decode())"`, or remove the key.',
        E,
        E,
        E,
    ),
    _rule(
        "CP005",
        "DATABASE_URL is not a usable PostgreSQL URL",
        "The backend and its migrations only speak PostgreSQL. A URL without the postgres scheme, a host "
        "or a database name fails at start-up, after the rollout has begun.",
        "Use postgresql://USER:PASSWORD@HOST:5432/DATABASE (add ?sslmode=require in production).",
        E,
        E,
        E,
    ),
    _rule(
        "CP006",
        "A secret is a well-known default or trivially weak",
        "Defaults such as changeme, secret, password or keepthissecret, repetitions (changeme four "
        "times), dictionary words, keyboard walks and dates are the first guesses of any attacker. "
        "Strength is zxcvbn's estimate (PyPI zxcvbn, first 72 characters, without padding): fewer than "
        "10^10 guesses is weak, as zxcvbn's own matchers and scoring compute it; a value that a lower "
        "bound of that estimate already puts at 10^10 or more is not scored further "
        "(rules/zxcvbn_estimate.py; the verdict and the figure in the message are zxcvbn's). "
        "It judges JITSI_JWT_SECRET, TURN_PASSWORD, TURN_SHARED_SECRET and the "
        "password in DATABASE_URL. TURN passwords and shared secrets that are too short (counted in "
        "characters without padding) let anyone use the relay as an open proxy.",
        "Generate random values: `openssl rand -base64 32`. TURN passwords need at least 16 characters, "
        "TURN shared secrets at least 32.",
        E,
        W,
        None,
    ),
    _rule(
        "CP007",
        "JITSI_PUBLIC_HOST or TURN_HOST is not a bare hostname",
        "The operator pins these hosts in the Content-Security-Policy and in coturn's realm. A scheme, "
        "path, port, wildcard or space makes the CSP source invalid or far wider than intended.",
        "Give only the host name, e.g. meet.example.com: no https://, no /path, no :443, no *.",
        E,
        E,
        E,
        api_server=True,
    ),
    _rule(
        "CP008",
        "TURN relay may reach private, loopback, link-local or metadata addresses",
        "A TURN relay is a proxy for anyone holding credentials. Opening private ranges lets a caller reach "
        "cluster services, the node's loopback or the cloud metadata endpoint (169.254.169.254) from the "
        "internet (see CVE-2020-26262).",
        "Remove the range from spec.turn.relay.allowedPeerCIDRs, or allow only the single media server "
        "address that must be reachable (outside production).",
        E,
        W,
        W,
        api_server=True,
    ),
    _rule(
        "CP009",
        "DATABASE_URL turns TLS off (sslmode=disable)",
        "Without TLS, database credentials and call records cross the network in clear text.",
        "Use sslmode=require (or verify-full with the server's CA) in production.",
        W,
        None,
        None,
    ),
    _rule(
        "CP010",
        "A referenced Secret or key does not exist",
        "The operator cannot start the backend with a reference that resolves to nothing; Kubernetes would "
        "leave the pods in CreateContainerConfigError.",
        "Create the Secret in the platform's namespace with the key the spec names, or fix the reference.",
        E,
        E,
        E,
    ),
    _rule(
        "CP011",
        "A malformed value",
        "A value of the wrong type or outside its range (an unknown environment or credentials mode, "
        "ALLOW_DEMO_SEED=maybe, a port outside 1-65535, an inverted relay port range, a CIDR that does "
        "not parse) would be silently replaced by a default or rejected later.",
        "Correct the value as the message says; `kubectl explain callplatform.spec` lists every field.",
        E,
        E,
        E,
        api_server=True,
    ),
    _rule(
        "CP012",
        "style-src 'unsafe-inline' is allowed",
        "The calls frontend still sets inline styles, so the CSP allows style-src 'unsafe-inline'. That "
        "keeps CSS injection (data exfiltration through selectors) possible. Tracked as security debt.",
        "Move inline styles to stylesheets or nonces, then set spec.calls.allowUnsafeInlineStyles: false.",
        W,
        W,
        None,
        security_debt=True,
    ),
    _rule(
        "CP013",
        "JWT app id missing",
        "Jitsi checks the token's issuer against JWT_APP_ID. Without an app id every token is refused "
        "and nobody can join a call.",
        "Set spec.jitsi.jwt.appId to the issuer the calls backend puts in its tokens.",
        E,
        E,
        W,
    ),
    _rule(
        "CP014",
        "Fewer than 2 backend replicas in production",
        "With one replica every rollout, node drain or crash drops every signalling connection.",
        "Set spec.calls.replicas to 2 or more.",
        W,
        None,
        None,
    ),
    _rule(
        "CP015",
        "Backend image not pinned",
        "An image without a tag, or with :latest, changes under the platform without a spec change. The "
        "operator runs migrations per image, so an unpinned image can skip a migration.",
        "Use an explicit version tag (calls-backend:1.4.2) or a digest (@sha256:...).",
        W,
        None,
        None,
    ),
    _rule(
        "CP016",
        "One secret value used for two purposes",
        "Static TURN credentials are handed to every browser, and the database password travels in "
        "DATABASE_URL to every backend pod. If the JWT secret, a TURN secret or the database password share "
        "a value, whoever learns the most exposed one holds them all.",
        "Generate a separate random value for each of JITSI_JWT_SECRET, TURN_PASSWORD or "
        "TURN_SHARED_SECRET, and the database password.",
        E,
        W,
        None,
    ),
    _rule(
        "CP017",
        "A TURN credential that coturn would not read as written",
        "The operator writes the TURN credentials into coturn's turnserver.conf, one directive per line, "
        "and coturn reads that file 1023 bytes at a time, drops whitespace around a line and takes a "
        "password starting with 0x as a hex key. A line break or control character ends the directive and "
        "starts another; so does a value long enough to push a line past 1023 bytes (the rest is read as a "
        "directive of its own): whoever sets the Secret could add any directive, e.g. an allowed-peer-ip "
        "line that reopens private ranges to the relay. A trailing newline (kubectl create secret "
        "--from-file) silently splits the credential. coturn's user=name:password cannot hold a ':' in "
        "the name, and coturn keeps at most 256 bytes of a password.",
        "Store TURN_USERNAME, TURN_PASSWORD and TURN_SHARED_SECRET as at most 256 bytes without line "
        "breaks, control characters, '#' or whitespace at either end (kubectl create secret "
        "--from-literal, or strip the file's trailing newline), a password not starting with 0x, and a "
        "username without ':'.",
        E,
        E,
        E,
    ),
    _rule(
        "CP018",
        "Managed coturn image not pinned",
        "With spec.turn.server.managed the operator runs the coturn image the spec names. A tag that is "
        "empty or latest changes under the platform without a spec change, and coturn's accepted options "
        "differ between versions (an option an older build rejects stops the server).",
        "Set spec.turn.server.image.tag to a version (4.6.3) and, to pin it completely, "
        "spec.turn.server.image.digest.",
        W,
        W,
        None,
    ),
    _rule(
        "CP019",
        "A spec text field holds characters its consumer would read differently",
        "Spec fields end up in turnserver.conf (the realm), in Kubernetes objects (Secret names and keys, "
        "image, commands), in SQL (call log identifiers), in HTTP requests (probe URLs, the liveness "
        "path) or in tokens (app id, audience). A value with control characters, spaces, or characters "
        "outside what that consumer accepts is cut, rejected or reinterpreted there, e.g. a realm with a "
        "line break adds a directive to coturn's config. The CRD's patterns refuse the same values.",
        "Correct the value as the message says; `kubectl explain callplatform.spec` shows each field's "
        "pattern. A realm is a DNS-style name of at most 126 characters.",
        E,
        E,
        E,
        api_server=True,
    ),
    _rule(
        "CP020",
        "A TURN credential has non-ASCII characters",
        "TURN clients and servers disagree on non-ASCII credentials: browsers apply SASLprep or "
        "OpaqueString to the password, coturn and pion key on the raw UTF-8 bytes. A no-break space, a "
        "decomposed accent or a full-width letter then authenticates with some clients and not others.",
        "Use ASCII letters, digits and punctuation for TURN_USERNAME, TURN_PASSWORD and TURN_SHARED_SECRET.",
        W,
        W,
        W,
    ),
    _rule(
        "CP021",
        "A secret is padded with whitespace or holds control characters",
        "The app uses a secret byte for byte. Leading or trailing whitespace (a newline from "
        "--from-file, spaces from an editor) or control characters (NUL padding) make the value differ "
        "from the one you meant, and make a short secret look long: 3 characters and 29 spaces are 3 "
        "characters of secret.",
        "Store the value without whitespace at either end and without control characters.",
        E,
        E,
        W,
    ),
)

RULES: Mapping[str, Rule] = {rule.id: rule for rule in _CATALOGUE}
