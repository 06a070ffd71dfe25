"""Rule files are validated once at load; every problem names the file, the rule and what."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from redaction_rules.engine import RuleError, load_rules

GOOD = """\
kind: redaction
types:
  signup.submitted:
    label: Customer submitted signup form
    lane: customer
    fields:
      email: mask_email
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_when_loading_the_packaged_rules_then_every_default_type_is_covered() -> None:
    rules = load_rules()
    for event_type in [
        "signup.submitted", "password_reset.requested", "login.succeeded", "login.failed",
        "plan.changed", "payment.submitted", "import.requested", "account.created",
        "signup_email.retry", "reset_email.sent", "email_job.queued", "billing_job.failed",
        "import_job.progress", "webhook.delivered",
    ]:  # fmt: skip
        assert rules.match(event_type) is not None, event_type
    assert re.fullmatch(r"rs_[0-9a-f]{12}", rules.version)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (GOOD.replace("mask_email", "mask_emial"),
         "bad.yaml: rule 'signup.submitted', field 'email': unknown operator 'mask_emial'"),
        (GOOD.replace("    label:", "    lable: x\n    label:"),
         "bad.yaml: rule 'signup.submitted': lable: Extra inputs are not permitted"),
        (GOOD.replace("mask_email", "{op: truncate, max_chars: 0}"),
         "bad.yaml: rule 'signup.submitted', field 'email': operator 'truncate': max_chars"),
        (GOOD.replace("email: mask_email", "items[0].sku: keep"),
         "bad.yaml: rule 'signup.submitted': fields: field 'items[0].sku': bad path segment"),
        (GOOD.replace("lane: customer", "lane: support"),
         "bad.yaml: rule 'signup.submitted': lane: Input should be 'customer' or 'system'"),
        (GOOD.replace("Customer submitted signup form", "user_create_v2"),
         "bad.yaml: rule 'signup.submitted': label: write plain words"),
        (GOOD.replace("signup.submitted:", "Signup.Submitted:"),
         "bad.yaml: rule 'Signup.Submitted': (name): String should match pattern"),
        (GOOD + "      email: keep\n", "duplicate key 'email'"),
        (GOOD.replace("kind: redaction\n", ""), "bad.yaml: file: kind: Field required"),
        (GOOD + "errors:\n  SMTP_550: bounced\n",
         "bad.yaml: error code 'SMTP_550': write plain words"),
        (GOOD + "  oops: [\n", "bad.yaml: file: cannot read"),
        ("- just\n- a list\n", "bad.yaml: file: expected a mapping"),
        (GOOD.replace("email: mask_email", "plan: {op: enum, values: [yes, no]}"),
         "field 'plan': operator 'enum': values.0: Input should be a valid string"),
    ],
)  # fmt: skip
def test_when_a_rule_file_is_invalid_then_the_error_names_file_rule_and_problem(
    tmp_path: Path, body: str, problem: str
) -> None:
    write(tmp_path, "bad.yaml", body)
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_when_several_files_have_problems_then_all_are_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.replace("mask_email", "nope"))
    write(tmp_path, "b.yaml", GOOD.replace("lane: customer", "lane: x"))
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    assert [p.split(":")[0] for p in caught.value.problems] == ["a.yaml", "b.yaml"]


def test_when_two_files_define_one_type_then_the_conflict_names_both(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(RuleError, match=r"b.yaml: rule 'signup.submitted': already defined in a"):
        load_rules(tmp_path)


def test_when_a_directory_holds_another_kind_of_rule_file_then_it_is_skipped(
    tmp_path: Path,
) -> None:
    write(tmp_path, "rules.yaml", GOOD)
    write(tmp_path, "escalation.yaml", "version: 1\nrules: []\n")
    rules = load_rules(tmp_path)
    assert rules.sources == ("rules.yaml",)
    assert rules.skipped == ("escalation.yaml",)


def test_when_a_file_is_named_explicitly_then_it_must_be_a_redaction_file(tmp_path: Path) -> None:
    path = write(tmp_path, "other.yaml", "version: 1\nrules: []\n")
    with pytest.raises(RuleError, match="kind: Field required"):
        load_rules(path)
    assert load_rules(write(tmp_path, "good.yaml", GOOD)).sources == ("good.yaml",)


def test_when_the_path_does_not_exist_then_loading_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no such file or directory"):
        load_rules(tmp_path / "missing")
    with pytest.raises(RuleError, match="no redaction rule files found"):
        load_rules(tmp_path)


def test_when_only_formatting_changes_then_the_version_stays_and_content_moves_it(
    tmp_path: Path,
) -> None:
    first = load_rules(write(tmp_path, "r.yaml", GOOD)).version
    reformatted = "# a comment\n" + GOOD.replace("email: mask_email", "email:   mask_email  ")
    second = load_rules(write(tmp_path, "r.yaml", reformatted)).version
    changed = load_rules(write(tmp_path, "r.yaml", GOOD.replace("form", "page"))).version
    assert first == second != changed


def test_when_rules_overlap_then_exact_types_beat_globs_and_specific_globs_win(
    tmp_path: Path,
) -> None:
    write(tmp_path, "r.yaml", """\
kind: redaction
types:
  "*":
    label: Anything
    lane: system
  email_job.*:
    label: Email
    lane: system
  email_job.sent:
    label: Email sent
    lane: system
""")  # fmt: skip
    rules = load_rules(tmp_path)
    assert [rules.match(t).label for t in ["email_job.sent", "email_job.retry", "x.y"]] == [
        "Email sent",
        "Email",
        "Anything",
    ]
