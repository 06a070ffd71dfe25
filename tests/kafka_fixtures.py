"""A real Apache Kafka broker for the tests marked ``kafka``.

Where the broker comes from, first that works:

1. ``SAFETRAIL_KAFKA_BOOTSTRAP`` (a broker someone already runs),
2. a testcontainers ``KafkaContainer`` when a Docker engine answers,
3. the local broker of ``deploy/local/kafka.sh`` on free ports with its own data directory,
   stopped at the end of the session.

When none can be started the tests fail: a Kafka test that skips in CI proves nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
# Confluent Platform 8.0 is Apache Kafka 4.0 in KRaft mode (what faust-streaming's CI runs).
CONTAINER_IMAGE = os.environ.get("SAFETRAIL_KAFKA_TEST_IMAGE", "confluentinc/cp-kafka:8.0.0")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalKafka:
    """A broker (or cluster) started by ``deploy/local/kafka.sh`` in its own state directory."""

    state_dir: Path
    env: dict[str, str]

    def run(self, *verb: str, timeout: float = 180.0) -> None:
        """Run a ``kafka.sh`` verb; fail the test with the script's output when it fails."""
        proc = subprocess.run(
            ["bash", str(KAFKA_SH), *verb],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"kafka.sh {' '.join(verb)} failed ({proc.returncode}):\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}",
                pytrace=False,
            )


def _docker_answers() -> bool:
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        import docker  # type: ignore[import-untyped]  # testcontainers brings it

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False
    return True


def _local_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_KAFKA")}
    env["SAFETRAIL_KAFKA_DIR"] = str(state_dir)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running Apache Kafka broker for the whole test session."""
    configured = os.environ.get("SAFETRAIL_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(CONTAINER_IMAGE).with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    port, controller = free_port(), free_port()
    state = tmp_path_factory.mktemp("kafka")
    broker = LocalKafka(
        state,
        _local_env(
            state,
            SAFETRAIL_KAFKA_PORT=str(port),
            SAFETRAIL_KAFKA_CONTROLLER_PORT=str(controller),
        ),
    )
    broker.run("up")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        broker.run("down")


@pytest.fixture(scope="session")
def local_kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A three-node local cluster for fault tests (nodes are stopped and killed by number).

    Always the local scripts: fault tests need to kill brokers, which a configured or
    containerised broker does not allow.
    """
    ports = [free_port() for _ in range(6)]
    state = tmp_path_factory.mktemp("kafka-cluster")
    cluster = LocalKafka(
        state,
        _local_env(
            state,
            SAFETRAIL_KAFKA_CLUSTER_PORTS=" ".join(map(str, ports[:3])),
            SAFETRAIL_KAFKA_CLUSTER_CONTROLLER_PORTS=" ".join(map(str, ports[3:])),
        ),
    )
    cluster.run("cluster-up")
    try:
        yield cluster
    finally:
        cluster.run("cluster-down")


def cluster_bootstrap(cluster: LocalKafka) -> str:
    """The bootstrap string of a cluster started by ``local_kafka_cluster``."""
    ports = cluster.env["SAFETRAIL_KAFKA_CLUSTER_PORTS"].split()
    return ",".join(f"127.0.0.1:{p}" for p in ports)
