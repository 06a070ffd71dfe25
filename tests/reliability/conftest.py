"""Reliability fixtures: the API fixtures of tests/api (real app, real engine) reused here."""

from tests.api.conftest import api  # noqa: F401
