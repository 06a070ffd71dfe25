"""Request bodies: the nesting bound that lets most bodies skip the exact depth walk, and the
garbage-collector settings the long-running processes use."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.batch import MAX_NESTING, BadBody, bracket_depth_bound, parse_body
from safetrail.gc_tuning import YOUNG_THRESHOLD, tune_gc


def _reference_bound(body: bytes) -> int:
    depth = deepest = 0
    for byte in body:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet='ab[]{}"\\ é'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_bracket_bound_matches_a_plain_count_and_never_undercounts_nesting(
    value: object,
) -> None:
    body = orjson.dumps(value)
    assert bracket_depth_bound(body) == _reference_bound(body)
    assert bracket_depth_bound(orjson.dumps([value])) >= 1


@pytest.mark.parametrize(("levels", "refused"), [(MAX_NESTING - 1, False), (MAX_NESTING + 5, True)])
def test_a_body_nesting_past_the_limit_is_refused_whole(levels: int, refused: bool) -> None:
    inner: object = "x"
    for _ in range(levels):
        inner = {"a": inner}
    body = orjson.dumps([{"trace_id": "t"}, inner])
    if refused:
        with pytest.raises(BadBody) as caught:
            parse_body(body)
        assert caught.value.code == "nested_too_deep"
    else:
        assert parse_body(body)[0] == 0


@contextmanager
def _restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_tune_gc_freezes_start_up_objects_and_collects_young_garbage_less_often() -> None:
    with _restored_gc():
        middle, old = gc.get_threshold()[1:]
        tune_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
        # Cycles are still found: only later.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
