"""Bearer tokens and roles.

Tokens come from ``settings.effective_tokens`` (``SAFETRAIL_API_TOKENS``, plus the demo tokens
in the demo). Roles: ``service`` may only send events; ``support`` reads redacted views;
``engineer`` is support plus the audited raw drill-down; ``admin`` is everything, including the
access log. ``service`` is not part of that ladder: an admin token cannot send events, a
service token cannot read anything.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from query_api.errors import ApiError
from safetrail.settings import Role, TokenInfo

_READ_RANK = {Role.SUPPORT: 1, Role.ENGINEER: 2, Role.ADMIN: 3}
_CHALLENGE = 'Bearer realm="safetrail"'


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, by the name and role configured for their token."""

    name: str
    role: Role

    def has(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may do."""
        if needed is Role.SERVICE:
            return self.role is Role.SERVICE
        return _READ_RANK.get(self.role, 0) >= _READ_RANK[needed]


class TokenBook:
    """Resolves bearer tokens to principals, comparing in constant time."""

    def __init__(self, tokens: dict[str, TokenInfo]) -> None:
        self._tokens = [(token.encode(), info) for token, info in tokens.items()]

    def resolve(self, token: str) -> Principal | None:
        """The principal of ``token``, or None if no configured token matches."""
        given = token.encode()
        found: TokenInfo | None = None
        for known, info in self._tokens:
            # Compare against every token so timing does not tell which prefix matched.
            if hmac.compare_digest(known, given):
                found = info
        return Principal(found.name, found.role) if found else None


def authenticate(book: TokenBook, scheme: str | None, token: str | None) -> Principal:
    """The caller of a request, or a 401 that says what is wrong."""
    if not token:
        raise ApiError(
            401,
            "unauthorized",
            "Missing bearer token: send 'Authorization: Bearer <token>'.",
            {"WWW-Authenticate": _CHALLENGE},
        )
    principal = book.resolve(token) if (scheme or "").lower() == "bearer" else None
    if principal is None:
        raise ApiError(
            401,
            "unauthorized",
            "The bearer token is not valid (unknown or revoked).",
            {"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    return principal


def authorize(principal: Principal, needed: Role) -> Principal:
    """``principal`` if its role allows ``needed``, else a 403 naming the role required."""
    if principal.has(needed):
        return principal
    allowed = (
        "service"
        if needed is Role.SERVICE
        else ", ".join(r.value for r, rank in _READ_RANK.items() if rank >= _READ_RANK[needed])
    )
    raise ApiError(
        403,
        "forbidden",
        f"Role '{principal.role.value}' may not use this route; it needs one of: {allowed}.",
    )
