"""The scale-out pipeline as real processes, for end-to-end and crash tests.

``safetrail process`` and ``safetrail project`` run as child processes with their own topic
names, consumer groups and store, exactly as an operator starts them, so a test can kill -9
one of them mid-stream and start it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from fastapi.testclient import TestClient

from ingest.kafka_sink import KafkaSink
from ingest.processor_app import H_REASON
from ingest.sdk import Emitter, trace
from projectors.retention import RetentionPolicy
from projectors.store import Store
from query_api.app import create_app
from safetrail.settings import Settings
from tests.kafka.helpers import unique


@dataclass
class Pipeline:
    """Names, environment and child processes of one isolated pipeline."""

    bootstrap: str
    store_url: str
    logs: Path
    prefix: str = field(default_factory=lambda: unique("st"))
    partitions: int = 3
    replication: int = 1
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """Environment of the child processes: everything comes from ``SAFETRAIL_*``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_")}
        env.update(
            SAFETRAIL_DEMO="1",
            SAFETRAIL_KAFKA_BOOTSTRAP=self.bootstrap,
            SAFETRAIL_CLICKHOUSE_URL=self.store_url,
            SAFETRAIL_TOPIC_RAW=f"{self.prefix}.raw",
            SAFETRAIL_TOPIC_CUSTOMER=f"{self.prefix}.customer",
            SAFETRAIL_TOPIC_SYSTEM=f"{self.prefix}.system",
            SAFETRAIL_TOPIC_DLQ=f"{self.prefix}.dlq",
            SAFETRAIL_TOPIC_PARTITIONS=str(self.partitions),
            SAFETRAIL_TOPIC_REPLICATION=str(self.replication),
            SAFETRAIL_CONSUMER_GROUP=f"{self.prefix}-projector",
            SAFETRAIL_PROJECTOR_BATCH_SIZE="2000",
            SAFETRAIL_PROJECTOR_BATCH_SECONDS="0.3",
            SAFETRAIL_PROCESSOR_STALL_SECONDS="30",
        )
        return env

    @property
    def settings(self) -> Settings:
        """The same settings the children read from their environment."""
        ours = {
            name.removeprefix("SAFETRAIL_").lower(): value
            for name, value in self.env.items()
            if name.startswith("SAFETRAIL_")
        }
        return Settings.model_validate(ours)

    @property
    def processor_group(self) -> str:
        """The faust app id, which is also its consumer group."""
        return f"{self.prefix}-processor"

    @property
    def outputs(self) -> list[str]:
        """The topics the processor writes and the projector reads."""
        s = self.settings
        return [s.topic_customer, s.topic_system, s.topic_dlq]

    def start(self, command: str, *options: str) -> subprocess.Popen[bytes]:
        """Start ``safetrail process`` or ``safetrail project`` (with ``options``) as a child
        process."""
        argv = [sys.executable, "-m", "safetrail.cli", command, *options]
        if command == "process":
            argv += ["--app-id", self.processor_group]
        log = (self.logs / f"{command}-{len(self.children)}.log").open("wb")
        child = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.children.append(child)
        return child

    def start_stages(
        self, metrics_port: int
    ) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
        """Start the faust worker (metrics on ``metrics_port``) and the projector; return once
        the worker is ready and the projector holds its partitions."""
        first = len(self.children)
        worker = self.start("process", "--metrics-port", str(metrics_port))
        projector = self.start("project")
        worker_log = self.logs / f"process-{first}.log"
        projector_log = self.logs / f"project-{first + 1}.log"
        wait_until(lambda: _ready(worker, worker_log, "Ready"), 90, "worker")
        wait_until(lambda: _ready(projector, projector_log, "assigned"), 90, "projector")
        return worker, projector

    def stop(self, child: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        """Signal one child and wait for it; returns its exit code."""
        if child.poll() is None:
            child.send_signal(sig)
        try:
            return child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait(10)

    def revive(self, stages: dict[str, subprocess.Popen[bytes]]) -> list[str]:
        """Act as the supervisor (compose ``restart: unless-stopped``, Kubernetes): start again
        each stage that exited by itself — code 75 (an undeliverable batch or a stalled
        worker), or faust giving up when no broker answered at start. Returns their names
        with the exit codes."""
        restarted = []
        for command, child in stages.items():
            code = child.poll()
            if code is not None:
                stages[command] = self.start(command)
                restarted.append(f"{command} (exit {code})")
        return restarted

    def stop_all(self) -> None:
        """Stop every child still running (test teardown)."""
        for child in self.children:
            if child.poll() is None:
                self.stop(child)

    def end_offsets(self, topics: list[str]) -> int:
        """Sum of the high watermarks of ``topics`` (messages written, markers included)."""
        with _consumer(self.bootstrap, unique("probe")) as c:
            return sum(
                c.get_watermark_offsets(TopicPartition(t, p), timeout=10, cached=False)[1]
                for t in topics
                for p in range(self.partitions)
            )

    def committed(self, group: str, topics: list[str]) -> int:
        """Sum of the offsets ``group`` committed on ``topics``."""
        tps = [TopicPartition(t, p) for t in topics for p in range(self.partitions)]
        with _consumer(self.bootstrap, group) as c:
            for attempt in range(20):
                try:
                    return sum(max(0, tp.offset) for tp in c.committed(tps, timeout=10))
                except KafkaException as exc:
                    # A fresh broker is still electing or loading its group coordinator.
                    err = exc.args[0]
                    if not (err.retriable() or err.code() in _COORDINATOR_BUSY) or attempt == 19:
                        raise
                    time.sleep(0.5)
        raise AssertionError("unreachable")

    def caught_up(self, group: str, topics: list[str]) -> bool:
        """True when ``group`` has committed everything written to ``topics``."""
        return self.committed(group, topics) >= self.end_offsets(topics)


_COORDINATOR_BUSY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


@contextmanager
def _consumer(bootstrap: str, group: str) -> Iterator[Consumer]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        yield consumer
    finally:
        consumer.close()


def _ready(child: subprocess.Popen[bytes], log: Path, marker: str) -> bool:
    assert child.poll() is None, f"{log.name} exited early:\n{log.read_text()[-3000:]}"
    return marker in log.read_text(errors="replace")


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.25) -> None:
    """Poll ``check`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


CUSTOMERS = 40
BAD_PAYLOADS: list[bytes] = [
    b"not json at all",
    b'{"trace_id": "tr_bad00001", "type": "signup.submitted"}',
    b'["an", "array"]',
    b'{"trace_id": "tr_bad00002", "type": "BAD TYPE", "occurred_at": "2026-11-26T10:00:00Z",'
    b' "source": "web"}',
    b'{"trace_id": "tr_bad00003", "type": "a.b", "occurred_at": "2026-11-26T10:00:00",'
    b' "source": "web"}',
]


def emit(sink: KafkaSink, start: int, count: int) -> list[str]:
    """Emit ``count`` realistic events through the SDK; return their event ids."""
    emitter = Emitter(sink, source="checkout")
    ids = []
    for i in range(start, start + count):
        event_id = f"ev_{i:07d}"
        customer = str(48000 + i % CUSTOMERS)
        with trace(f"tr_{i // 5:08d}"):
            if i % 2:
                emitter.emit(
                    "signup.submitted",
                    actor="customer",
                    subject={"customer_id": customer},
                    data={"email": f"user{i}@example.com", "plan": "pro"},
                    event_id=event_id,
                )
            else:
                emitter.emit(
                    "email_job.retry",
                    actor="system",
                    subject={"customer_id": customer, "job_id": f"job_{i // 5}"},
                    status="failed",
                    attempt=1 + i % 3,
                    error={"code": "PROVIDER_TIMEOUT", "message": f"timeout for user{i}@x.io"},
                    event_id=event_id,
                )
        ids.append(event_id)
    return ids


def api_event_ids(store: Store, pipeline: Pipeline) -> Counter[str]:
    """Every event id the API shows on the customers' timelines (all pages), with counts."""
    seen: Counter[str] = Counter()
    app = create_app(pipeline.settings, store)
    with TestClient(app) as client:
        headers = {"Authorization": "Bearer demo-support-token"}
        for n in range(CUSTOMERS):
            cursor: str | None = None
            while True:
                params: dict[str, str | int] = {"limit": 500}
                if cursor:
                    params["cursor"] = cursor
                resp = client.get(
                    f"/v1/customers/{48000 + n}/timeline", params=params, headers=headers
                )
                assert resp.status_code == 200, resp.text
                page = resp.json()
                seen.update(item["event_id"] for item in page["data"])
                cursor = page.get("next")
                if not cursor:
                    break
    return seen


def check_outcome(pipeline: Pipeline, expected: list[str], dlq_messages: list[Message]) -> None:
    """After a run: exactly the ``expected`` events are stored and readable through the API,
    each once; every payload of ``BAD_PAYLOADS`` was dead-lettered on the topic with its reason
    (a redelivery may have put one there twice) and is stored once, with its reason and
    where it came from."""
    assert {m.value() for m in dlq_messages} == set(BAD_PAYLOADS)
    assert all(dict(m.headers() or [])[H_REASON] for m in dlq_messages)
    settings = pipeline.settings
    store = Store.open(pipeline.store_url, RetentionPolicy.from_settings(settings))
    try:
        assert store.counts().timeline_events == len(expected)
        letters = store.dead_letters(limit=100)
        assert sorted(d.payload for d in letters) == sorted(BAD_PAYLOADS)
        reasons = {d.payload: d.reason for d in letters}
        assert reasons[b"not json at all"].startswith("not valid JSON")
        assert "occurred_at" in reasons[BAD_PAYLOADS[1]]
        assert all(d.reason for d in letters)
        assert all(d.origin == "kafka" and d.topic == settings.topic_raw for d in letters)
        seen = api_event_ids(store, pipeline)
    finally:
        store.close()
    assert set(seen) == set(expected), "events missing from (or unknown to) the API"
    assert max(seen.values()) == 1, "an event shows twice through the API"


def routed_counts(url: str) -> dict[str, float]:
    """The processor's events routed by outcome, from its Prometheus endpoint."""
    counts: dict[str, float] = {}
    for line in httpx.get(url, timeout=10).text.splitlines():
        if line.startswith("safetrail_processor_events_total{"):
            labels, _, value = line.rpartition(" ")
            counts[labels.split('outcome="')[1].split('"')[0]] = float(value)
    return counts
