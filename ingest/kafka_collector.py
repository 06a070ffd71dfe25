"""The collector in scale-out mode: ``POST /v1/events`` publishes to the raw topic, then answers.

Kept apart from ``kafka_sink`` so that services using the SDK do not import the processing
and storage stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ingest.batch import parse_body
from ingest.collector import IngestReport, IngestUnavailable, results_for
from ingest.kafka_sink import KafkaSink
from ingest.process import Accepted, process
from ingest.sdk import DeliveryError
from redaction_rules.engine import Redactor


class KafkaIngestor:
    """The collector's ``Ingestor`` in scale-out mode: publish, then answer.

    Each payload is forwarded to the raw topic as received (bytes stay byte-exact) and
    ``ingest`` returns only once the broker acknowledged all of them, so "accepted" means
    durable in Kafka. The per-event answer comes from the same pure ``process`` step the
    processor runs, so the collector's verdict and the dead-letter topic agree.
    """

    def __init__(self, sink: KafkaSink, redactor: Redactor, *, timeout: float = 30.0) -> None:
        self.sink = sink
        self.redactor = redactor
        self.timeout = timeout

    def ingest(self, payloads: Sequence[bytes | Mapping[str, Any]]) -> IngestReport:
        """Publish a request's events; raise ``IngestUnavailable`` if Kafka did not take them."""
        routed = [process(p, self.redactor) for p in payloads]
        try:
            for payload, result in zip(payloads, routed, strict=True):
                value = payload if isinstance(payload, bytes) else orjson.dumps(payload)
                trace_id = result.raw.trace_id if isinstance(result, Accepted) else result.trace_id
                self.sink.send_bytes(value, trace_id.encode() if trace_id else None)
            self.sink.flush(self.timeout)
        except DeliveryError as exc:
            # The client is told nothing was accepted and retries; the events it re-sends
            # carry the same ids, so whatever did reach Kafka is stored once.
            self.sink.discard_undelivered()
            raise IngestUnavailable(str(exc)) from exc
        return results_for(routed)

    def ingest_body(self, body: bytes) -> IngestReport:
        """``ingest`` for a request body (a JSON array); ``BadBody`` if it is not one."""
        return self.ingest(parse_body(body)[1])

    def close(self) -> None:
        """Deliver what is still queued."""
        self.sink.close()
