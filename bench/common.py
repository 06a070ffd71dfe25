"""Helpers shared by the benchmark modules: percentiles, peak memory, short profiles."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max of latency samples in milliseconds, rounded to 0.01 ms."""
    if not samples_ms:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []
    p50 = statistics.median(ordered)
    p99 = cuts[98] if cuts else ordered[0]
    return {"p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "max_ms": round(ordered[-1], 2)}


def own_peak_rss_mb() -> float:
    """Peak resident memory of this process (``ru_maxrss``, KiB on Linux) in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def children_peak_rss_mb() -> float:
    """Peak resident memory of the largest waited-for child process, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def proc_peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a running process, in MiB; None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (from /proc), None if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def descendants(pid: int) -> list[int]:
    """Every running process below ``pid`` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(parents.get(child, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``'s running descendants (worker processes), summed."""
    return sum(proc_cpu_seconds(child) or 0.0 for child in descendants(pid))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def top_frames(fn: Callable[[], Any], limit: int = 4) -> list[str]:
    """Run ``fn`` under pyinstrument; the functions with the most own time, as 'name (file) N%'.

    Own (self) time names the limit better than the call tree: the tree's root is always the
    entry point, the leaves are where the CPU goes.
    """
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        fn()
    finally:
        profiler.stop()
    session = profiler.last_session
    if session is None:
        return []
    root = session.root_frame()
    if root is None:
        return []
    own: dict[str, float] = {}

    def walk(frame: Any, parent: str) -> None:
        if str(frame.function).startswith("["):  # pyinstrument's synthetic self-time frame
            key = parent
        else:
            key = f"{frame.function} ({Path(frame.file_path_short or '?').name})"
        own[key] = own.get(key, 0.0) + float(frame.total_self_time)
        for child in frame.children:
            walk(child, key)

    walk(root, "?")
    # Shares of the sampled own time (they add up to 100 %; pyinstrument's synthetic frames
    # are folded into their parents above).
    total = max(sum(own.values()), 1e-9)
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:limit]
    return [f"{name} {100 * t / total:.0f}%" for name, t in ranked]


def _py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


@contextmanager
def sampled(pid: int, limit: int = 3) -> Iterator[list[str]]:
    """Sample another process with py-spy while the ``with`` block runs; the list it yields
    is filled on exit with the functions holding the most own time, as 'name (file) N%'.

    Left empty when py-spy is missing or may not attach (it needs ptrace rights); native
    frames (a C extension's own work) show as the Python call that entered them.
    """
    frames: list[str] = []
    spy = _py_spy()
    if spy is None:
        yield frames
        return
    with tempfile.TemporaryDirectory(prefix="bench-spy-") as tmp:
        out = Path(tmp) / "samples.txt"
        argv = [spy, "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", "50"]
        child = subprocess.Popen(  # noqa: S603 - py-spy from this environment, our arguments
            [*argv, "--nonblocking", "-d", "3600"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield frames
        finally:
            child.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if out.exists():
            frames.extend(_own_frames(out.read_text(), limit))


# Python frames that stand for a native event loop: its callbacks, I/O and waits all show
# as the frame that started it.
_NATIVE_LOOPS = {
    "Worker.execute_from_commandline": "faust's event loop (uvloop, native: fetch, tasks, waits)",
}


def _own_frames(raw: str, limit: int) -> list[str]:
    """Top own-time frames of py-spy's raw (collapsed stack) output."""
    own: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        name, _, where = leaf.partition(" (")
        path = where.split(":", 1)[0]
        if path.startswith("chdb/") or "/chdb/" in path:
            key = f"chDB engine ({name})"  # the embedded engine's native work, one call in
        elif name in _NATIVE_LOOPS:
            key = _NATIVE_LOOPS[name]
        else:
            key = f"{name} ({Path(path).name})" if where else name
        own[key] = own.get(key, 0) + int(count)
    total = max(sum(own.values()), 1)
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:limit]
    return [f"{name} {100 * n / total:.0f}%" for name, n in ranked]
