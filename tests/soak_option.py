"""``--run-soak``: the long reliability runs (``make soak``) run only when asked for."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-soak", action="store_true", default=False, help="run tests marked soak")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long reliability runs, only with --run-soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-soak"):
        return
    skip = pytest.mark.skip(reason="soak run: pass --run-soak (make soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
