"""Kafka path: sustained events/s SDK -> processor -> projector -> ClickHouse, and latency.

The bench starts its own single-node Apache Kafka on 127.0.0.1 (``deploy/local/kafka.sh``), then
``safetrail process`` and ``safetrail project`` as separate processes, exactly as an operator
runs them (the child-process harness is the one the crash tests use). Two phases:

1. sustained: emit ``burst`` events through the SDK as fast as the producer takes them; the
   rate is events / (first emit -> projector committed everything, i.e. stored in ClickHouse);
2. latency: emit at a fixed offered load (5,000 events/s) for ``seconds``; each event's
   emit-to-queryable latency is ``ingested_at`` (stamped by the store as the projector inserts
   the batch) minus ``occurred_at`` (stamped by the SDK at emit), read from the store afterwards.

What limits the sustained rate is computed from CPU measured during the burst: each stage's
process (processor, projector, broker JVM, this process for the SDK) and the whole machine from
``/proc/stat``, so work that is not ours (other jobs on a shared machine) shows as such.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench.common import REPO, free_port, proc_cpu_seconds, proc_peak_rss_mb, sampled
from ingest.kafka_sink import KafkaSink, wait_for_broker
from ingest.processor_app import BATCH_SECONDS
from ingest.sdk import Emitter, trace
from projectors.kafka_projector import LINGER
from projectors.retention import RetentionPolicy
from projectors.store import Store
from tests.kafka.helpers import create_topics
from tests.kafka.pipeline import Pipeline, wait_until

KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
TARGET_RATE = 20_000
OFFERED = 5_000
TARGET_P99_MS = 1000.0
LIGHT = 1_000


def _paced(emitter: Emitter, sink: KafkaSink, prefix: str, rate: int, seconds: float) -> float:
    """Emit ``rate`` events/s for ``seconds`` in 10 ms ticks; returns the rate achieved."""
    per_tick, tick = max(1, rate // 100), 0.01
    total = int(seconds * rate)
    begin = time.perf_counter()
    for i in range(total):
        if i % per_tick == 0:
            pause = begin + (i // per_tick) * tick - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        _emit(emitter, prefix, i)
        if i % per_tick == per_tick - 1:
            sink._producer.poll(0)  # noqa: SLF001 - serve delivery callbacks while pacing
    sink.flush(120)
    return total / (time.perf_counter() - begin)


def _kafka(env: dict[str, str], verb: str) -> None:
    proc = subprocess.run(  # noqa: S603
        ["bash", str(KAFKA_SH), verb],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kafka.sh {verb}: {proc.stdout[-1000:]}{proc.stderr[-2000:]}")


def _emit(emitter: Emitter, prefix: str, i: int) -> None:
    with trace(f"tr_{prefix}{i // 5:08d}"):
        emitter.emit(
            "email_job.retry",
            actor="system",
            subject={"customer_id": str(48000 + i % 500), "job_id": f"job_{prefix}{i // 5}"},
            status="failed",
            attempt=1 + i % 3,
            data={"to": f"user{i}@example.com", "provider": "postmark"},
            error={"code": "PROVIDER_TIMEOUT", "message": f"timeout for user{i}@example.com"},
            event_id=f"ev_{prefix}{i:08d}",
        )


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, every process) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu_sample(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each stage, of this process (the SDK) and of the machine."""
    sample = {name: proc_cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    sample["sdk"] = time.process_time()  # the bench process: emit + librdkafka's threads
    sample["machine"] = _machine_busy_seconds()
    return sample


def _limited_by(cores: dict[str, float], us_per_event: dict[str, float], events: float) -> str:
    """What limits the sustained rate, from the CPU each stage used during the burst."""
    ncpu = os.cpu_count() or 1
    stages = ("processor", "projector", "broker", "sdk")
    ours = sum(cores[k] for k in stages)
    other = max(0.0, cores["machine"] - ours)
    per_event = sum(us_per_event[k] for k in stages)
    split = ", ".join(f"{k} {cores[k]:.2f}" for k in stages) + f", other work {other:.2f}"
    costs = ", ".join(f"{k} {us_per_event[k]:.0f}" for k in stages)
    ceiling = ncpu / per_event * 1e6 if per_event else float("inf")
    busiest = max(("processor", "projector"), key=lambda k: cores[k])
    if cores["machine"] >= 0.9 * ncpu:
        head = f"machine CPU-bound: {cores['machine']:.2f} of {ncpu} cores busy ({split})"
    elif cores[busiest] >= 0.85:
        head = (
            f"{busiest} CPU-bound at {cores[busiest]:.2f} cores (one Python thread; "
            f"machine {cores['machine']:.2f} of {ncpu} cores busy: {split})"
        )
    else:
        head = (
            f"no stage CPU-bound (busiest: {busiest} at {cores[busiest]:.2f} cores; machine "
            f"{cores['machine']:.2f} of {ncpu} busy: {split}): waits between stages"
        )
    return (
        f"{head}; CPU per event (us): {costs} = {per_event:.0f}, so {ncpu} cores carry at most "
        f"~{ceiling:,.0f} ev/s end to end ({events:,.0f} measured)"
    )


def _caught_up(p: Pipeline) -> bool:
    raw = [p.settings.topic_raw]
    return p.caught_up(p.processor_group, raw) and p.caught_up(p.settings.consumer_group, p.outputs)


class _Committed:
    """The projector group's committed offsets on the output topics, through one long-lived
    client (a new client per check would load the broker and this process while measuring)."""

    def __init__(self, p: Pipeline) -> None:
        self.tps = [TopicPartition(t, n) for t in p.outputs for n in range(p.partitions)]
        self.consumer = Consumer(
            {"bootstrap.servers": p.bootstrap, "group.id": p.settings.consumer_group}
        )

    def __call__(self) -> int:
        return sum(max(0, tp.offset) for tp in self.consumer.committed(self.tps, timeout=10))

    def close(self) -> None:
        self.consumer.close()


def run(burst: int = 100_000, seconds: float = 20.0) -> dict[str, Any]:
    """Run both phases on a broker started here; stop everything at the end."""
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
        root = Path(tmp)
        port, controller = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_KAFKA")}
        env.update(
            SAFETRAIL_KAFKA_DIR=str(root / "kafka"),
            SAFETRAIL_KAFKA_PORT=str(port),
            SAFETRAIL_KAFKA_CONTROLLER_PORT=str(controller),
        )
        t0 = time.perf_counter()
        _kafka(env, "up")
        broker_start_s = time.perf_counter() - t0
        bootstrap = f"127.0.0.1:{port}"
        try:
            wait_for_broker(bootstrap)
            broker_pid = int((root / "kafka" / "single" / "kafka.pid").read_text())
            return _phases(bootstrap, root, burst, seconds, broker_start_s, broker_pid)
        finally:
            _kafka(env, "down")


def _phases(  # noqa: PLR0913 - one call site, the run's context
    bootstrap: str,
    root: Path,
    burst: int,
    seconds: float,
    broker_start_s: float,
    broker_pid: int,
) -> dict[str, Any]:
    (root / "logs").mkdir()
    store_url = f"chdb://{root / 'chdb'}"
    p = Pipeline(bootstrap, store_url, root / "logs")
    s = p.settings
    create_topics(bootstrap, [s.topic_raw, *p.outputs], partitions=p.partitions)
    with contextlib.chdir(root):  # faust keeps its local state under the working directory
        processor, projector = p.start("process"), p.start("project")
    result: dict[str, Any] = {"broker_start_seconds": round(broker_start_s, 1)}
    try:
        sink = KafkaSink(bootstrap, s.topic_raw)
        emitter = Emitter(sink, source="bench")
        # Warm-up: processes up, consumer groups joined, first batch stored.
        for i in range(200):
            _emit(emitter, "w", i)
        sink.flush()
        wait_until(lambda: _caught_up(p), 180, "warm-up events stored", every=0.5)

        pids = {"processor": processor.pid, "projector": projector.pid, "broker": broker_pid}
        cpu0 = _cpu_sample(pids)
        base = p.end_offsets(p.outputs)  # one output message per event (not transactional)
        stored = _Committed(p)
        start = time.perf_counter()
        with sampled(processor.pid) as processor_frames, sampled(projector.pid) as projector_frames:
            for i in range(burst):
                _emit(emitter, "b", i)
            sink.flush(120)
            emitted_s = time.perf_counter() - start
            wait_until(lambda: stored() >= base + burst, 600, "burst stored", every=0.1)
            wall = time.perf_counter() - start
        cpu1 = _cpu_sample(pids)
        cores = {k: (cpu1[k] - cpu0[k]) / wall for k in cpu0}
        us_per_event = {k: (cpu1[k] - cpu0[k]) / burst * 1e6 for k in cpu0}
        result.update(
            burst_events=burst,
            events_per_s=round(burst / wall, 1),
            sdk_emit_events_per_s=round(burst / emitted_s, 1),
            processor_cpu_cores=round(cores["processor"], 2),
            projector_cpu_cores=round(cores["projector"], 2),
            broker_cpu_cores=round(cores["broker"], 2),
            sdk_cpu_cores=round(cores["sdk"], 2),
            machine_busy_cores=round(cores["machine"], 2),
            cpu_us_per_event={k: round(v, 1) for k, v in us_per_event.items()},
        )
        limited_by = _limited_by(cores, us_per_event, burst / wall)
        limited_by += (
            f"; sampled own time, processor: {'; '.join(processor_frames) or 'not sampled'}"
            f"; projector: {'; '.join(projector_frames) or 'not sampled'}"
        )
        result.update(processor_frames=processor_frames, projector_frames=projector_frames)

        # Fixed offered load: OFFERED events/s, then a light load (LIGHT/s) for context.
        offered = _paced(emitter, sink, "l", OFFERED, seconds)
        total = int(seconds * OFFERED)
        wait_until(lambda: stored() >= base + burst + total, 600, "paced stored", every=0.2)
        light_total = int(seconds * LIGHT)
        _paced(emitter, sink, "m", LIGHT, seconds)
        done = base + burst + total + light_total
        wait_until(lambda: stored() >= done, 600, "light load stored", every=0.2)
        stored.close()
        sink.close()
        result["processor_peak_rss_mb"] = proc_peak_rss_mb(processor.pid)
        result["projector_peak_rss_mb"] = proc_peak_rss_mb(projector.pid)
    finally:
        for child in (projector, processor):
            p.stop(child, signal.SIGTERM)
        p.stop_all()

    store = Store.open(store_url, RetentionPolicy())
    try:
        with store._pool.client() as c:  # noqa: SLF001
            light = c.query(
                "SELECT quantilesExact(0.5, 0.99)"
                "(dateDiff('microsecond', occurred_at, ingested_at)) "
                "FROM timeline_events WHERE startsWith(event_id, 'ev_m')"
            ).result_rows[0][0]
            row = c.query(
                "SELECT count(), uniqExact(event_id), "
                "quantilesExact(0.5, 0.99)(dateDiff('microsecond', occurred_at, ingested_at)) "
                "FROM timeline_events WHERE startsWith(event_id, 'ev_l')"
            ).result_rows[0]
            burst_rows = c.command(
                "SELECT uniqExact(event_id) FROM timeline_events WHERE startsWith(event_id, 'ev_b')"
            )
            # One insert stamps all its rows with one ingested_at: rows per insert, by phase.
            per_insert = dict(
                c.query(
                    "SELECT phase, round(avg(n), 1) FROM (SELECT substring(event_id, 4, 1) "
                    "AS phase, count() AS n FROM timeline_events WHERE startsWith(event_id, "
                    "'ev_') GROUP BY ingested_at, phase) GROUP BY phase"
                ).result_rows
            )
    finally:
        store.close()
    p50, p99 = (float(v) / 1000 for v in row[2])
    result.update(
        paced_events=total,
        offered_events_per_s=round(offered, 1),
        paced_events_stored=int(row[1]),
        burst_events_stored=int(burst_rows),
        latency_p50_ms=round(p50, 1),
        latency_p99_ms=round(p99, 1),
        light_offered_events_per_s=LIGHT,
        light_latency_p50_ms=round(float(light[0]) / 1000, 1),
        light_latency_p99_ms=round(float(light[1]) / 1000, 1),
        timeline_rows_per_insert={
            "burst": per_insert.get("b"),
            "paced": per_insert.get("l"),
            "light": per_insert.get("m"),
        },
        target_events_per_s=TARGET_RATE,
        target_p99_ms=TARGET_P99_MS,
    )
    window, fill = s.projector_batch_seconds, s.projector_batch_min_seconds
    rows = result["timeline_rows_per_insert"]
    projector_batch = (
        f"projector batch (fills for {fill:g} s, then closes {LINGER:g} s after the consumer "
        f"runs dry, {window:g} s at most; timeline rows per insert: burst {rows['burst']}, "
        f"{OFFERED:,}/s {rows['paced']}, {LIGHT:,}/s {rows['light']})"
    )
    result["limited_by_light"] = (
        f"below capacity: processor take window (up to {BATCH_SECONDS:g} s) + "
        f"{projector_batch} + fetch waits + insert"
    )
    result["limited_by"] = (
        f"{limited_by}; latency adds the processor's take window (up to "
        f"{BATCH_SECONDS:g} s), the {projector_batch} and the insert"
    )
    sustained = float(result["events_per_s"])
    result["limited_by_paced"] = (
        f"over capacity: {result['offered_events_per_s']:,.0f} ev/s offered, {sustained:,.0f} "
        "sustained in the same run, so events queue for the whole window and this is how long "
        f"the queue grew, not the pipeline's latency; {result['limited_by']}"
        if sustained < float(result["offered_events_per_s"])
        else result["limited_by"]
    )
    return result


if __name__ == "__main__":
    import orjson

    print(orjson.dumps(run(burst=20_000, seconds=5), option=orjson.OPT_INDENT_2).decode())
