"""Shared fixtures; each area keeps its own in a module imported here."""

from tests.kafka_fixtures import kafka_bootstrap, local_kafka_cluster  # noqa: F401
from tests.soak_option import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401, E501
from tests.store_fixtures import timeline_store  # noqa: F401
