"""Connections to ClickHouse: chDB in-process (``chdb:///path``) or a server URL, one code path.

clickhouse-connect gives both backends the same client API. The differences that remain are
transport details, handled here so the rest of the code never branches on the backend:

* chDB allows one engine path per process; several clients on the same path share it, so a
  small pool lets reads run while the collector's writer inserts.
* HTTP clients must not share a server session across threads, so sessions are turned off.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect

# Settings applied to every statement. Services may send events spread over many days or
# years; one part per partition is fine, an insert that fails because a batch spans more than
# 100 partitions (daily raw tables) is not.
SESSION_SETTINGS: dict[str, Any] = {"throw_on_max_partitions_per_insert_block": 0}


def is_chdb(url: str) -> bool:
    """True for the embedded engine (``chdb:``), false for a ClickHouse server URL."""
    return url.startswith("chdb:")


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str) -> Any:
    """Open one clickhouse-connect client on ``url`` (timezone-aware UTC datetimes)."""
    kwargs: dict[str, Any] = {"tz_mode": "aware", "settings": SESSION_SETTINGS}
    if is_chdb(url):
        path = urlsplit(url).path
        if path and path != "/":
            Path(path).mkdir(parents=True, exist_ok=True)
    else:
        kwargs["autogenerate_session_id"] = False
        scheme = urlsplit(url).scheme
        if scheme in ("http", "https"):
            # clickhouse-connect ignores a DSN's scheme: without this, https:// (and the
            # password in it) would go over plain HTTP to port 8123.
            kwargs["interface"] = scheme
        # On a cluster, inserts through Distributed tables must reach the shards before they
        # return: projectors commit offsets and the audit chain reads back right after a write.
        kwargs["settings"] = {**SESSION_SETTINGS, "distributed_foreground_insert": 1}
    return clickhouse_connect.get_client(dsn=url, **kwargs)


class ClientPool:
    """Up to ``size`` clients on one URL, handed out one per thread at a time.

    A clickhouse-connect client serialises its own calls; the pool keeps a long insert from
    blocking the API's reads. Clients are created lazily, the first one eagerly so a bad URL
    fails at open time rather than on the first request.
    """

    def __init__(self, url: str, size: int = 4) -> None:
        self.url = url
        self._size = max(1, size)
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        first = connect(url)
        self._all.append(first)
        self._idle.put(first)

    @contextmanager
    def client(self) -> Iterator[Any]:
        """Borrow a client for the duration of the ``with`` block."""
        if self._closed:
            raise RuntimeError("the store is closed")
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self._grow_or_wait()
        try:
            yield client
        finally:
            self._idle.put(client)

    def _grow_or_wait(self) -> Any:
        with self._lock:
            if len(self._all) < self._size:
                client = connect(self.url)
                self._all.append(client)
                return client
        return self._idle.get(timeout=60)

    def close(self) -> None:
        """Close every client; on chDB this releases the engine path for another store."""
        with self._lock:
            self._closed = True
            for client in self._all:
                client.close()
            self._all.clear()
