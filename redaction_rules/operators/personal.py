"""Operators for personal data: masks that keep the shape support confirms values by."""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from pydantic import Field

from redaction_rules import masks
from redaction_rules.operators.base import ApplyContext, NoParams, Operator, as_text, register


@register
class MaskEmail(Operator[NoParams]):
    """``maria.santos@gmail.com`` -> ``m****.s*****@gmail.com``; feeds the lookup keys."""

    name = "mask_email"

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        text = as_text(value)
        parts = masks.split_email(text)
        name = ""
        if parts is None and "<" in text:  # "Maria Santos <maria@x.com>" (RFC 5322 mailbox)
            name, address = parseaddr(text[:400])
            parts = masks.split_email(address) if address else None
        if parts is None:
            return "[invalid email]" if value else ""
        ctx.found.append("email:" + masks.normalize_email(*parts))
        masked = masks.mask_email_parts(*parts)
        return f"{masks.mask_words(name)} <{masked}>" if name.strip() else masked


class PhoneParams(NoParams):
    """Region used for numbers written without a country code."""

    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")


@register
class MaskPhone(Operator[PhoneParams]):
    """Country code and last two digits: ``+1 ***-***-**67``; feeds the lookup keys."""

    name = "mask_phone"
    params_model = PhoneParams

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        facts = masks.phone_facts(as_text(value), self.params.default_region)
        if facts is None:
            return "[invalid phone]" if value else ""
        ctx.found.append("phone:" + facts[1])
        return facts[0]


class Last4Params(NoParams):
    """How many trailing characters to show."""

    keep: int = Field(default=4, ge=1, le=6)


@register
class Last4(Operator[Last4Params]):
    """Cards and order numbers: ``**** 4242``."""

    name = "last4"
    params_model = Last4Params

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        return masks.mask_last4(as_text(value), self.params.keep)


@register
class MaskName(Operator[NoParams]):
    """First letter of each word: ``Maria Santos`` -> ``M**** S*****``."""

    name = "mask_name"

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        return masks.mask_words(as_text(value)[:200])


_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")


@register
class MaskFileName(Operator[NoParams]):
    """A file name masked like a name, its extension kept: ``Maria Santos - passport.pdf``
    -> ``M**** S***** - p*******.pdf`` (support can still tell a CSV from a PDF)."""

    name = "mask_file_name"

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        text = as_text(value)[:200].strip()
        extension = _EXTENSION.search(text)
        if extension is None or extension.start() == 0:
            return masks.mask_words(text)
        return masks.mask_words(text[: extension.start()]) + extension.group(0).lower()


class AddressParams(NoParams):
    """Which keys of an address object are coarse enough to show."""

    keep: list[str] = Field(default_factory=lambda: ["city", "country"], min_length=1)


@register
class MaskAddress(Operator[AddressParams]):
    """City and country only (``Lisbon, PT``); a one-line address string is withheld."""

    name = "mask_address"
    params_model = AddressParams
    accepts_objects = True

    def __init__(self, params: AddressParams) -> None:
        super().__init__(params)
        self._keep = tuple(key.lower() for key in params.keep)

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        # Plain loops, not comprehensions: each comprehension is a function call, and an
        # address object is never cached (only its two short parts are).
        if type(value) is not dict and not isinstance(value, Mapping):
            return "[address withheld]" if value else ""
        lowered = {str(k).lower(): v for k, v in value.items()}
        parts = []
        for key in self._keep:
            shown = lowered.get(key)
            if isinstance(shown, str) and shown.strip():
                parts.append(ctx.scan(shown, 64))
        return ", ".join(parts) if parts else "[address withheld]"


class IpParams(NoParams):
    """Network prefix lengths kept for IPv4 and IPv6."""

    v4_prefix: int = Field(default=24, ge=0, le=32)
    v6_prefix: int = Field(default=48, ge=0, le=128)


@register
class Ip(Operator[IpParams]):
    """Truncate an address to its network: ``203.0.113.0/24``, ``2001:db8:85a3::/48``."""

    name = "ip"
    params_model = IpParams

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        masked = masks.mask_ip(as_text(value), self.params.v4_prefix, self.params.v6_prefix)
        return masked if masked is not None else "[invalid ip]"
