"""Hostile input against ``POST /v1/events``: no 5xx, every rejection has a reason, and a good
event in a mixed batch is never lost."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import SERVICE, SUPPORT, Api, recent

_counter = itertools.count()
HEADERS = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
LOOKALIKES = [
    "ѕignup.submitted",
    "signup\u200b.submitted",
    "ｓｉｇｎｕｐ.submitted",
    "signup\u2024submitted",
]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_value = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = ["event_id", "trace_id", "type", "occurred_at", "source", "actor", "status", "attempt"]
hostile_event = st.dictionaries(
    st.sampled_from([*FIELDS, "subject", "data", "error"]) | st.text(max_size=12),
    json_value | st.sampled_from(LOOKALIKES),
    max_size=9,
)


def good_event(tag: str) -> dict[str, Any]:
    n = next(_counter)
    return {
        "event_id": f"ev_good_{tag}_{n:06d}",
        "trace_id": f"tr_good_{tag}_{n:06d}",
        "type": "signup.submitted",
        "occurred_at": recent().isoformat(),
        "source": "web",
        "actor": "customer",
        "subject": {"customer_id": "48999"},
        "data": {"plan": "team"},
    }


def _check_answer(response: Any, sent: int) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    body: dict[str, Any] = response.json()
    if response.status_code != 202:
        assert body.get("error") and body.get("message"), body  # a rejection says why
        return body
    assert len(body["results"]) == sent
    for result in body["results"]:
        if result["status"] == "rejected":
            assert result["reason"], result
    return body


@given(events=st.lists(hostile_event, max_size=6), position=st.integers(0, 6))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_when_a_batch_mixes_hostile_and_good_events_then_the_good_one_is_stored(
    api: Api, events: list[dict[str, Any]], position: int
) -> None:
    good = good_event("mix")
    events.insert(min(position, len(events)), good)
    response = api.client.post("/v1/events", content=orjson.dumps(events), headers=HEADERS)
    body = _check_answer(response, len(events))
    assert response.status_code == 202
    mine = [r for r in body["results"] if r["event_id"] == good["event_id"]]
    assert mine and mine[0]["status"] == "accepted", body
    trace = api.get(f"/v1/traces/{good['trace_id']}", SUPPORT)
    assert trace.status_code == 200
    assert [e["event_id"] for e in trace.json()["events"]] == [good["event_id"]]


@given(body=st.binary(max_size=300))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_when_the_body_is_arbitrary_bytes_then_no_server_error(api: Api, body: bytes) -> None:
    response = api.client.post("/v1/events", content=body, headers=HEADERS)
    assert response.status_code < 500
    if response.status_code != 202:
        _check_answer(response, -1)


@given(text=st.text(max_size=200))
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_when_the_body_is_arbitrary_text_then_no_server_error(api: Api, text: str) -> None:
    response = api.client.post("/v1/events", content=text.encode(), headers=HEADERS)
    assert response.status_code < 500
    if response.status_code != 202:
        assert response.json()["message"]


def _post(api: Api, body: bytes) -> Any:
    return api.client.post("/v1/events", content=body, headers=HEADERS)


def test_when_the_body_is_larger_than_the_limit_then_413_with_a_reason(api: Api) -> None:
    limit = api.settings.max_body_bytes
    response = _post(api, b"[" + b" " * limit + b"]")
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def _nested_item(depth: int) -> bytes:
    return b"[" + b"[" * depth + b"]" * depth + b"]"


def _nested_data(depth: int) -> bytes:
    head = orjson.dumps([good_event("deep")])[:-2]
    return head + b',"data":' + b'{"x":' * depth + b"1" + b"}" * depth + b"}]"


def test_when_nesting_is_deeper_than_the_encoder_allows_then_a_reasoned_rejection(
    api: Api,
) -> None:
    for body in (_nested_item(600), _nested_data(600)):
        assert _post(api, body).status_code < 500


def test_when_the_body_is_deeply_nested_then_rejected_not_crashed(api: Api) -> None:
    for depth in (100, 250, 600, 1_100, 100_000):
        for body in (_nested_item(depth), _nested_data(depth)):
            response = _post(api, body)
            assert response.status_code in (202, 400), (depth, response.text[:200])
            _check_answer(response, 1)


def test_when_bytes_are_not_utf8_then_400_with_a_reason(api: Api) -> None:
    for raw in (b'[{"type": "\xff\xfe"}]', b"\xc3\x28", b'["\xed\xa0\x80"]'):
        response = _post(api, raw)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "malformed_json"


def test_when_strings_are_huge_then_the_event_is_answered_and_nothing_crashes(api: Api) -> None:
    event = good_event("huge")
    event["data"] = {"note": "x" * 2_000_000, "email": "huge.string@example.com " * 1000}
    response = _post(api, orjson.dumps([event]))
    body = _check_answer(response, 1)
    assert body["results"][0]["status"] in ("accepted", "rejected")
    if body["results"][0]["status"] == "accepted":
        stored = api.get(f"/v1/traces/{event['trace_id']}", SUPPORT).json()
        assert "huge.string@example.com" not in orjson.dumps(stored).decode()


def test_when_wrong_types_and_lookalikes_are_sent_then_each_is_rejected_with_a_reason(
    api: Api,
) -> None:
    bad: list[Any] = [
        1,
        "event",
        None,
        [],
        {**good_event("wt"), "occurred_at": "yesterday"},
        {**good_event("wt"), "attempt": "three"},
        {**good_event("wt"), "trace_id": {"$ne": None}},
        {**good_event("wt"), "subject": "48999"},
        *({**good_event("la"), "type": t} for t in LOOKALIKES),
    ]
    good = good_event("wt")
    response = _post(api, orjson.dumps([*bad, good]))
    body = _check_answer(response, len(bad) + 1)
    assert [r["status"] for r in body["results"]] == ["rejected"] * len(bad) + ["accepted"]
