"""Trace chain and its copyable summary (roles support, engineer, admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import PlainTextResponse, Response

from query_api.deps import (
    AuditDep,
    EscalationDep,
    MetricsDep,
    NowDep,
    StoreDep,
    StuckAfter,
    SupportUser,
)
from query_api.errors import error_responses, not_found, refuse_unstorable_id, text_responses
from query_api.models import EscalationOut, TraceChain
from query_api.pages_view import escalation_hint
from query_api.queries import get_trace_chain
from query_api.summary import render_summary_text

router = APIRouter(prefix="/v1/traces", tags=["traces"])

TraceIdPath = Annotated[
    str, Path(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$", examples=["tr_9c1f2a7b"])
]
_ERRORS = error_responses(401, 403, 404, 503)


async def _chain(
    store: StoreDep, audit: AuditDep, stuck: StuckAfter, now: NowDep, trace_id: str
) -> TraceChain:
    refuse_unstorable_id("trace", trace_id)
    chain = await audit.around(
        "trace", trace_id, get_trace_chain, store, trace_id, now=now, stuck_after=stuck
    )
    if chain is None:
        raise not_found("trace", trace_id)
    return chain


@router.get("/{trace_id}", response_model=TraceChain, responses=_ERRORS)
async def get_trace(
    trace_id: TraceIdPath,
    _: SupportUser,
    store: StoreDep,
    audit: AuditDep,
    stuck: StuckAfter,
    now: NowDep,
    rules: EscalationDep,
    metrics: MetricsDep,
) -> TraceChain:
    """The trace chain: summary on top, who acts next (support or engineering), then each
    step (request, job, error), then events."""
    chain = await _chain(store, audit, stuck, now, trace_id)
    hint = escalation_hint(chain, rules, now, stuck)
    metrics.observe_hint(hint.rule_id, hint.owner)
    escalation = EscalationOut.model_validate(hint, from_attributes=True)
    return chain.model_copy(update={"escalation": escalation})


@router.get(
    "/{trace_id}/summary.txt",
    response_model=None,
    response_class=Response,  # documents the 200 as text only (errors stay JSON)
    responses=text_responses("text/plain", 401, 403, 404, 503),
)
async def get_trace_summary_text(
    trace_id: TraceIdPath,
    _: SupportUser,
    store: StoreDep,
    audit: AuditDep,
    stuck: StuckAfter,
    now: NowDep,
) -> PlainTextResponse:
    """The redacted summary to paste into a ticket: Customer ID, Trace, Job, Started, Email,
    Error."""
    chain = await _chain(store, audit, stuck, now, trace_id)
    return PlainTextResponse(render_summary_text(chain))
