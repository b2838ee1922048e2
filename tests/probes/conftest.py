"""Fixtures for the probe tests: real coturn (static and REST credentials) on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import Coturn, running_coturn


@pytest.fixture(scope="module")
def coturn_static(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    with running_coturn(tmp_path_factory.mktemp("coturn-static"), "static") as server:
        yield server


@pytest.fixture(scope="module")
def coturn_rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    with running_coturn(tmp_path_factory.mktemp("coturn-rest"), "rest") as server:
        yield server
