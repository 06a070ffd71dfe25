"""CSV export of a customer timeline, with the same masks as the JSON view.

Spreadsheet programs execute cells that start with ``=``, ``+``, ``-``, ``@`` (and tab or
carriage return, which some strip first) as formulas. Every such cell is prefixed with a single
quote so an event field can never run in the spreadsheet of whoever opens the export.

The text starts with a UTF-8 byte order mark: without it Excel reads the file in the system's
legacy code page and garbles every non-ASCII letter (masked names, reasons).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from query_api.models import EventOut

CSV_COLUMNS = (
    "occurred_at",
    "lane",
    "label",
    "type",
    "status",
    "attempt",
    "error_code",
    "reason",
    "trace_id",
    "job_id",
    "request_id",
    "customer_id",
    "fields",
    "event_id",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def csv_safe(value: object) -> str:
    """The cell text, neutralised if a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _fields(fields: dict[str, str]) -> str:
    return "; ".join(f"{key}={value}" for key, value in sorted(fields.items()))


def timeline_csv(events: Iterable[EventOut]) -> str:
    """The events as CSV text (byte order mark, header row), oldest first as given."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = [
            event.occurred_at.isoformat(),
            event.lane.value,
            event.label,
            event.type,
            event.status,
            event.attempt,
            event.error_code,
            event.reason,
            event.trace_id,
            event.job_id,
            event.request_id,
            event.customer_id,
            _fields(event.fields),
            event.event_id,
        ]
        writer.writerow([csv_safe(cell) for cell in row])
    return buffer.getvalue()
