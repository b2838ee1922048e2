"""The catalogue is complete, docs/rules.md is generated from it, and the CRD's messages agree with it."""

from __future__ import annotations

import re

from rules_fixtures import CRD_FILE, ROOT

from callplatform.model import ENVIRONMENTS
from callplatform.rules import RULES
from callplatform.rules.docs import render_markdown


def test_rule_ids_are_contiguous_and_documented() -> None:
    assert list(RULES) == [f"CP{n:03d}" for n in range(1, len(RULES) + 1)]
    assert len(RULES) >= 12
    for rule in RULES.values():
        assert rule.title and rule.rationale and rule.fix
        assert set(rule.severities) <= set(ENVIRONMENTS)
        assert rule.severities, f"{rule.id} applies nowhere"


def test_docs_are_generated_from_the_catalogue() -> None:
    docs = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert docs == render_markdown(), "regenerate: python -m callplatform.rules.docs > docs/rules.md"
    for rule_id in RULES:
        assert f"## {rule_id}" in docs


def test_crd_messages_name_only_rules_marked_as_enforced_by_the_api_server() -> None:
    crd = CRD_FILE.read_text(encoding="utf-8")
    named = set(re.findall(r'message: "(CP\d{3}):', crd))
    assert named == {rule.id for rule in RULES.values() if rule.api_server}
