"""SDK sink that publishes raw events straight to the raw Kafka topic (the scale-out path).

Use it like the HTTP sink::

    from ingest.kafka_sink import KafkaSink
    from ingest.sdk import Emitter, trace

    emitter = Emitter(KafkaSink("broker-1:9092,broker-2:9092"), source="mail-worker")
    with trace() as trace_id:
        emitter.emit("email_job.retry", status="running", attempt=2)
    emitter.close()            # flushes; raises if anything could not be delivered

Delivery: an idempotent producer (``acks=all``, ``enable.idempotence``) keyed by ``trace_id``,
so one trace stays in one partition, in order, and a retried send is written once. Events wait
in a bounded local buffer (librdkafka's queue) while the broker is slow or away; a full buffer
raises ``BufferFullError`` and a delivery that finally fails raises ``DeliveryError`` on the
next call, with the events kept in ``undelivered``. Nothing is dropped without an exception.

Size: an event may be as large as the collector's request body (``SAFETRAIL_MAX_BODY_BYTES``,
5 MiB by default); every safetrail producer, and the topics ``safetrail process`` creates, take
messages of that plus headroom for key and headers (``max_message_bytes``). A larger event raises
``MessageTooLargeError`` (a ``DeliveryError``) from ``send`` itself, naming its size and the
limit; it is never queued, so it cannot hold up the events after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ingest.schema import Topic
from ingest.sdk import BufferFullError, DeliveryError

log = logging.getLogger(__name__)


# Keys to partitions as Java clients and aiokafka (the faust processor) pick them (murmur2),
# for every producer of ours: one trace stays in one partition whoever writes it, and a
# replayed event lands in its original's (librdkafka's default is CRC32).
PARTITIONER = "murmur2_random"

# The largest event one message carries: the collector's default request body limit
# (``Settings.max_body_bytes``), so what ``POST /v1/events`` accepts, Kafka carries.
DEFAULT_MAX_EVENT_BYTES = 5 * 1024 * 1024
# Room above the event for what a message adds around it: the key, a dead letter's headers
# (reason, source coordinates, ids: a few hundred bytes), record and record-batch framing.
MESSAGE_HEADROOM_BYTES = 64 * 1024

# librdkafka reports its own size check (at produce) with the broker's code too.
_TOO_LARGE = KafkaError.MSG_SIZE_TOO_LARGE


def max_message_bytes(max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> int:
    """The Kafka message size that carries an event of ``max_event_bytes``: librdkafka's
    ``message.max.bytes``, aiokafka's ``max_request_size`` and the topics' ``max.message.bytes``.
    """
    return max_event_bytes + MESSAGE_HEADROOM_BYTES


class MessageTooLargeError(DeliveryError):
    """One event is larger than a Kafka message may be; it was not sent (nor kept: the caller
    still holds it, and sending it again cannot succeed)."""

    def __init__(self, size: int, limit: int, topic: str) -> None:
        super().__init__(
            f"event of {size} bytes is larger than the {limit} bytes one event may take on "
            f"{topic} (SAFETRAIL_MAX_BODY_BYTES, and the topics' max.message.bytes); not sent"
        )
        self.size, self.limit, self.topic = size, limit, topic


class KafkaSink:
    """Publishes raw events to the raw topic; implements the SDK's ``Sink`` protocol.

    ``max_buffer`` bounds the events held locally (sent but not yet acknowledged).
    ``delivery_timeout`` is how long librdkafka keeps retrying one event before it reports it
    as failed (the broker down for that long). ``config`` adds or overrides librdkafka
    settings (SASL, TLS, ``client.id``...); idempotence and ``acks=all`` cannot be turned off.
    ``max_event_bytes`` is the largest event (serialised) it sends: match it to the collector's
    ``SAFETRAIL_MAX_BODY_BYTES``; the producer's ``message.max.bytes`` gets the headroom above.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = Topic.RAW.value,
        *,
        max_buffer: int = 100_000,
        delivery_timeout: float = 120.0,
        config: Mapping[str, str | int | float | bool] | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.topic = topic
        self.max_buffer = max_buffer
        self.max_event_bytes = max_event_bytes
        self.delivered = 0
        # (value, key, error) of events librdkafka gave up on; kept, never dropped.
        self.undelivered: list[tuple[bytes, bytes | None, str]] = []
        # Events produced and not yet reported back (delivered or failed). Counted here, not
        # with len(producer): librdkafka counts its own requests there too (with idempotence,
        # the producer-id request while no broker answers).
        self._pending = 0
        self._lock = threading.Lock()
        self._last_error: str | None = None
        settings: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            # Uncompressed: faust reads the raw topic through aiokafka, which needs extra
            # native packages for lz4/zstd/snappy.
            "compression.type": "none",
            "partitioner": PARTITIONER,
            "message.max.bytes": max_message_bytes(max_event_bytes),
            **(config or {}),
            "enable.idempotence": True,
            "acks": "all",
            "queue.buffering.max.messages": max_buffer,
            "delivery.timeout.ms": int(delivery_timeout * 1000),
            "error_cb": self._on_error,
            # librdkafka's own log lines go through Python logging, not straight to stderr.
            "logger": log,
        }
        self._message_max = int(settings["message.max.bytes"])
        self._producer = Producer(settings)

    # --- the Sink protocol ---------------------------------------------------------------

    def send(self, event: Mapping[str, Any]) -> None:
        """Queue one raw event; raises ``BufferFullError`` when the local buffer is full.

        Also raises ``DeliveryError`` first if earlier events failed for good, so a service
        learns about lost connectivity on its next call rather than at shutdown, and
        ``MessageTooLargeError`` (a ``DeliveryError``) for an event over ``max_event_bytes``.
        """
        trace_id = event.get("trace_id")
        key = trace_id.encode() if isinstance(trace_id, str) else None
        self.send_bytes(orjson.dumps(dict(event)), key)

    def send_bytes(self, value: bytes, key: bytes | None, timestamp_ms: int = 0) -> None:
        """Queue one already-serialised event (the collector forwards request bodies as is).

        ``timestamp_ms`` is the message's time (milliseconds since the epoch; 0: now): the
        collector passes the moment it judged the event, so the processor, which judges
        retention at the message's time, gives the same verdict.

        An event larger than ``max_event_bytes`` raises ``MessageTooLargeError`` and is neither
        produced nor kept. While earlier events are undelivered this event is not produced
        either: it joins them in ``undelivered`` (kept, and resent by ``resend_undelivered``)
        and ``DeliveryError`` is raised, as the error says.
        """
        if len(value) > self.max_event_bytes:
            raise MessageTooLargeError(len(value), self.max_event_bytes, self.topic)
        with self._lock:
            held = bool(self.undelivered)
            if held:
                self.undelivered.append((value, key, "not sent: earlier events failed"))
        if held:
            self._raise_undelivered()
        self._send(value, key, timestamp_ms)

    def _send(self, value: bytes, key: bytes | None, timestamp_ms: int = 0) -> None:
        try:
            self._produce(value, key, timestamp_ms)
        except BufferError:
            # Give in-flight deliveries a moment to free room before refusing the event.
            self._producer.poll(0.1)
            try:
                self._produce(value, key, timestamp_ms)
            except BufferError as exc:
                raise BufferFullError(self._full_message()) from exc
        self._producer.poll(0)

    def _produce(self, value: bytes, key: bytes | None, timestamp_ms: int = 0) -> None:
        try:
            self._producer.produce(
                self.topic,
                value=value,
                key=key,
                timestamp=timestamp_ms,
                on_delivery=self._on_delivery,
            )
        except KafkaException as exc:
            # librdkafka's own check (``message.max.bytes`` set lower through ``config``).
            if exc.args and exc.args[0].code() == _TOO_LARGE:
                limit = min(self.max_event_bytes, self._message_max)
                raise MessageTooLargeError(len(value), limit, self.topic) from exc
            raise
        with self._lock:
            self._pending += 1

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the broker acknowledged every queued event.

        Raises ``DeliveryError`` when events are still queued after ``timeout`` (they stay
        queued and a later ``flush`` can succeed) or when some failed for good.
        """
        self._producer.flush(timeout)
        self._raise_undelivered()
        remaining = self.buffered()
        if remaining:
            hint = f"; last broker error: {self._last_error}" if self._last_error else ""
            raise DeliveryError(
                f"{remaining} events still waiting for the broker after {timeout:.0f}s{hint}"
            )

    def close(self) -> None:
        """Flush (raising if anything was not delivered)."""
        self.flush()

    # --- helpers for the collector --------------------------------------------------------

    def publish(self, events: Sequence[Mapping[str, Any]], timeout: float = 30.0) -> None:
        """Send ``events`` and return only when the broker acknowledged all of them.

        What a collector answering "accepted" needs: after this returns the events are in
        the raw topic on every in-sync replica.
        """
        for event in events:
            self.send(event)
        self.flush(timeout)

    def buffered(self) -> int:
        """Events handed to the producer and not yet acknowledged."""
        with self._lock:
            return self._pending

    # --- callbacks -------------------------------------------------------------------------

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            self._pending -= 1
            if err is None:
                self.delivered += 1
            else:
                key = msg.key()
                key = key.encode() if isinstance(key, str) else key
                value = bytes(msg.value() or b"")
                reason = err.str()
                if err.code() == _TOO_LARGE:
                    # The topic takes less than this producer may send: a deployment to fix,
                    # not an event to drop (resent once the topic is sized, it is delivered).
                    reason = (
                        f"the broker refused a message of {len(value)} bytes as too large for "
                        f"{msg.topic()}: raise the topic's max.message.bytes to at least "
                        f"{max_message_bytes(self.max_event_bytes)} (deploy/README.md)"
                    )
                self.undelivered.append((value, key, reason))

    def _on_error(self, err: KafkaError) -> None:
        # Client-level errors ("all brokers down") do not fail events by themselves; they
        # explain why the buffer fills, so they go into the error messages.
        self._last_error = err.str()
        log.warning("kafka sink: %s", err.str())

    def _raise_undelivered(self) -> None:
        with self._lock:
            if not self.undelivered:
                return
            count, first = len(self.undelivered), self.undelivered[0][2]
        raise DeliveryError(
            f"{count} events could not be delivered to {self.topic} ({first}); they are kept "
            "in KafkaSink.undelivered: resend them with resend_undelivered() or store them"
        )

    def resend_undelivered(self) -> int:
        """Queue the events that failed earlier again; returns how many were queued."""
        with self._lock:
            failed, self.undelivered = self.undelivered, []
        for i, (value, key, _reason) in enumerate(failed):
            try:
                self._send(value, key)
            except DeliveryError:
                with self._lock:
                    self.undelivered[:0] = failed[i:]
                raise
        return len(failed)

    def discard_undelivered(self) -> int:
        """Forget failed events the caller has dealt with (told its client); returns how many."""
        with self._lock:
            count, self.undelivered = len(self.undelivered), []
        return count

    def _full_message(self) -> str:
        cause = f" (last broker error: {self._last_error})" if self._last_error else ""
        return (
            f"{self.buffered()} events buffered for {self.topic} and the broker is not "
            f"taking them{cause}; call flush() and check that Kafka is reachable"
        )


def wait_for_broker(bootstrap: str, timeout: float = 30.0) -> None:
    """Block until a broker answers a metadata request; raise ``DeliveryError`` otherwise."""
    probe = Producer({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe.list_topics(timeout=min(5.0, max(0.1, deadline - time.monotonic())))
            return
        except Exception as exc:  # noqa: BLE001 - KafkaException, or a timeout
            if time.monotonic() >= deadline:
                raise DeliveryError(f"no Kafka broker answered at {bootstrap}: {exc}") from exc
            time.sleep(0.2)
