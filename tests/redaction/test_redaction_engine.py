"""The engine end to end with the default rules: labels, lanes, masks, fail-closed, reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.process import Accepted, process
from ingest.schema import Lane, RawEvent
from redaction_rules.engine import IdentifierError, Redactor, default_redactor, summarize_message

KEY = b"engine-test-key-0123456789"
AT = datetime(2026, 11, 26, 10, 12, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return default_redactor(KEY)


def raw(event_type: str, data: dict[str, Any] | None = None, **envelope: Any) -> RawEvent:
    return RawEvent.model_validate(
        {
            "event_id": "ev_7emwvjugyjf5d3kzan2a",
            "trace_id": "tr_9c1f2a7b",
            "type": event_type,
            "occurred_at": AT,
            "source": "web",
            "subject": {"customer_id": "48291", "job_id": "job_9c1f"},
            "data": data or {},
            **envelope,
        }
    )


SIGNUP = {
    "email": "maria.santos@gmail.com",
    "name": "Maria Santos",
    "password": "hunter2",
    "plan": "team",
    "ip": "203.0.113.77",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)",
    "referrer": "https://ads.example.net/c?utm_source=news&token=abcDEF123456",
    "address": {"line1": "12 Rua Augusta", "city": "Lisbon", "postcode": "1100", "country": "PT"},
    "phone": "+14155550167",
    "marketing_opt_in": True,
}


def test_when_a_signup_is_redacted_then_support_sees_masked_confirmable_fields(
    redactor: Redactor,
) -> None:
    event = redactor.redact(raw("signup.submitted", SIGNUP, actor="customer", status="done"))
    assert event.label == "Customer submitted signup form"
    assert event.lane is Lane.CUSTOMER
    assert event.fields == {
        "email": "m****.s*****@gmail.com",
        "name": "M**** S*****",
        "plan": "team",
        "ip": "203.0.113.0/24",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)",
        "referrer": "https://ads.example.net/c?utm_source=news&token=[secret]",
        "address": "Lisbon, PT",
        "phone": "+1 ***-***-**67",
        "marketing_opt_in": "true",
    }
    assert event.field_rules["email"] == "signup.submitted:email"
    assert event.dropped == 1  # the password
    assert event.rules_version == redactor.version
    assert (event.customer_id, event.job_id, event.status) == ("48291", "job_9c1f", "done")


@pytest.mark.parametrize(
    ("event_type", "attempt", "label", "lane"),
    [
        ("signup_email.queued", 0, "Signup email queued", Lane.SYSTEM),
        ("signup_email.retry", 2, "Signup email retry", Lane.SYSTEM),
        ("signup_email.sent", 3, "Signup email sent", Lane.SYSTEM),
        ("signup_email.bounced", 2, "Signup email bounced", Lane.SYSTEM),
        ("reset_email.sent", 1, "Password reset email sent", Lane.SYSTEM),
        ("email_job.failed", 1, "Email failed", Lane.SYSTEM),
        ("billing_job.failed", 1, "Payment failed", Lane.SYSTEM),
        ("billing_job.failed", 3, "Payment retry failed", Lane.SYSTEM),  # retry wording
        ("import_job.started", 1, "Import started", Lane.SYSTEM),
        ("webhook.delivered", 2, "Webhook delivered", Lane.SYSTEM),
        ("webhook.attempt", 2, "Webhook delivery retry", Lane.SYSTEM),
        ("password_reset.requested", None, "Customer requested a password reset", Lane.CUSTOMER),
        ("login.failed", None, "Customer login failed", Lane.CUSTOMER),
        ("plan.changed", None, "Customer changed plan", Lane.CUSTOMER),
        ("signup_email.opened", 1, "Signup email", Lane.SYSTEM),  # unknown step: family label
        ("account.created", None, "Account created", Lane.SYSTEM),
    ],
)
def test_when_a_known_type_is_redacted_then_it_gets_a_plain_label_and_its_lane(
    redactor: Redactor, event_type: str, attempt: int | None, label: str, lane: Lane
) -> None:
    event = redactor.redact(raw(event_type, attempt=attempt, actor="customer"))
    assert (event.label, event.lane) == (label, lane)


def test_when_the_type_is_unknown_then_only_the_envelope_and_a_generic_label_remain(
    redactor: Redactor,
) -> None:
    event = redactor.redact(
        raw(
            "user_create_v2",
            {"email": "maria@x.com", "nested": {"a": [1, 2]}},
            actor="customer",
            status="failed",
            attempt=2,
            error={"code": "SOMETHING_NEW", "message": "boom for maria@x.com"},
        )
    )
    assert event.label == "Other customer action" and event.lane is Lane.CUSTOMER
    assert event.fields == {} and event.dropped == 2
    assert (event.status, event.attempt, event.error_code) == ("failed", 2, "SOMETHING_NEW")
    assert event.reason is None  # free text of unknown types is never shown
    assert "maria" not in event.model_dump_json()


def test_when_values_sit_where_no_rule_points_then_they_are_dropped_at_any_depth(
    redactor: Redactor,
) -> None:
    data = {
        "to": "maria@x.com",
        "headers": {"Authorization": "Bearer abc", "X-Customer-Email": "maria@x.com"},
        "meta": {"deep": [{"deeper": {"token": "sk_live_abcdefgh12345678"}}]},
        "smtp_response": json.dumps({"code": 550, "rcpt": "maria@x.com"}),  # JSON in a string
        "template": ["welcome", "maria@x.com"],  # a list where a single value was expected
    }
    event = redactor.redact(raw("signup_email.bounced", data))
    assert event.fields == {"to": "m****@x.com", "headers.Authorization": "[secret]"}
    assert event.dropped == 4  # X-Customer-Email, meta, the JSON blob, the list
    assert "maria" not in event.model_dump_json() and "sk_live" not in event.model_dump_json()


def test_when_rules_reach_into_json_strings_and_lists_then_only_named_values_survive(
    redactor: Redactor,
) -> None:
    data = {
        "response_body": json.dumps({"error": "invalid signature", "owner": "maria@x.com"}),
        "url": "https://hooks.example/in?secret=abc123&v=2",
        "http_status": 401,
    }
    event = redactor.redact(raw("webhook.failed", data))
    assert event.fields == {
        "response_body.error": "invalid signature",
        "url": "https://hooks.example/in?secret=[secret]&v=2",
        "http_status": "401",
    }
    rows = {"error_rows": [{"row": 7, "error": "bad phone +14155550167", "values": {"n": "M"}}]}
    imported = redactor.redact(raw("import_job.failed", rows))
    assert imported.fields == {
        "error_rows[0].row": "7",
        "error_rows[0].error": "bad phone +1 ***-***-**67",
    }
    assert imported.dropped == 1 and imported.field_rules["error_rows[0].row"].endswith("row")


@pytest.mark.parametrize("lead", [" ", "\n", "\t ", "\r\n"])
def test_when_a_json_blob_starts_with_whitespace_then_it_is_still_walked_not_kept(
    redactor: Redactor, lead: str
) -> None:
    # The parser skips leading whitespace: " {...}" is an object, not text a keep may show.
    blob = {"customer": {"full_name": "Maria Santos", "note": "VIP, diabetic"}, "error": "x"}
    event = redactor.redact(raw("webhook.failed", {"response_body": lead + json.dumps(blob)}))
    assert event.fields == {"response_body.error": "x"}
    assert "diabetic" not in event.model_dump_json() and "Santos" not in event.model_dump_json()


def test_when_header_names_differ_in_case_then_rules_still_match(redactor: Redactor) -> None:
    event = redactor.redact(raw("reset_email.sent", {"headers": {"authorization": "Bearer x"}}))
    assert event.fields == {"headers.authorization": "[secret]"}


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        ({"code": "PROVIDER_TIMEOUT", "message": "x"}, "PROVIDER_TIMEOUT",
         "Email provider timeout"),  # known code: catalog reason, message ignored
        ({"code": "SMTP_550"}, "SMTP_550", "Mailbox does not exist (provider bounce)"),
        ({"code": "smtp_550"}, "smtp_550", "Mailbox does not exist (provider bounce)"),  # any case
        ({"code": "WEBHOOK_HTTP_503"}, "WEBHOOK_HTTP_503",
         "Customer endpoint returned a server error"),  # glob WEBHOOK_HTTP_5*
        ({"code": "NEW_THING", "message": "quota hit for maria@x.com\n  at Foo.bar(Foo.java:3)"},
         "NEW_THING", "quota hit for m****@x.com"),  # first line only, scanned
        ({"message": 'Traceback (most recent call last):\n  File "w.py", line 3, in run\n'
                     "    send()\nValueError: bad address maria@x.com"},
         None, "ValueError: bad address m****@x.com"),  # the exception line, not the frames
        ({"code": "X", "message": "word " * 100}, "X", ("word " * 32).strip() + "…"),  # bounded
        ({"code": "maria@x.com"}, "m****@x.com", None),  # even the code is scanned
    ],
)  # fmt: skip
def test_when_an_event_carries_an_error_then_the_reason_is_short_and_human(
    redactor: Redactor, error: dict[str, str], code: str | None, reason: str | None
) -> None:
    event = redactor.redact(raw("signup_email.failed", error=error, status="failed"))
    assert (event.error_code, event.reason) == (code, reason)
    assert event.reason is None or len(event.reason) <= 160


def test_when_envelope_text_holds_personal_data_then_it_is_scanned_but_benign_ids_pass(
    redactor: Redactor,
) -> None:
    event = redactor.redact(
        raw(
            "account.created",
            subject={"customer_id": "48291", "order_id": "ord_fgbom2y5"},
            source="web maria@x.com",
        )
    )
    assert event.customer_id == "48291" and event.order_id == "ord_fgbom2y5"
    assert event.source == "web m****@x.com"
    assert (event.event_id, event.trace_id) == ("ev_7emwvjugyjf5d3kzan2a", "tr_9c1f2a7b")


@pytest.mark.parametrize(
    ("envelope", "field", "shown"),
    [
        ({"event_id": "4155550134"}, "event_id", "+1 ***-***-**34"),
        ({"trace_id": "4155550177"}, "trace_id", "+1 ***-***-**77"),
        ({"subject": {"customer_id": "4155550134"}}, "subject.customer_id", "+1 ***-***-**34"),
        ({"subject": {"customer_id": "415-555-0134"}}, "subject.customer_id", "+1 ***"),
        ({"subject": {"request_id": "46.142.70.12"}}, "subject.request_id", "46.142.70.0/24"),
        ({"subject": {"order_id": "2001:db8::1"}}, "subject.order_id", "2001:db8::/48"),
        ({"subject": {"order_id": "4242.4242.4242.4242"}}, "subject.order_id", "**** 4242"),
        # A prefix is a label, not part of the number it labels.
        ({"trace_id": "tr_4155550134"}, "trace_id", "tr_+1 ***-***-**34"),
        ({"subject": {"order_id": "acc-4242424242424242"}}, "subject.order_id", "acc-****"),
        ({"subject": {"request_id": "req.4155550134"}}, "subject.request_id", "req.+1 ***"),
        ({"subject": {"customer_id": "415_555_0134"}}, "subject.customer_id", "+1 ***"),
        ({"subject": {"workspace_id": "de89370400440532013000"}}, "subject.workspace_id",
         "DE** **** 3000"),
        ({"subject": {"order_id": "4242424242424242"}}, "subject.order_id", "**** 4242"),
        ({"subject": {"job_id": "job_4242424242424242"}}, "subject.job_id", "**** 4242"),
        ({"subject": {"request_id": "sk_live_abcdefghijklmnop1234"}}, "subject.request_id",
         "[secret]"),
        ({"subject": {"workspace_id": "ghp_" + "a1B2c3D4e5" * 4}}, "subject.workspace_id",
         "[secret]"),
    ],
)  # fmt: skip
def test_when_an_id_reads_as_personal_data_then_the_event_is_refused_with_the_field(
    redactor: Redactor, envelope: dict[str, Any], field: str, shown: str
) -> None:
    # A masked id would merge two customers (or two events) that share a mask, and lose
    # events to deduplication; an unmasked one would show the number. Refused, loudly.
    with pytest.raises(IdentifierError) as caught:
        redactor.redact(raw("account.created", **envelope))
    assert str(caught.value).startswith(f"{field} reads as personal data or a secret")
    assert shown in str(caught.value)
    assert "4155550134" not in str(caught.value) and "4242424242424242" not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",  # ULID: random by nature, not a token
        "ev_4f3db42529805760061fae25",  # a derived id whose hex holds a Luhn-valid digit run
        "550e8400-e29b-41d4-a716-446655440000",
        "507f1f77bcf86cd799439011",
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "ord-2024-000123",
        "1721234567890",  # 13 digits, not a card (starts with 1) nor a phone
        "order_20240610123456789",  # a timestamp: Luhn-valid, but no card issuer's prefix
        "ev_510510510510510090031241",  # a derived ID with digits only: a hash
        "ev_leak12x0054321",  # digits glued to a letter are part of a word, not a number
        "job_build7x4155550134",
        "job_09930010",  # zero-padded counters after a prefix
        "inv_0001234567",
    ],
)
def test_when_an_id_is_opaque_then_it_is_kept_exactly(redactor: Redactor, value: str) -> None:
    subject = {"customer_id": value, "order_id": value, "request_id": value, "job_id": value}
    event = redactor.redact(raw("account.created", event_id=value, subject=subject))
    shown = (event.event_id, event.customer_id, event.order_id, event.request_id, event.job_id)
    assert shown == (value,) * 5


def test_when_the_same_event_is_redacted_twice_then_the_output_is_identical(
    redactor: Redactor,
) -> None:
    event = raw("signup.submitted", SIGNUP)
    first = redactor.redact(event).model_dump_json()
    assert first == redactor.redact(event).model_dump_json()
    assert first == default_redactor(KEY).redact(event).model_dump_json()  # fresh caches


def test_when_support_types_an_email_or_phone_then_the_lookup_key_matches_the_event(
    redactor: Redactor,
) -> None:
    event = redactor.redact(raw("signup.submitted", SIGNUP))
    assert redactor.lookup_key("  Maria.Santos@Gmail.com ") in event.lookup_keys
    assert redactor.lookup_key("maria.santos+anything@gmail.com") in event.lookup_keys
    assert redactor.lookup_key("(415) 555-0167") in event.lookup_keys
    assert redactor.lookup_key("+1 415 555 0167") in event.lookup_keys
    assert len(event.lookup_keys) == 2
    assert redactor.lookup_key("not a contact") is None
    assert redactor.lookup_key("48291") is None
    assert default_redactor(b"another-key-0123456789").lookup_key("maria.santos@gmail.com") not in (
        event.lookup_keys
    )


def test_when_an_email_appears_only_in_kept_free_text_then_it_is_still_findable(
    redactor: Redactor,
) -> None:
    event = redactor.redact(raw("signup_email.bounced", {"smtp_response": "550 <liam@x.io>"}))
    assert event.fields["smtp_response"] == "550 <l***@x.io>"
    assert event.lookup_keys == [redactor.lookup_key("liam@x.io")]


def test_when_the_pipeline_processes_bytes_then_the_redactor_output_is_routed(
    redactor: Redactor,
) -> None:
    payload = orjson.dumps(
        {"trace_id": "tr_9c1f2a7b", "type": "login.failed", "occurred_at": "2026-11-26T10:00:00Z",
         "source": "web", "data": {"email": "maria@x.com"}, "error": {"code": "INVALID_PASSWORD"}}
    )  # fmt: skip
    routed = process(payload, redactor)
    assert isinstance(routed, Accepted)
    assert routed.lane is Lane.CUSTOMER and routed.timeline.reason == "Wrong password"
    assert routed.timeline.event_id.startswith("ev_")  # derived when the service sent none


def test_when_an_event_has_too_many_values_then_the_rest_are_dropped_and_counted(
    redactor: Redactor,
) -> None:
    rows = [{"row": n} for n in range(500)]
    event = redactor.redact(raw("import_job.failed", {"error_rows": rows}))
    assert len(event.fields) == 200 and event.dropped == 300


def test_when_data_comes_from_python_with_odd_keys_and_tuples_then_it_is_still_fail_closed(
    redactor: Redactor,
) -> None:
    data: dict[str, Any] = {"email": "maria@x.com", "headers": {1: "maria@x.com"}, "to": ("a",)}
    event = redactor.redact(raw("signup_email.sent", data))
    assert event.fields == {}  # the wrong-shaped "to" and the int header key are dropped
    assert event.dropped == 3 and "maria" not in event.model_dump_json()


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("java.lang.IllegalStateException: no mailbox\n\tat com.x.Mailer.send(Mailer.java:42)",
         "java.lang.IllegalStateException: no mailbox"),  # Java: first line
        ("Error: boom\n    at Object.<anonymous> (/app/x.js:1:7)", "Error: boom"),  # Node
        ('Traceback (most recent call last):\n  File "w.py", line 3, in run\n    send()\n'
         "ValueError: bad", "ValueError: bad"),  # Python: the exception line at the end
        ('  File "w.py", line 3, in run\nKeyError: x', "KeyError: x"),  # starts mid-trace
        ("  at com.x.Mailer.send(Mailer.java:42)\n  at com.x.Job.run(Job.java:7)", ""),  # frames
        ("\n\n  \n", ""),  # nothing at all
    ],
)  # fmt: skip
def test_when_summarizing_messages_then_stack_frames_never_appear(
    message: str, expected: str
) -> None:
    assert summarize_message(message) == expected


def test_when_timeline_events_are_built_without_validation_then_they_equal_validated_ones(
    redactor: Redactor,
) -> None:
    from bench.redaction import reference_events
    from ingest.schema import TimelineEvent
    from redaction_rules import engine

    assert engine._TRUSTED  # the shortcut is in use for the current TimelineEvent
    events = [*reference_events(130), *reference_events(60, mix="unique")]
    events.append({**events[0], "type": "crm.sync.finished", "error": {"code": "X"}})
    for event in events:
        built = redactor.redact(RawEvent.model_validate(event))
        validated = TimelineEvent.model_validate(built.model_dump())
        assert built == validated
        assert built.model_dump_json() == validated.model_dump_json()
        assert (
            built.model_fields_set
            == TimelineEvent.model_validate(built.model_dump(exclude_unset=True)).model_fields_set
        )
