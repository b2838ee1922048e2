"""Renders docs/rules.md from the catalogue, so the docs cannot drift from the engine.

python -m callplatform.rules.docs > docs/rules.md
"""

from __future__ import annotations

from callplatform.model import ENVIRONMENTS
from callplatform.rules.catalogue import RULES, Rule

_INTRO = """\
# Production rules

`callplatform validate` (offline, in CI) and the operator (before every rollout) judge a
CallPlatform with the same rules engine. Each finding has a stable rule id, a severity
(`error` blocks: `validate` exits 1 and the operator does not roll out; `warning` is reported,
and fails `validate --strict`), the object and field, and a message that says what to do.
Messages never contain a secret value: they name the Secret and key, or the variable.

Rules marked *kubectl apply* are also enforced by the CRD's validation rules, so the API
server refuses such a manifest with a message that starts with the rule id (CP003 and CP008
only when `spec.environment` is production, where they are errors). The others need the
values of Secrets, which the API server does not see.

## Running the rules in a pipeline

```console
$ callplatform validate examples/production.yaml          # files, directories, or - for stdin
$ callplatform validate --format json --strict manifests/  # warnings fail too
$ callplatform validate --env-file .env --environment production
```

Inputs are multi-document YAML holding CallPlatforms and the Secrets they reference (`data`
in base64 or `stringData`; a Secret is visible to the platforms of its namespace, or to all
when either has no namespace), or dotenv files with the checklist's variables: `DATABASE_URL`,
`JITSI_JWT_SECRET`, `JITSI_DOMAIN`, `JITSI_PUBLIC_HOST`, `TURN_HOST`, `TURN_USERNAME`,
`TURN_PASSWORD` (or `TURN_SHARED_SECRET` alone for rest mode), `DEMO_USER_PASSWORD`,
`ALLOW_DEMO_SEED`. `--environment` overrides `spec.environment`; env files default to
production.

`callplatform csp` and `callplatform render` judge their input through the same code before
printing anything: the same findings (on stderr), the same messages and the same exit codes,
and with an error finding they print nothing. The renderers are the last line: turnserver.conf
is written through one writer that leaves out (and comments as refused) any value coturn
would read differently (CP017, CP019), and the CSP writer only takes bare hostnames (CP007).

Where Secrets are kept out of Git, `--allow-missing-secrets` takes a Secret that is not among
the inputs to exist: it gets no CP010, its values are not checked, and a note on stderr names
it. Secrets that are among the inputs are checked as usual; the operator always checks them all.

Inputs are read as kubectl reads them: a key given twice in one mapping is an input error
naming both lines; a directory that cannot be listed anywhere in the tree, a file that cannot
be read, a device or pipe given as a path (`/dev/zero`), input that is not UTF-8 (stdin
included) and an input over 8 MiB are exit 2 with a one-line reason. YAML merge keys (`<<`) are
built from the merged mappings, so a long chain of merges costs the size of its result (up to
5 million merged entries, like kubectl's alias limit).

Exit codes: 0 no error (warnings allowed unless `--strict`), 1 at least one error (or warning
with `--strict`), 2 usage errors and input that cannot be read or parsed, reported as
`file:line: problem` without quoting the file's content.

JSON output: `{"findings": [{"rule", "severity", "object", "field", "message"}, ...],
"summary": {"errors": N, "warnings": M}}`. The object names the file and line of the
CallPlatform, e.g. `CallPlatform production (examples/production.yaml:18)`.

An unknown environment is itself a CP011 error, and the other rules then judge the platform
as production. This file is generated from `operator/callplatform/rules/catalogue.py`:
`python -m callplatform.rules.docs > docs/rules.md`.
"""


def _severity_cell(rule: Rule, environment: str) -> str:
    severity = rule.severities.get(environment)
    return str(severity) if severity is not None else "-"


def render_markdown() -> str:
    header = "| id | rule | " + " | ".join(ENVIRONMENTS) + " | enforced at |"
    lines = [_INTRO, "## The rules", "", header, "|" + "---|" * (len(ENVIRONMENTS) + 3)]
    for rule in RULES.values():
        where = "validate, operator" + (", kubectl apply" if rule.api_server else "")
        cells = " | ".join(_severity_cell(rule, env) for env in ENVIRONMENTS)
        lines.append(f"| [{rule.id}](#{rule.id.lower()}) | {rule.title} | {cells} | {where} |")
    for rule in RULES.values():
        lines += [
            "",
            f"## {rule.id}",
            "",
            f"**{rule.title}**" + (" (security debt)" if rule.security_debt else ""),
        ]
        levels = ", ".join(f"{env}: {_severity_cell(rule, env)}" for env in ENVIRONMENTS)
        lines += ["", f"Severity: {levels}.", "", f"Why: {rule.rationale}", "", f"Fix: {rule.fix}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
