"""Repeated faults on the scale-out path, one run: the faust worker and the projector are each
killed with -9 twice, the API (publishing to Kafka) twice mid-request, and the single broker
is killed with -9 and restarted, at random moments while events flow in through the SDK and
through ``POST /v1/events``. After recovery exactly the accepted events are queryable, each
once. The seed is printed so a failing order of faults can be replayed
(``SAFETRAIL_FAULT_SEED``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ingest.kafka_sink import KafkaSink
from ingest.processor_app import ensure_topics
from projectors.retention import RetentionPolicy
from projectors.store import Store
from tests.kafka.pipeline import CUSTOMERS, Pipeline, api_event_ids, emit, wait_until
from tests.kafka_fixtures import LocalKafka, _local_env, free_port
from tests.store_fixtures import store_url

pytestmark = pytest.mark.kafka

ROUND_SDK = 600  # events per round through the SDK
ROUND_HTTP = 6  # batches per round through the API
BATCH = 100
FAULTS = ("process", "project", "api", "broker", "process", "project", "api")


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A single local broker for this test alone, so it can be killed and restarted."""
    state = tmp_path_factory.mktemp("kafka-own")
    broker = LocalKafka(
        state,
        _local_env(
            state,
            SAFETRAIL_KAFKA_PORT=str(free_port()),
            SAFETRAIL_KAFKA_CONTROLLER_PORT=str(free_port()),
        ),
    )
    broker.run("up")
    try:
        yield broker
    finally:
        broker.run("down")


class Api:
    """``safetrail serve`` in scale-out mode: ``POST /v1/events`` publishes to the raw topic."""

    def __init__(self, pipeline: Pipeline, logs: Path) -> None:
        self.pipeline, self.logs = pipeline, logs
        self.child: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.starts = 0

    def start(self) -> None:
        port = free_port()
        argv = [sys.executable, "-m", "safetrail.cli", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(port)]
        log = (self.logs / f"serve-{self.starts}.log").open("wb")
        self.starts += 1
        # The projector holds the pipeline's chDB store (one process per chDB path); this API
        # only ingests, so it gets a store of its own.
        env = {**self.pipeline.env, "SAFETRAIL_CLICKHOUSE_URL": f"chdb://{self.logs / 'api-chdb'}"}
        self.child = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert self.child is not None and self.child.poll() is None, "serve exited"
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 90, "the API")

    def kill(self) -> None:
        assert self.child is not None
        self.child.send_signal(signal.SIGKILL)
        self.child.wait(30)

    def stop(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(30)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait(10)


def _http_batches(start: int, count: int) -> list[list[dict[str, Any]]]:
    events = [
        {
            "event_id": f"ev_h{i:07d}",
            "trace_id": f"tr_h{i // 5:07d}",
            "type": "payment.captured",
            "occurred_at": "2026-11-26T10:00:00Z",
            "source": "billing",
            "actor": "system",
            "status": "done",
            "subject": {"customer_id": str(48000 + i % CUSTOMERS), "order_id": f"ord_{i}"},
            "data": {"email": f"payer{i}@example.com", "amount": i % 500},
        }
        for i in range(start, start + count)
    ]
    return [events[i : i + BATCH] for i in range(0, len(events), BATCH)]


def _post(
    api: Api, batches: list[list[dict[str, Any]]], acked: set[int], stop: threading.Event
) -> None:
    """Post each batch not yet acknowledged; stop at the first failure (the API died)."""
    headers = {"Authorization": "Bearer demo-service-token", "Content-Type": "application/json"}
    with httpx.Client(base_url=api.base, headers=headers, timeout=60) as client:
        for index, batch in enumerate(batches):
            if index in acked or stop.is_set():
                continue
            try:
                r = client.post("/v1/events", content=orjson.dumps(batch))
            except httpx.HTTPError:
                return
            if r.status_code == 202 and r.json()["accepted"] == len(batch):
                acked.add(index)
            elif r.status_code != 503:  # 503: Kafka did not take it; resent later
                raise AssertionError(f"{r.status_code} {r.text[:300]}")


def _kill_broker(broker: LocalKafka) -> None:
    pid = int((broker.state_dir / "single" / "kafka.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_when_every_stage_fails_repeatedly_then_exactly_the_accepted_events_are_queryable_once(
    own_broker: LocalKafka, tmp_path: Path
) -> None:
    seed = int(os.environ.get("SAFETRAIL_FAULT_SEED", random.SystemRandom().randrange(1 << 30)))
    print(f"fault seed {seed}")  # noqa: T201 - shown on failure to replay the same order
    rng = random.Random(seed)
    faults = list(FAULTS)
    rng.shuffle(faults)
    bootstrap = f"127.0.0.1:{own_broker.env['SAFETRAIL_KAFKA_PORT']}"
    pipeline = Pipeline(bootstrap, store_url(tmp_path), tmp_path)
    ensure_topics(pipeline.settings)
    api = Api(pipeline, tmp_path)
    sink = KafkaSink(bootstrap, pipeline.settings.topic_raw)
    sdk_ids: list[str] = []
    http: list[list[dict[str, Any]]] = []
    acked: set[int] = set()
    done: list[str] = []
    restarts: list[str] = []  # stages that exited asking for a restart (stall, delivery)
    try:
        stages = {"process": pipeline.start("process"), "project": pipeline.start("project")}
        api.start()
        for round_no, fault in enumerate(faults):
            restarts += pipeline.revive(stages)
            sdk_ids += emit(sink, round_no * ROUND_SDK, ROUND_SDK)
            sink.flush(120)
            http += _http_batches(round_no * ROUND_HTTP * BATCH, ROUND_HTTP * BATCH)
            stop = threading.Event()
            sender = threading.Thread(target=_post, args=(api, http, acked, stop))
            sender.start()
            time.sleep(rng.uniform(0.2, 1.5))  # the fault lands at a random moment
            if fault in stages:
                pipeline.stop(stages[fault], signal.SIGKILL)
                stages[fault] = pipeline.start(fault)
            elif fault == "api":
                api.kill()
                stop.set()
                sender.join(60)
                api.start()
            else:
                _kill_broker(own_broker)
                time.sleep(rng.uniform(0.5, 2.0))
                own_broker.run("up")
            stop.set()
            sender.join(120)
            done.append(fault)
        # Resend whatever the API never acknowledged, as a client with retries would.
        for _attempt in range(10):
            if len(acked) == len(http):
                break
            _post(api, http, acked, threading.Event())
            time.sleep(1)
        assert len(acked) == len(http), "the API never accepted some batches"
        sink.close()
        raw_topic = [pipeline.settings.topic_raw]

        def caught_up(group: str, topics: list[str]) -> bool:
            restarts.extend(pipeline.revive(stages))
            return pipeline.caught_up(group, topics)

        wait_until(lambda: caught_up(pipeline.processor_group, raw_topic), 240, "processor")
        wait_until(
            lambda: caught_up(pipeline.settings.consumer_group, pipeline.outputs), 240, "projector"
        )
    finally:
        api.stop()
        pipeline.stop_all()

    print(f"restarted on request: {restarts}")  # noqa: T201
    assert sorted(done) == sorted(FAULTS)
    expected = set(sdk_ids) | {e["event_id"] for batch in http for e in batch}
    assert len(expected) == len(sdk_ids) + len(http) * BATCH
    store = Store.open(pipeline.store_url, RetentionPolicy.from_settings(pipeline.settings))
    try:
        assert store.counts().timeline_events == len(expected)
        seen = api_event_ids(store, pipeline)
    finally:
        store.close()
    assert set(seen) == expected
    assert max(seen.values()) == 1, [e for e, n in seen.items() if n > 1][:10]
