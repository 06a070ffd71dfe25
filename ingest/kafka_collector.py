"""The collector in scale-out mode: ``POST /v1/events`` publishes to the raw topic, then answers.

Kept apart from ``kafka_sink`` so that services using the SDK do not import the processing
and storage stack.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ingest.batch import EventResult, parse_body
from ingest.collector import IngestReport, IngestUnavailable, results_for
from ingest.kafka_sink import KafkaSink, MessageTooLargeError
from ingest.process import Accepted, Retention, message_time, process
from ingest.sdk import DeliveryError
from redaction_rules.engine import Redactor


class KafkaIngestor:
    """The collector's ``Ingestor`` in scale-out mode: publish, then answer.

    Each payload is forwarded to the raw topic as received (bytes stay byte-exact) and
    ``ingest`` returns only once the broker acknowledged all of them, so "accepted" means
    durable in Kafka. The per-event answer comes from the same pure ``process`` step the
    processor runs, so the collector's verdict and the dead-letter topic agree.

    Size: the sink takes events up to its ``max_event_bytes`` (give it the collector's
    ``SAFETRAIL_MAX_BODY_BYTES``, so that whatever fits in a request body goes through). An
    event larger than that (only when the two differ, or re-serialising a parsed event made it
    larger than it came) is rejected alone, with its size and the limit as the reason, and the
    others of the request are published and answered as usual: no retry could ever deliver it,
    so answering 503 would only have the client retry the whole request until its timeout. It
    is not a dead letter, since no topic would take it. A broker that refuses a message the
    sink sent (a topic sized below safetrail's limit) is a deployment error: the request is
    answered 503 with what to fix, and the client keeps the events until it is fixed.

    ``retention_days`` is the timeline retention (``SAFETRAIL_RETENTION_DAYS``): an event older
    than it is answered "rejected" with the reason the processor gives its dead letter.
    """

    def __init__(
        self,
        sink: KafkaSink,
        redactor: Redactor,
        *,
        timeout: float = 30.0,
        retention_days: int | None = None,
    ) -> None:
        self.sink = sink
        self.redactor = redactor
        self.timeout = timeout
        self.retention_days = retention_days

    def ingest(self, payloads: Sequence[bytes | Mapping[str, Any]]) -> IngestReport:
        """Publish a request's events; raise ``IngestUnavailable`` if Kafka did not take them."""
        # The verdict's moment, to the millisecond, is also each message's time: the processor
        # judges retention at the message's time and so decides as this answer did.
        stamp = int(time.time() * 1000)
        days = self.retention_days
        received_at = message_time(stamp / 1000)
        retention = None if days is None or received_at is None else Retention(days, received_at)
        routed = [process(p, self.redactor, retention) for p in payloads]
        results = list(results_for(routed).results)
        try:
            for i, (payload, result) in enumerate(zip(payloads, routed, strict=True)):
                value = payload if isinstance(payload, bytes) else orjson.dumps(payload)
                trace_id = result.raw.trace_id if isinstance(result, Accepted) else result.trace_id
                try:
                    key = trace_id.encode() if trace_id else None
                    self.sink.send_bytes(value, key, stamp)
                except MessageTooLargeError as exc:
                    results[i] = EventResult(i, results[i].event_id, "rejected", _too_large(exc))
            self.sink.flush(self.timeout)
        except DeliveryError as exc:
            # The client is told nothing was accepted and retries; the events it re-sends
            # carry the same ids, so whatever did reach Kafka is stored once.
            self.sink.discard_undelivered()
            raise IngestUnavailable(str(exc)) from exc
        return IngestReport(tuple(results))

    def ingest_body(self, body: bytes) -> IngestReport:
        """``ingest`` for a request body (a JSON array); ``BadBody`` if it is not one."""
        return self.ingest(parse_body(body)[1])

    def close(self) -> None:
        """Deliver what is still queued."""
        self.sink.close()


def _too_large(exc: MessageTooLargeError) -> str:
    return (
        f"event is {exc.size} bytes, larger than the {exc.limit} bytes one event may take "
        "(SAFETRAIL_MAX_BODY_BYTES); not stored, not kept as a dead letter: send it smaller"
    )
