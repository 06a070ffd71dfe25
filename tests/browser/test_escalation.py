"""Escalation hints: the packaged rule file decides support vs engineering for each known case.

These are plain table tests (no browser); they live beside the support page tests because the
hint is part of that page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from redaction_rules.escalation import (
    EscalationRuleError,
    TraceFacts,
    evaluate,
    load_escalation_rules,
)

RULES = load_escalation_rules()
LIMIT = 30


CASES = [
    # the seed's case: the provider accepted, retried once, then bounced
    (
        TraceFacts(final_state="failed", error_codes=("SMTP_421", "SMTP_550")),
        "support",
        "email_bounced",
        "Ask the customer to check the address, then resend",
    ),
    # request done, but the email job has no events at all
    (
        TraceFacts(final_state="done", job_missing=True),
        "engineering",
        "job_never_started",
        "never started",
    ),
    # no news for 45 minutes from a running job, with a 30-minute limit
    (
        TraceFacts(final_state="running", quiet_minutes=45),
        "engineering",
        "stuck_running",
        "45 minutes while still unfinished, longer than the 30-minute limit",
    ),
    # no news for five hours: said in hours, not as 298 minutes
    (
        TraceFacts(final_state="queued", quiet_minutes=298.6),
        "engineering",
        "stuck_running",
        "not moved for 4 h 58 min",
    ),
    # last news 5 minutes ago: still fine, support tells the customer to wait
    (
        TraceFacts(final_state="running", quiet_minutes=5),
        "support",
        "in_progress",
        "wait a few minutes",
    ),
    # a worker crash outranks everything else while the job has not finished
    (
        TraceFacts(final_state="failed", error_codes=("WORKER_CRASH", "SMTP_550")),
        "engineering",
        "worker_crash",
        "crashed",
    ),
    # a crash that a later retry recovered from is not an engineering case for support
    (
        TraceFacts(final_state="done", error_codes=("WORKER_CRASH",)),
        "support",
        "finished",
        "went through",
    ),
    # declined card on every retry
    (
        TraceFacts(final_state="failed", error_codes=("CARD_DECLINED", "CARD_DECLINED")),
        "support",
        "card_declined",
        "another card",
    ),
    # declined twice, then insufficient funds on the final attempt
    (
        TraceFacts(final_state="failed", error_codes=("CARD_DECLINED", "INSUFFICIENT_FUNDS")),
        "support",
        "card_declined",
        "another card",
    ),
    # declined twice, then paid: the last error code stays, but no new card is needed
    (
        TraceFacts(final_state="done", error_codes=("CARD_DECLINED", "INSUFFICIENT_FUNDS")),
        "support",
        "finished",
        "went through",
    ),
    # declined, the next retry still scheduled: wait for it, do not ask for a card yet
    (
        TraceFacts(final_state="queued", error_codes=("CARD_DECLINED",), quiet_minutes=5),
        "support",
        "in_progress",
        "wait a few minutes",
    ),
    # a data export set for tonight's batch: tell the customer when, not "a few minutes"
    (
        TraceFacts(
            final_state="queued",
            quiet_minutes=-480,
            scheduled_for=datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
        ),
        "support",
        "scheduled",
        "run at 2026-11-28 02:00 UTC",
    ),
    # a bounce, then sent once the address was corrected
    (
        TraceFacts(final_state="done", error_codes=("SMTP_550",)),
        "support",
        "finished",
        "went through",
    ),
    # timeouts, then sent on the third attempt: nothing to escalate
    (
        TraceFacts(final_state="done", error_codes=("PROVIDER_TIMEOUT", "PROVIDER_TIMEOUT")),
        "support",
        "finished",
        "went through",
    ),
    # the provider kept timing out until the retries ran out
    (
        TraceFacts(final_state="failed", error_codes=("PROVIDER_TIMEOUT",)),
        "engineering",
        "provider_kept_failing",
        "provider",
    ),
    # wrong password at login
    (
        TraceFacts(final_state="failed", error_codes=("INVALID_PASSWORD",)),
        "support",
        "wrong_password",
        "password reset",
    ),
    # too many wrong passwords: the account is locked ("I can't log in")
    (
        TraceFacts(final_state="failed", error_codes=("INVALID_PASSWORD", "ACCOUNT_LOCKED")),
        "support",
        "account_locked",
        "reset their password",
    ),
    # the two-factor code was wrong
    (
        TraceFacts(final_state="failed", error_codes=("MFA_FAILED",)),
        "support",
        "mfa_failed",
        "backup code",
    ),
    # an expired password reset link
    (
        TraceFacts(final_state="failed", error_codes=("RESET_TOKEN_EXPIRED",)),
        "support",
        "reset_link_expired",
        "new reset link",
    ),
    # the customer's webhook endpoint kept answering 503 until the retries ran out: theirs to fix
    (
        TraceFacts(final_state="failed", error_codes=("WEBHOOK_HTTP_5XX", "WEBHOOK_HTTP_5XX")),
        "support",
        "webhook_endpoint_failed",
        "endpoint answered",
    ),
    # unknown trace ID
    (TraceFacts(found=False), "support", "trace_not_found", "typos"),
    # older than retention
    (
        TraceFacts(final_state="done", removed_by_retention=True),
        "support",
        "retention",
        "retention period",
    ),
    # a failure nobody wrote a rule for goes to engineering, naming the code
    (
        TraceFacts(final_state="failed", error_codes=("QUOTA_MISCONFIGURED",)),
        "engineering",
        "unclassified",
        "QUOTA_MISCONFIGURED",
    ),
]


@pytest.mark.parametrize(("facts", "owner", "rule_id", "says"), CASES)
def test_when_a_trace_has_these_facts_then_the_hint_names_owner_and_next_step(
    facts: TraceFacts, owner: str, rule_id: str, says: str
) -> None:
    hint = evaluate(facts, RULES, stuck_after_minutes=LIMIT)
    assert (hint.owner, hint.rule_id) == (owner, rule_id)
    assert says in f"{hint.reason} {hint.next_step}"
    assert "{" not in hint.reason + hint.next_step


def test_when_the_packaged_rules_load_then_every_rule_has_a_case_above() -> None:
    covered = {case[2] for case in CASES}
    assert covered == {r.id for r in RULES.rules} | {RULES.fallback.id}


@pytest.mark.parametrize(
    ("code", "rule_id"),
    [
        ("WEBHOOK_HTTP_503", "webhook_endpoint_failed"),
        ("WEBHOOK_HTTP_5XX", "webhook_endpoint_failed"),
        ("WEBHOOK_HTTP_418", "webhook_endpoint_failed"),
        ("WEBHOOK_HTTP_302", "unclassified"),  # not a 4xx or 5xx: no pattern names it
        ("webhook_http_503", "unclassified"),  # codes match case-sensitively
    ],
)
def test_when_a_rule_names_codes_with_a_wildcard_then_every_matching_code_is_caught(
    code: str, rule_id: str
) -> None:
    facts = TraceFacts(final_state="failed", error_codes=(code,))
    assert evaluate(facts, RULES, stuck_after_minutes=LIMIT).rule_id == rule_id


def test_when_the_threshold_is_raised_then_the_same_job_is_no_longer_stuck() -> None:
    facts = TraceFacts(final_state="running", quiet_minutes=45)
    assert evaluate(facts, RULES, stuck_after_minutes=30).owner == "engineering"
    assert evaluate(facts, RULES, stuck_after_minutes=60).rule_id == "in_progress"


def _rule_file(rule: str, fallback_id: str = "fallback_f") -> str:
    """A one-rule file; ``rule`` is the flow mapping of the rule."""
    fallback = f"{{id: {fallback_id}, owner: support, reason: abc, next_step: abc}}"
    return f"version: 1\nrules:\n- {rule}\nfallback: {fallback}\n"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        # a typo in a condition name must not silently match everything
        (
            _rule_file(
                "{id: rule_a, owner: support, reason: abc, next_step: abc,"
                " when: {final_state: [done]}}"
            ),
            "rule 'rule_a' (rules.0.when.final_state): Extra inputs are not permitted",
        ),
        # a rule without conditions would hide every rule after it
        (
            _rule_file("{id: rule_a, owner: support, reason: abc, next_step: abc, when: {}}"),
            "'when' has no conditions",
        ),
        # wording may only use the safe placeholders
        (
            _rule_file(
                "{id: rule_a, owner: support, reason: 'hi {email}', next_step: abc,"
                " when: {found: false}}"
            ),
            "unknown placeholder {email}",
        ),
        # owners are support or engineering, nothing else
        (
            _rule_file(
                "{id: rule_a, owner: sales, reason: abc, next_step: abc, when: {found: false}}"
            ),
            "rule 'rule_a' (rules.0.owner)",
        ),
        # two rules with one id make the hint ambiguous in logs and tests
        (
            _rule_file(
                "{id: rule_a, owner: support, reason: abc, next_step: abc, when: {found: false}}",
                fallback_id="rule_a",
            ),
            "rule id 'rule_a' is used twice",
        ),
    ],
)
def test_when_the_rule_file_is_wrong_then_loading_names_the_file_rule_and_problem(
    tmp_path: Path, body: str, problem: str
) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(EscalationRuleError) as info:
        load_escalation_rules(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)
