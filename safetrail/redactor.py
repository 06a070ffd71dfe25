"""The redactor every safetrail process runs, built from its settings in one place."""

from __future__ import annotations

from redaction_rules.engine import Redactor, load_rules
from safetrail.settings import Settings


def build_redactor(settings: Settings) -> Redactor:
    """The rule files of ``settings`` (or the packaged rules), its HMAC key, and the keys it
    retired by rotation (only for finding what they tokenized; events get the current key)."""
    return Redactor(
        load_rules(settings.rules_path),
        settings.effective_hmac_key,
        previous_keys=settings.previous_hmac_keys,
    )
