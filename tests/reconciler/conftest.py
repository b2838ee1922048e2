"""Fixtures for the reconciler's in-memory tests: a fake API and a reconciler with a deterministic clock."""

from __future__ import annotations

import pytest
from reconciler_fake_kube import Clock, FakeKube

from callplatform.reconcile import Reconciler


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def reconciler(kube: FakeKube) -> Reconciler:
    return Reconciler(kube, clock=Clock())  # type: ignore[arg-type]
