"""Liveness of a faust worker: exit when its partitions stop draining, so it gets restarted.

A worker can look alive and do nothing: once seen here, a worker started while the only
broker was down said "Ready" when the broker came back and then fetched nothing for minutes.
Nothing is lost in that state (the raw events stay in Kafka, offsets uncommitted), but
support sees no new events until someone restarts the worker. The watchdog restarts it.

The check is made from outside faust, by the same numbers an operator would look at: the
group's committed offset and the high watermark of each raw partition, read with a separate
client that never joins the group. A partition is *stuck* while it has lag and its committed
offset does not move; a worker whose partitions (all raw partitions when it holds none) have
one stuck for ``stall_seconds`` exits with ``EXIT_RESTART``, its supervisor starts it again,
and the fresh worker re-reads from the last commit (at-least-once; downstream is idempotent).
Time during which the broker cannot be asked does not count: restarting cannot cure an outage.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

log = logging.getLogger(__name__)

# Exit code of a worker that must be started again (stalled, or a batch not delivered):
# "restart me", distinct from a crash.
EXIT_RESTART = 75


@dataclass(frozen=True, slots=True)
class Offsets:
    """One look at a partition: where the group is and where the log ends."""

    committed: int  # the group's committed offset; the log start when it never committed
    end: int  # high watermark


@dataclass
class StallDetector:
    """Pure bookkeeping: which partitions have had lag and no commit for how long."""

    stall_seconds: float
    # partition -> (committed offset seen, when it was first seen with lag at that offset)
    _since: dict[int, tuple[int, float]] = field(default_factory=dict)

    def observe(
        self, now: float, offsets: Mapping[int, Offsets] | None, scope: Collection[int] = ()
    ) -> list[int]:
        """Record one look; return the partitions of ``scope`` stuck for ``stall_seconds``.

        ``offsets`` is None when the broker could not be asked: the clocks start again.
        An empty ``scope`` means every partition in ``offsets``.
        """
        if offsets is None:
            self._since.clear()
            return []
        for partition, seen in offsets.items():
            if seen.end <= seen.committed:
                self._since.pop(partition, None)
                continue
            previous = self._since.get(partition)
            if previous is None or previous[0] != seen.committed:
                self._since[partition] = (seen.committed, now)
        watched = set(scope) if scope else set(offsets)
        return sorted(
            p
            for p, (_, since) in self._since.items()
            if p in watched and now - since >= self.stall_seconds
        )


class OffsetSource(Protocol):
    """Reads committed offsets and high watermarks of one group on one topic."""

    def offsets(self) -> Mapping[int, Offsets]:
        """Every partition of the topic; raises when the broker cannot be asked."""
        ...

    def close(self) -> None:
        """Release the client."""
        ...


class KafkaOffsets:
    """``OffsetSource`` over a confluent-kafka consumer that never subscribes (no rebalance)."""

    def __init__(self, bootstrap: str, group: str, topic: str, timeout: float = 10.0) -> None:
        from confluent_kafka import Consumer  # noqa: PLC0415 - only in the worker

        self.group, self.topic, self.timeout = group, topic, timeout
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )

    def offsets(self) -> Mapping[int, Offsets]:
        from confluent_kafka import TopicPartition  # noqa: PLC0415

        meta = self._consumer.list_topics(self.topic, timeout=self.timeout).topics[self.topic]
        if meta.error is not None:
            raise RuntimeError(str(meta.error))
        tps = [TopicPartition(self.topic, p) for p in sorted(meta.partitions)]
        committed = self._consumer.committed(tps, timeout=self.timeout)
        result = {}
        for tp in committed:
            if tp.error is not None:
                raise RuntimeError(str(tp.error))
            low, high = self._consumer.get_watermark_offsets(tp, timeout=self.timeout, cached=False)
            result[tp.partition] = Offsets(committed=max(tp.offset, low), end=high)
        return result

    def close(self) -> None:
        self._consumer.close()


def exit_for_restart(why: str) -> NoReturn:
    """End the process at once with ``EXIT_RESTART``: nothing after this may run (no ack, no
    commit); the supervisor starts a fresh worker that re-reads from the last commit."""
    log.critical("%s; exiting for a restart", why)
    logging.shutdown()
    os._exit(EXIT_RESTART)


def _exit_stalled(stuck: list[int]) -> None:
    exit_for_restart(f"partitions {stuck} made no progress")


class Watchdog:
    """A daemon thread that looks every ``interval`` seconds and exits the process when stuck.

    A thread, not a task on faust's event loop, so a wedged loop is caught as well.
    ``assigned`` is kept up to date by the worker (its partitions of the watched topic).
    """

    def __init__(
        self,
        source: Callable[[], OffsetSource],
        stall_seconds: float,
        interval: float = 5.0,
        on_stall: Callable[[list[int]], None] = _exit_stalled,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time  # noqa: PLC0415

        self._source_factory = source
        self.detector = StallDetector(stall_seconds)
        self.interval = interval
        self.on_stall = on_stall
        self.clock = clock or time.monotonic
        self.assigned: frozenset[int] = frozenset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liveness", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.interval + 30)

    def check(self, source: OffsetSource | None) -> list[int]:
        """One look (also what the thread does each interval); returns the stuck partitions."""
        offsets: Mapping[int, Offsets] | None = None
        if source is not None:
            try:
                offsets = source.offsets()
            except Exception as exc:  # noqa: BLE001 - an outage is not a stall
                log.info("liveness: broker not answering (%s); clocks restart", exc)
        return self.detector.observe(self.clock(), offsets, self.assigned)

    def _run(self) -> None:
        source: OffsetSource | None = None
        try:
            while not self._stop.wait(self.interval):
                if source is None:
                    try:
                        source = self._source_factory()
                    except Exception as exc:  # noqa: BLE001 - retried next interval
                        log.info("liveness: no client yet (%s)", exc)
                stuck = self.check(source)
                if stuck:
                    self.on_stall(stuck)
                    return
        finally:
            if source is not None:
                source.close()
