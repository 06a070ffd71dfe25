"""The scale-out processor: a faust-streaming app around the same pure ``process`` function.

raw topic ─▶ ``process`` ─▶ customer / system timeline topic (by lane), or the dead-letter topic
with the reason, the source coordinates and the raw bytes.

Guarantee: at-least-once into Kafka, exactly-once where it matters (what support sees),
because every consumer downstream is idempotent: timeline rows are keyed by ``event_id`` and
dead letters by their source coordinates, so a message routed twice is stored once.

faust's own ``exactly_once`` mode was tried and rejected: it opens one transaction per *source*
partition but files each output in the transaction of the *destination* partition of the
destination topic's group, which only works when outputs go to co-partitioned topics the app
also consumes (changelogs). Sending to our timeline topics fails ("No transaction producer
found") or, with matching partition counts, commits offsets in a different transaction than
the outputs (faust issue #517 reports duplicates under read_committed).

How at-least-once is kept, against faust's known traps:

* one actor per worker (``concurrency=1``): faust can commit past an in-flight event when
  several actors ack out of order (issue #606); scale with partitions and workers instead;
* no manual acks (issue #315); events are acked by ``take_events`` only after the loop body
  returns, and the body returns only after the broker acknowledged every output of the batch;
* faust acks the in-flight batch even when the body is cancelled or raises (its iterators ack
  in ``finally``), so a batch being delivered is finished before the cancellation goes on, and
  a delivery failure ends the process at once (``os._exit``) before anything can be committed;
  the supervisor restarts it and the batch is processed again from the last commit.

Size: an event may be as large as a collector request body (``max_body_bytes``). The topics
created here take ``message_limit`` (that plus headroom for key, headers and framing), the
producer may send it and the consumer fetches it whole; an output that would still be larger
(which a message that fits the raw topic cannot become in practice) is never sent as is, since
the broker would refuse it and the worker would die on the same batch at every restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import faust
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic
from prometheus_client import Counter as Metric

from ingest.kafka_sink import max_message_bytes
from ingest.liveness import KafkaOffsets, Watchdog, exit_for_restart
from ingest.process import Accepted, Rejected, Retention, message_time, process
from ingest.schema import Lane
from redaction_rules.engine import Redactor
from safetrail.settings import Settings

log = logging.getLogger(__name__)

APP_ID = "safetrail-processor"
BATCH_SIZE = 500
BATCH_SECONDS = 0.05
PRODUCER_BATCH_BYTES = 512 * 1024
# Bytes a record adds around key, value and headers (lengths, offsets, timestamp), rounded up.
RECORD_FRAMING_BYTES = 1024

ROUTED = Metric("safetrail_processor_events_total", "Raw events routed", ["outcome"])

# Headers on dead letters: the value stays the raw bytes exactly as received.
H_REASON = "safetrail-reason"
H_TOPIC = "safetrail-source-topic"
H_PARTITION = "safetrail-source-partition"
H_OFFSET = "safetrail-source-offset"
H_EVENT_ID = "safetrail-event-id"
H_TRACE_ID = "safetrail-trace-id"


@dataclass(frozen=True, slots=True)
class Output:
    """One message to publish for one raw event."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a raw message was read from."""

    topic: str
    partition: int
    offset: int


def message_limit(settings: Settings) -> int:
    """The largest message safetrail's topics take and its producers send (see kafka_sink)."""
    return max_message_bytes(settings.max_body_bytes)


def message_size(out: Output) -> int:
    """An upper bound of the bytes ``out`` takes in a record batch."""
    headers = sum(len(name) + len(value) for name, value in out.headers)
    return len(out.value) + len(out.key or b"") + headers + RECORD_FRAMING_BYTES


def route(
    payload: bytes,
    source: Source,
    redactor: Redactor,
    settings: Settings,
    received_at: datetime | None = None,
) -> Output:
    """The output message for one raw message: pure, so it is tested without a broker.

    Every output fits ``message_limit``: a timeline message that would not becomes a dead
    letter saying so, and a dead letter whose raw bytes would not (a raw message larger than
    safetrail's producers send) keeps the reason and coordinates without the bytes.
    An event older than the timeline retention (``settings.retention_days``) at
    ``received_at`` (when it reached the raw topic; now when unknown) becomes a dead letter
    with that reason: the timeline would never show it.
    """
    retention = Retention(settings.retention_days, received_at or datetime.now(UTC))
    routed = process(payload, redactor, retention)
    limit = message_limit(settings)
    if isinstance(routed, Accepted):
        topic = settings.topic_customer if routed.lane is Lane.CUSTOMER else settings.topic_system
        out = Output(
            topic=topic,
            key=routed.timeline.trace_id.encode(),
            value=routed.timeline.model_dump_json().encode(),
        )
        if message_size(out) <= limit:
            return out
        routed = Rejected(
            reason=f"the redacted event is {len(out.value)} bytes, larger than the {limit} "
            "bytes a timeline message may take (SAFETRAIL_MAX_BODY_BYTES)",
            payload=payload,
            event_id=routed.raw.event_id,
            trace_id=routed.raw.trace_id,
        )
    letter = dead_letter(routed, source, settings.topic_dlq)
    if message_size(letter) <= limit:
        return letter
    bare = Rejected(
        reason=f"{routed.reason}; the raw message is {len(payload)} bytes, larger than the "
        f"{limit} bytes a dead letter may take, so its bytes stay only in the raw topic at "
        "the source coordinates",
        payload=b"",
        event_id=routed.event_id,
        trace_id=routed.trace_id,
    )
    return dead_letter(bare, source, settings.topic_dlq)


def dead_letter(rejected: Rejected, source: Source, topic: str) -> Output:
    """The dead-letter message: raw bytes as value, reason and coordinates as headers."""
    headers = [
        (H_REASON, rejected.reason.encode()),
        (H_TOPIC, source.topic.encode()),
        (H_PARTITION, str(source.partition).encode()),
        (H_OFFSET, str(source.offset).encode()),
    ]
    if rejected.event_id:
        headers.append((H_EVENT_ID, rejected.event_id.encode()))
    if rejected.trace_id:
        headers.append((H_TRACE_ID, rejected.trace_id.encode()))
    key = rejected.trace_id.encode() if rejected.trace_id else None
    return Output(topic=topic, key=key, value=rejected.payload, headers=headers)


def topic_specs(settings: Settings) -> list[NewTopic]:
    """The four topics with partitions, replication and retention from settings.

    Timeline topics are only a buffer in front of ClickHouse (which keeps the long retention),
    so every topic keeps messages for ``raw_topic_retention_hours``; the raw and dead-letter
    topics hold unredacted input and are the ones to restrict with ACLs. Each takes messages
    of ``message_limit`` (the brokers' default is about 1 MB, below the collector's body limit).
    """
    retention_ms = str(settings.raw_topic_retention_hours * 3600 * 1000)
    config = {
        "retention.ms": retention_ms,
        "cleanup.policy": "delete",
        "max.message.bytes": str(message_limit(settings)),
    }
    names = (settings.topic_raw, settings.topic_customer, settings.topic_system, settings.topic_dlq)
    return [
        NewTopic(
            name,
            num_partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication,
            config=dict(config),
        )
        for name in names
    ]


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Topics that exist are left as they are, but each that takes smaller messages than
    ``message_limit`` is named in a warning (``undersized_topics``).
    """
    if not settings.kafka_bootstrap:
        raise ValueError("SAFETRAIL_KAFKA_BOOTSTRAP is not set")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    specs = topic_specs(settings)
    for problem in undersized_topics(
        admin, [t.topic for t in specs if t.topic in existing], message_limit(settings), timeout
    ):
        log.warning("%s", problem)
    wanted = [t for t in specs if t.topic not in existing]
    if not wanted:
        return []
    created = []
    for name, fut in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            fut.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            # Another worker created it between our listing and our request: fine.
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created


def undersized_topics(
    admin: AdminClient, topics: Sequence[str], limit: int, timeout: float = 30.0
) -> list[str]:
    """What to fix, per topic among ``topics`` whose ``max.message.bytes`` is below ``limit``.

    Topics someone else created are never altered here: an event the collector accepts would
    be refused by the broker, so the operator is told what to set instead.
    """
    if not topics:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in topics]
    problems = []
    for resource, fut in admin.describe_configs(resources, request_timeout=timeout).items():
        try:
            entry = fut.result(timeout=timeout).get("max.message.bytes")
        except KafkaException as exc:
            problems.append(f"topic {resource.name}: max.message.bytes unknown ({exc})")
            continue
        if entry is not None and entry.value is not None and int(entry.value) < limit:
            problems.append(
                f"topic {resource.name} takes messages of at most {entry.value} bytes, below the "
                f"{limit} an event of SAFETRAIL_MAX_BODY_BYTES needs: larger events will be "
                f"refused; set its max.message.bytes to {limit} (deploy/README.md)"
            )
    return problems


async def deliver(outputs: Sequence[Output], producer: Any) -> None:
    """Publish every output and return only when the broker acknowledged all of them.

    ``producer`` is the aiokafka producer under faust's. Outputs go out as one record batch per
    destination partition (``send_batch``), not one ``send`` each: one future and one
    accumulator entry per partition and batch instead of per event.
    Partitions come from the key exactly as the default partitioner picks them (murmur2), so
    one trace stays in one partition, in order.
    """
    partitions: dict[str, list[int]] = {}
    by_key: dict[tuple[str, bytes], int] = {}
    open_batches: dict[tuple[str, int], Any] = {}
    acks: list[Awaitable[Any]] = []
    for i, out in enumerate(outputs):
        parts = partitions.get(out.topic)
        if parts is None:
            parts = partitions[out.topic] = sorted(await producer.partitions_for(out.topic))
        if out.key is None:
            partition = parts[i % len(parts)]
        else:
            partition = by_key.get((out.topic, out.key), -1)
            if partition < 0:
                partition = parts[(murmur2(out.key) & 0x7FFFFFFF) % len(parts)]
                by_key[(out.topic, out.key)] = partition
        tp = (out.topic, partition)
        batch = open_batches.get(tp)
        if batch is None:
            batch = open_batches[tp] = producer.create_batch()
        if _append(batch, out) is None:  # batch full: hand it over, start the next one
            acks.append(await producer.send_batch(batch, out.topic, partition=partition))
            batch = open_batches[tp] = producer.create_batch()
            if _append(batch, out) is None:
                raise ValueError(f"output of {len(out.value)} bytes exceeds the batch size")
    for (topic, partition), batch in open_batches.items():
        acks.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*acks)


def _append(batch: Any, out: Output) -> Any:
    return batch.append(key=out.key, value=out.value, timestamp=None, headers=out.headers)


def _die(exc: BaseException) -> NoReturn:
    # Nothing after this may run: faust would ack (and later commit) the batch whose outputs
    # did not all reach the broker. The restart reprocesses it from the last commit.
    exit_for_restart(f"batch not delivered: {exc!r}")


def create_app(
    settings: Settings,
    redactor: Redactor,
    *,
    app_id: str = APP_ID,
    batch_size: int = BATCH_SIZE,
    batch_seconds: float = BATCH_SECONDS,
    watchdog: Watchdog | None = None,
) -> faust.App:
    """The faust app: one agent reading the raw topic in batches and routing each event.

    With a ``watchdog``, a timer keeps it told which raw partitions this worker holds.
    """
    if not settings.kafka_bootstrap:
        raise ValueError("SAFETRAIL_KAFKA_BOOTSTRAP is not set")
    workdir = settings.data_dir / "faust"
    workdir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = faust.App(
        app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        processing_guarantee="at_least_once",
        store="memory://",
        # faust keeps a small working directory; keep it under the data dir, not the cwd.
        datadir=str(workdir / app_id),
        autodiscover=False,
        web_enabled=False,
        producer_acks=-1,
        # Whole record batches per partition (see ``deliver``); a message larger than this
        # goes out alone in its own batch, which the topics' max.message.bytes takes.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        # Messages as large as the topics take (aiokafka checks its ``send`` against this),
        # fetched whole rather than through the broker's oversize-first-batch exception
        # (aiokafka skips past a message a fetch returns cut short).
        producer_max_request_size=message_limit(settings),
        consumer_max_fetch_size=message_limit(settings),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        stream_buffer_maxsize=4 * batch_size,
        # A worker killed with -9 keeps its partitions until the session times out (faust's
        # default is 60 s); commit often so a restart repeats little work.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
    )
    raw = app.topic(settings.topic_raw, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(raw, concurrency=1, name="route")
    async def route_raw(stream: Any) -> None:
        async for batch in stream.take_events(batch_size, within=batch_seconds):
            try:
                outputs = [
                    route(
                        bytes(ev.message.value or b""),
                        Source(ev.message.topic, ev.message.partition, ev.message.offset),
                        redactor,
                        settings,
                        message_time(ev.message.timestamp),
                    )
                    for ev in batch
                ]
            except Exception as exc:  # noqa: BLE001 - faust would ack the batch regardless
                _die(exc)
            await _deliver_or_die(outputs, _aiokafka_producer(app))
            for outcome, count in Counter(_outcome(out, settings) for out in outputs).items():
                ROUTED.labels(outcome=outcome).inc(count)

    if watchdog is not None:
        wd = watchdog

        async def track_assignment() -> None:
            held = app.consumer.assignment()
            wd.assigned = frozenset(tp.partition for tp in held if tp.topic == settings.topic_raw)

        app.timer(interval=1.0, name="liveness-assignment")(track_assignment)

    return app


def build_watchdog(settings: Settings, app_id: str) -> Watchdog:
    """The liveness watchdog of a worker in group ``app_id`` (see ``ingest/liveness.py``)."""
    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        raise ValueError("SAFETRAIL_KAFKA_BOOTSTRAP is not set")
    return Watchdog(
        lambda: KafkaOffsets(bootstrap, app_id, settings.topic_raw),
        settings.processor_stall_seconds,
        interval=min(5.0, settings.processor_stall_seconds / 4),
    )


async def _deliver_or_die(outputs: Sequence[Output], producer: Any) -> None:
    task = asyncio.ensure_future(deliver(outputs, producer))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # Rebalance or shutdown: faust acks this batch as soon as we give up, so the outputs
        # must be in Kafka first. Finish the delivery, then let the cancellation through.
        try:
            await task
        except Exception as exc:  # noqa: BLE001 - any failure means not delivered
            _die(exc)
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means not delivered
        _die(exc)


def _aiokafka_producer(app: faust.App) -> Any:
    """The started aiokafka producer inside faust's (its batch API is not wrapped by faust)."""
    wrapper: Any = app.producer
    return wrapper._ensure_producer()  # noqa: SLF001


def _outcome(out: Output, settings: Settings) -> str:
    if out.topic == settings.topic_dlq:
        return "rejected"
    return "customer" if out.topic == settings.topic_customer else "system"


def run_worker(app: faust.App, *, loglevel: str = "INFO") -> None:
    """Run the faust worker in this process until SIGTERM/SIGINT (graceful stop)."""
    use_uvloop()
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


def use_uvloop() -> bool:
    """Run on uvloop when it is installed (``faust-streaming[uvloop]``); true if so.

    faust schedules asyncio tasks for every message it reads; uvloop's task and callback
    machinery is native code and took about 10% off the worker's CPU per event here.
    """
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
