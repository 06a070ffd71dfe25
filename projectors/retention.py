"""Retention policy and the check that the TTL actually in force matches it.

A retention value shown in settings that never reaches the table TTL is a silent privacy and
support failure, so the store reads each table's TTL back from ``system.tables`` and compares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from safetrail.settings import Settings

PolicyKind = Literal["timeline", "raw"]

# table -> (TTL column, which retention applies; None = kept without TTL on purpose)
TTL_TABLES: dict[str, tuple[str, PolicyKind | None]] = {
    "timeline_events": ("occurred_at", "timeline"),
    "customer_lookup": ("last_seen", "timeline"),
    "subject_index": ("occurred_at", "timeline"),
    "raw_events": ("received_at", "raw"),
    "dead_letters": ("received_at", "raw"),
    "dead_letter_redrives": ("redriven_at", "raw"),
    "trace_index": ("occurred_at", None),
    "access_log": ("at", None),
}

_TTL_CLAUSE = re.compile(r"\bTTL\s+(.+?)(?:\s+SETTINGS\s|$)", re.S)
_DAYS = re.compile(r"toIntervalDay\((\d+)\)")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long support timelines and restricted raw data are kept, in days."""

    retention_days: int = 400
    raw_retention_days: int = 14

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The policy configured in settings."""
        return cls(settings.retention_days, settings.raw_retention_days)

    def days_for(self, kind: PolicyKind | None) -> int | None:
        """Days configured for a kind of table; None for tables kept without TTL."""
        if kind is None:
            return None
        return self.retention_days if kind == "timeline" else self.raw_retention_days

    def timeline_cutoff(self, now: datetime) -> datetime:
        """Oldest ``occurred_at`` a timeline answer may include at ``now``."""
        return now - timedelta(days=self.retention_days)


@dataclass(frozen=True, slots=True)
class TtlStatus:
    """Configured against actual TTL of one table."""

    table: str
    expected_days: int | None
    actual_days: int | None
    exists: bool = True

    @property
    def ok(self) -> bool:
        """True when the TTL in force is the configured one."""
        return self.exists and self.expected_days == self.actual_days


def parse_ttl_days(engine_full: str) -> int | None:
    """Days of a ``TTL col + toIntervalDay(N)`` clause in ``system.tables.engine_full``."""
    clause = _TTL_CLAUSE.search(engine_full)
    if clause is None:
        return None
    days = _DAYS.search(clause.group(1))
    if days is None:
        # A TTL we did not write (e.g. in months): report it as unknown, not as a match.
        return -1
    return int(days.group(1))


def ttl_status(client: Any, policy: RetentionPolicy) -> list[TtlStatus]:
    """The TTL in force on every table with a retention rule, next to the configured one."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        parameters={"names": list(TTL_TABLES)},
    ).result_rows
    engines = {str(name): str(engine) for name, engine in rows}
    statuses = []
    for table, (_, kind) in TTL_TABLES.items():
        if table not in engines:
            statuses.append(TtlStatus(table, policy.days_for(kind), None, exists=False))
            continue
        statuses.append(TtlStatus(table, policy.days_for(kind), parse_ttl_days(engines[table])))
    return statuses


def enforce(client: Any, policy: RetentionPolicy) -> list[str]:
    """Set the configured TTL on every table whose TTL differs; return the tables changed."""
    changed = []
    for status in ttl_status(client, policy):
        if status.ok or not status.exists or status.expected_days is None:
            continue
        column = TTL_TABLES[status.table][0]
        client.command(
            f"ALTER TABLE {status.table} MODIFY TTL "
            f"toDateTime({column}) + INTERVAL {int(status.expected_days)} DAY"
        )
        changed.append(status.table)
    return changed
