"""The processor's routing step, without a broker: lanes, dead letters, and their headers."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ingest.processor_app import (
    H_EVENT_ID,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TOPIC,
    H_TRACE_ID,
    Output,
    Source,
    deliver,
    route,
    topic_specs,
)
from ingest.schema import Lane, TimelineEvent
from redaction_rules.engine import Redactor
from safetrail.redactor import build_redactor
from safetrail.settings import Settings

SETTINGS = Settings(demo=True, topic_partitions=4, raw_topic_retention_hours=48)
SOURCE = Source(topic="safetrail.raw.v1", partition=2, offset=4711)
EVENT = {
    "event_id": "ev_route0001",
    "trace_id": "tr_route0001",
    "type": "signup.submitted",
    "occurred_at": "2026-11-26T10:12:15.120Z",
    "source": "web",
    "subject": {"customer_id": "48291"},
    "data": {"email": "maria.santos@gmail.com", "password": "hunter2"},
}


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return build_redactor(SETTINGS)


@pytest.mark.parametrize(
    ("event_type", "lane"),
    [
        ("signup.submitted", Lane.CUSTOMER),  # what the customer did
        ("account.created", Lane.SYSTEM),  # what the system did afterwards (rules decide)
    ],
)
def test_when_an_event_is_valid_then_it_goes_to_its_lane_topic_keyed_by_trace(
    redactor: Redactor, event_type: str, lane: Lane
) -> None:
    payload = orjson.dumps({**EVENT, "type": event_type})
    out = route(payload, SOURCE, redactor, SETTINGS)
    timeline = TimelineEvent.model_validate_json(out.value)
    assert timeline.lane is lane
    expected = {Lane.CUSTOMER: SETTINGS.topic_customer, Lane.SYSTEM: SETTINGS.topic_system}
    assert out.topic == expected[lane]
    assert out.key == b"tr_route0001"
    assert timeline.event_id == "ev_route0001"
    # Redacted before it leaves the processor: the raw secrets are nowhere in the message.
    assert b"hunter2" not in out.value
    assert b"maria.santos@gmail.com" not in out.value


@pytest.mark.parametrize(
    ("payload", "reason_part"),
    [
        (b"{not json", "not valid JSON"),  # broken bytes
        (b"[1, 2]", "must be a JSON object"),  # valid JSON, wrong shape
        (orjson.dumps({**EVENT, "occurred_at": "2026-11-26T10:12:15"}), "timezone"),  # naive time
        (orjson.dumps({**EVENT, "colour": "red"}), "colour"),  # unknown top-level key
    ],
)
def test_when_an_event_is_invalid_then_it_becomes_a_dead_letter_with_reason_and_coordinates(
    redactor: Redactor, payload: bytes, reason_part: str
) -> None:
    out = route(payload, SOURCE, redactor, SETTINGS)
    headers = dict(out.headers)
    assert out.topic == SETTINGS.topic_dlq
    assert out.value == payload  # the raw bytes, exactly as received
    assert reason_part in headers[H_REASON].decode()
    assert (headers[H_TOPIC], headers[H_PARTITION], headers[H_OFFSET]) == (
        b"safetrail.raw.v1",
        b"2",
        b"4711",
    )


def test_when_a_rejected_event_carries_ids_then_the_dead_letter_keeps_them(
    redactor: Redactor,
) -> None:
    out = route(orjson.dumps({**EVENT, "attempt": -1}), SOURCE, redactor, SETTINGS)
    headers = dict(out.headers)
    assert headers[H_EVENT_ID] == b"ev_route0001"
    assert headers[H_TRACE_ID] == b"tr_route0001"
    assert out.key == b"tr_route0001"  # same partition as the rest of its trace


def test_when_topics_are_specified_then_partitions_and_retention_come_from_settings() -> None:
    specs = {t.topic: t for t in topic_specs(SETTINGS)}
    assert set(specs) == {
        SETTINGS.topic_raw,
        SETTINGS.topic_customer,
        SETTINGS.topic_system,
        SETTINGS.topic_dlq,
    }
    for spec in specs.values():
        assert spec.num_partitions == 4
        assert spec.config is not None
        assert spec.config["retention.ms"] == str(48 * 3600 * 1000)


class _Batch:
    """Stands in for aiokafka's BatchBuilder: holds up to ``room`` messages."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []

    def append(
        self, *, key: bytes | None, value: bytes, timestamp: None, headers: list[tuple[str, bytes]]
    ) -> object | None:
        if len(self.messages) >= self.room:
            return None
        self.messages.append((key, value, headers))
        return object()


class _Producer:
    """Stands in for the aiokafka producer: records the batches handed over, acks on demand."""

    def __init__(self, room: int, fail: bool = False) -> None:
        self.room, self.fail = room, fail
        self.sent: list[tuple[str, int, _Batch]] = []
        self.acks: list[asyncio.Future[None]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> _Batch:
        return _Batch(self.room)

    async def send_batch(
        self, batch: _Batch, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        self.sent.append((topic, partition, batch))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack

    def ack_all(self) -> None:
        for ack in self.acks:
            if not ack.done():
                if self.fail:
                    ack.set_exception(ConnectionError("broker went away"))
                else:
                    ack.set_result(None)


def _outputs(n: int) -> list[Output]:
    return [
        Output(
            topic="t.customer" if i % 2 else "t.system",
            key=f"tr_{i // 4}".encode(),
            value=b"v%d" % i,
        )
        for i in range(n)
    ] + [Output(topic="t.dlq", key=None, value=b"bad", headers=[(H_REASON, b"why")])]


async def _deliver_then_ack(outputs: list[Output], producer: _Producer) -> bool:
    task = asyncio.ensure_future(deliver(outputs, producer))
    for _ in range(5):
        await asyncio.sleep(0)
    returned_before_acks = task.done()
    producer.ack_all()
    await task
    return returned_before_acks


def test_when_a_batch_is_delivered_then_each_output_goes_once_and_a_trace_stays_in_order() -> None:
    outputs = _outputs(50)
    producer = _Producer(room=4)
    assert asyncio.run(_deliver_then_ack(outputs, producer)) is False  # waited for the acks
    sent = [(topic, p, m) for topic, p, batch in producer.sent for m in batch.messages]
    assert sorted(m[1] for _, _, m in sent) == sorted(o.value for o in outputs)
    partitions: dict[tuple[str, bytes | None], set[int]] = {}
    order: dict[tuple[str, bytes | None], list[bytes]] = {}
    for topic, partition, (key, value, _headers) in sent:
        partitions.setdefault((topic, key), set()).add(partition)
        order.setdefault((topic, key), []).append(value)
    # One trace, one partition, in the order processed (the rollover to a new batch included).
    assert all(len(ps) == 1 for key, ps in partitions.items() if key[1] is not None)
    for (topic, key), values in order.items():
        assert values == [o.value for o in outputs if (o.topic, o.key) == (topic, key)]
    assert all(len(batch.messages) <= 4 for _, _, batch in producer.sent)
    assert [m[2] for topic, _, m in sent if topic == "t.dlq"] == [[(H_REASON, b"why")]]


def test_when_the_broker_does_not_acknowledge_then_delivery_raises() -> None:
    with pytest.raises(ConnectionError):
        asyncio.run(_deliver_then_ack(_outputs(10), _Producer(room=100, fail=True)))
