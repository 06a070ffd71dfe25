"""Every read is logged before it is answered: the access-log write runs alongside the read,
but no answer (and no error from the read) leaves before the entry is stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import ADMIN, Api


class _Refused(RuntimeError):
    pass


@pytest.mark.parametrize(
    "path",
    ["/v1/traces/tr_audit_none", "/v1/jobs/job_audit_none", "/v1/customers/c_audit/timeline"],
)
def test_when_the_access_log_cannot_be_written_then_the_read_is_not_answered(
    api: Api, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    def refuse(**_: Any) -> None:
        raise _Refused("access log unavailable")

    monkeypatch.setattr(api.store, "log_access", refuse)
    with pytest.raises(_Refused):
        api.get(path)


@pytest.mark.parametrize(
    ("path", "kind", "record_id"),
    [
        ("/v1/traces/tr_audit_missing", "trace", "tr_audit_missing"),
        ("/v1/jobs/job_audit_missing", "job", "job_audit_missing"),
        ("/v1/customers/c_audit_missing/timeline?cursor=bad", "customer", "c_audit_missing"),
    ],
)
def test_when_a_read_finds_nothing_then_its_entry_is_stored_before_the_404(
    api: Api, path: str, kind: str, record_id: str
) -> None:
    assert api.get(path).status_code == 404

    log = api.get("/v1/access-log", ADMIN, params={"record_id": record_id}).json()
    reads = [e["record_kind"] for e in log["data"] if e["record_kind"] != "access_log"]
    assert reads == [kind]


@pytest.mark.parametrize(
    "params",
    [{"record_id": "maria.santos@gmail.com"}, {"actor": "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}],
)
def test_when_an_admin_filters_the_log_by_personal_data_then_the_filter_is_not_kept(
    api: Api, params: dict[str, str]
) -> None:
    # Reading the log is logged under its filter, and the log is kept for good: a value an
    # admin typed that reads as an email or a secret is logged as "(not an ID)".
    (typed,) = params.values()
    assert api.get("/v1/access-log", ADMIN, params=params).status_code == 200

    log = api.get("/v1/access-log", ADMIN, params={"record_kind": "access_log", "limit": 500})
    assert typed not in log.text
    assert any(e["record_id"] == "(not an ID)" for e in log.json()["data"])
    named = api.get("/v1/access-log", ADMIN, params={"record_id": "tr_audit_named"})
    assert named.status_code == 200
    log = api.get("/v1/access-log", ADMIN, params={"record_kind": "access_log", "limit": 500})
    assert any(e["record_id"] == "tr_audit_named" for e in log.json()["data"])
