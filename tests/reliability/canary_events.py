"""Canary-carrying events and the scans the leak tests share (embedded and Kafka paths).

Events carry generated emails, phones, cards, IBANs, tokens and IPs in kept fields, error
messages, free text and debug blobs; ``planted`` maps each trace to its canaries, so an output
about one trace is checked against what that trace carried.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from typing import Any

from projectors.store import Store
from tests.api.conftest import recent
from tests.redaction.canaries import MAKERS, Canary

KINDS = ("email", "phone", "card", "iban", "token", "ip")
PER_TRACE = 5
# Keyed HMACs and hashes (lookup keys, ids): 32+ hex characters carry no value, but a short
# hex-only fragment of a canary can occur in one by chance.
_HEX_RUN = re.compile(r"[0-9a-f]{32,}")


def canary_events(count: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, list[Canary]]]:
    rnd = random.Random(seed)
    events, planted = [], defaultdict(list)
    at = recent(120)
    for i in range(count):
        trace = f"tr_leak{seed}x{i // PER_TRACE:06d}"
        customer = str(700000 + i // PER_TRACE)
        a, b, c = (MAKERS[KINDS[(i + k) % len(KINDS)]](rnd) for k in range(3))
        planted[trace] += [a, b, c]
        common = {
            "event_id": f"ev_leak{seed}x{i:07d}",
            "trace_id": trace,
            "occurred_at": at.isoformat(),
            "subject": {
                "customer_id": customer,
                "job_id": f"job_leak{seed}x{i // PER_TRACE}",
                "order_id": f"ord_leak{seed}x{i // PER_TRACE}",  # so subject_index has rows
            },
        }
        if i % 2:
            events.append(
                {
                    **common,
                    "type": "signup_email.retry",
                    "source": "mail-worker",
                    "status": "running",
                    "attempt": 2,
                    "data": {
                        "to": a.value if a.kind == "email" else f"x{i}@example.com",
                        "smtp_response": f"421 try later for {a.text}",
                        "template": "signup_verification",
                        "debug": {"note": c.text, "headers": {"authorization": b.text}},
                    },
                    "error": {"code": "SMTP_421", "message": f"deferred: {b.text}"},
                }
            )
        else:
            events.append(
                {
                    **common,
                    "type": "signup.submitted",
                    "source": "web",
                    "actor": "customer",
                    "status": "done",
                    "data": {
                        "email": a.value if a.kind == "email" else f"y{i}@example.com",
                        "plan": "team",
                        "referrer": f"https://example.net/c?token={b.text}",
                        "comment": f"my card {c.text} please",
                    },
                }
            )
    return events, planted


def leaks(text: str, canaries: list[Canary]) -> list[str]:
    """``kind:fragment`` for every forbidden fragment of ``canaries`` found in ``text``."""
    text = _HEX_RUN.sub("#", text)
    return [f"{c.kind}:{s}" for c in canaries for s in c.forbidden if s in text]


def trace_of(seed: int, customer_id: str) -> str:
    """The trace whose canaries a customer's rows are checked against (one trace each)."""
    return f"tr_leak{seed}x{int(customer_id) - 700000:06d}"


def table_rows(store: Store) -> dict[str, str]:
    """All support-facing rows as text, grouped by trace (customer_lookup by customer)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    with store._pool.client() as c:  # noqa: SLF001 - reading every row, not an API view
        for table in ("timeline_events", "trace_index", "subject_index"):
            result = c.query(f"SELECT trace_id, * FROM {table}")  # noqa: S608
            assert result.result_rows, f"{table} is empty: scanning it would prove nothing"
            for row in result.result_rows:
                grouped[str(row[0])].append(repr(row))
        for row in c.query("SELECT customer_id, * FROM customer_lookup").result_rows:
            grouped[f"customer:{row[0]}"].append(repr(row))
    return {k: "\n".join(v) for k, v in grouped.items()}


def row_leaks(rows: dict[str, str], planted: dict[str, list[Canary]], seed: int) -> list[str]:
    """Leaks in ``table_rows`` output, each row group checked against its trace's canaries."""
    found: list[str] = []
    for key, text in rows.items():
        trace = trace_of(seed, key.split(":")[1]) if key.startswith("customer:") else key
        found += [f"row {key} {leak}" for leak in leaks(text, planted[trace])]
    return found
