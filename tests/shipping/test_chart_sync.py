"""The chart carries generated copies of the CRD and the alert rules, never symlinks: the copies
must match their sources (scripts/sync_chart.py writes them)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from .conftest import CHART, REPO


def load_sync_chart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_chart", REPO / "scripts" / "sync_chart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync_chart = load_sync_chart()


def test_chart_copies_match_their_sources() -> None:
    problems = sync_chart.drift()
    assert not problems, "the chart's copies drifted; run `python scripts/sync_chart.py`:\n" + "\n".join(
        problems
    )


def test_chart_holds_no_symlink() -> None:
    links = [str(path.relative_to(REPO)) for path in CHART.rglob("*") if path.is_symlink()]
    assert not links, f"helm warns about, and checkov skips, symlinks in a chart: {links}"


def test_chart_copies_cover_the_crd_and_every_rule_file() -> None:
    expected = sync_chart.expected_files(REPO)
    assert CHART / "crds" / "callplatform.io_callplatforms.yaml" in expected
    for rules in (REPO / "ops" / "prometheus").glob("*.yaml"):
        assert CHART / "files" / "prometheus" / rules.name in expected


def copy_sources(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for part in ("crds", "ops/prometheus", "charts/callplatform-operator"):
        shutil.copytree(REPO / part, repo / part, symlinks=True)
    return repo


def test_drift_check_names_an_edited_source_a_stray_copy_and_a_symlink(tmp_path: Path) -> None:
    repo = copy_sources(tmp_path)
    assert sync_chart.drift(repo) == []
    rules = repo / "ops" / "prometheus" / "callplatform-rules.yaml"
    rules.write_text(rules.read_text() + "# an edit\n")
    chart = repo / "charts" / "callplatform-operator"
    (chart / "files" / "prometheus" / "old-rules.yaml").write_text("groups: []\n")
    crd_copy = chart / "crds" / "callplatform.io_callplatforms.yaml"
    crd_copy.unlink()
    crd_copy.symlink_to(repo / "crds" / "callplatform.io_callplatforms.yaml")
    assert sorted(sync_chart.drift(repo)) == [
        "charts/callplatform-operator/crds/callplatform.io_callplatforms.yaml is a symlink",
        "charts/callplatform-operator/files/prometheus/callplatform-rules.yaml differs from its source",
        "charts/callplatform-operator/files/prometheus/old-rules.yaml has no source",
    ]
    changed = sync_chart.sync(repo)
    assert len(changed) == 3
    assert sync_chart.drift(repo) == []
    assert not crd_copy.is_symlink()
    assert (chart / "files" / "prometheus" / "callplatform-rules.yaml").read_text().endswith("# an edit\n")
