"""Fixtures for the rules, inputs and `validate` tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rules_fixtures import GOOD_SECRETS, valid_manifest


@pytest.fixture
def manifest() -> dict[str, Any]:
    return valid_manifest()


@pytest.fixture
def secrets() -> dict[str, dict[str, str]]:
    return {"calls-secrets": dict(GOOD_SECRETS)}


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
