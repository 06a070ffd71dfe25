"""The support page's pure parts: search classification, sessions, lookup limit, wording.

No browser and no server; these sit beside the browser tests because they belong to the page.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from query_api.pages_auth import SESSION_SECONDS, RateLimiter, SessionSigner
from query_api.pages_search import QueryKind, classify
from query_api.pages_view import duration, field_label
from safetrail.settings import Role, Settings, TokenInfo


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("tr_k3j9x2m4q8w7e5r1", QueryKind.TRACE),  # a trace ID pasted from a ticket
        ("  tr_k3j9x2m4q8w7e5r1\n", QueryKind.TRACE),  # with the whitespace a paste brings
        ("job_9c1f", QueryKind.JOB),  # a job ID
        ("48291", QueryKind.CUSTOMER),  # a short numeric customer ID
        ("cus_A1b2", QueryKind.CUSTOMER),  # a customer ID with letters
        ("4155550167", QueryKind.AMBIGUOUS),  # ten digits: phone or customer, storage decides
        ("maria.santos+promo@gmail.com", QueryKind.CONTACT),  # an email with a plus tag
        ("+44 7700 900123", QueryKind.CONTACT),  # an international phone with spaces
        ("(415) 555-0167", QueryKind.CONTACT),  # a US phone in local punctuation
        ("maria santos", QueryKind.INVALID),  # a name is not searchable (and not stored)
        ("", QueryKind.INVALID),  # nothing typed
        ("<script>", QueryKind.INVALID),  # markup is refused, never echoed
    ],
)
def test_when_support_types_a_value_then_it_is_classified_by_shape(
    typed: str, kind: QueryKind
) -> None:
    assert classify(typed) is kind


def _settings() -> Settings:
    return Settings(
        demo=True,
        api_tokens={"team-token-1": TokenInfo(name="sam.support", role=Role.SUPPORT)},
    )


def test_when_a_session_is_issued_then_it_resolves_to_the_tokens_user_and_holds_no_token() -> None:
    signer = SessionSigner(_settings())
    cookie = signer.issue("team-token-1", now=1000.0)
    assert cookie is not None and "team-token-1" not in cookie
    user = signer.resolve(cookie, now=1001.0)
    assert user is not None and (user.name, user.role) == ("sam.support", Role.SUPPORT)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1] + ("0" if c[-1] != "0" else "1"),  # signature changed
        lambda c: c.replace(c.split(".")[1], str(int(c.split(".")[1]) + 9999)),  # expiry pushed
        lambda c: "0" * 40 + c[40:],  # another token's fingerprint
        lambda c: "",  # no cookie
        lambda c: "a.b",  # not a session at all
    ],
)
def test_when_a_session_cookie_is_altered_then_it_is_refused(tamper: Callable[[str], str]) -> None:
    signer = SessionSigner(_settings())
    cookie = signer.issue("team-token-1", now=1000.0)
    assert cookie is not None
    assert signer.resolve(tamper(cookie), now=1001.0) is None


def test_when_a_session_expires_or_its_token_is_removed_then_it_stops_working() -> None:
    signer = SessionSigner(_settings())
    cookie = signer.issue("team-token-1", now=1000.0)
    assert signer.resolve(cookie, now=1000.0 + SESSION_SECONDS + 1) is None
    without_token = SessionSigner(Settings(demo=True))
    assert without_token.resolve(cookie, now=1001.0) is None


def test_when_a_session_signs_out_then_a_copy_of_its_cookie_stops_working() -> None:
    signer = SessionSigner(_settings())
    ended, other = (
        signer.issue("team-token-1", now=1000.0),
        signer.issue("team-token-1", now=1000.0),
    )
    assert ended is not None and other is not None and ended != other  # a session each
    signer.end(ended, now=1001.0)
    assert signer.resolve(ended, now=1002.0) is None
    assert signer.resolve(other, now=1002.0) is not None  # the same user's other browser
    signer.end("forged.0.0.cafe", now=1003.0)  # a forged cookie ends nothing, raises nothing
    assert signer.resolve(other, now=1003.0) is not None


def test_when_a_service_token_signs_in_then_no_session_is_issued() -> None:
    assert SessionSigner(_settings()).issue("demo-service-token") is None
    assert SessionSigner(_settings()).issue("no-such-token") is None


def test_when_a_user_exceeds_the_lookup_limit_then_only_that_user_waits() -> None:
    limiter = RateLimiter(limit=3, window_seconds=60)
    assert [limiter.allow("ana", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("eli", now=3)
    assert limiter.allow("ana", now=60.5)  # the first lookup has left the window


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.4, "0 s"),
        (49, "49 s"),
        (600, "10 min"),
        (125, "2 min 5 s"),
        (3900, "1 h 5 min"),
        (86400, "1 d"),
        (93600, "1 d 2 h"),
        (None, "—"),
    ],
)
def test_when_a_delay_is_shown_then_it_reads_in_plain_units(
    seconds: float | None, words: str
) -> None:
    assert duration(seconds) == words


@pytest.mark.parametrize(
    ("path", "label"),
    [("email", "Email"), ("smtp_response", "SMTP response"), ("address.city", "Address city")],
)
def test_when_a_kept_field_is_labelled_then_it_uses_plain_words(path: str, label: str) -> None:
    assert field_label(path) == label


def test_when_only_checking_the_limit_then_no_attempt_is_recorded() -> None:
    limiter = RateLimiter(limit=1, window_seconds=60)
    assert not limiter.is_full("10.0.0.1", now=0)
    assert not limiter.is_full("10.0.0.1", now=1)
    assert limiter.allow("10.0.0.1", now=2)
    assert limiter.is_full("10.0.0.1", now=3)
