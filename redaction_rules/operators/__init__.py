"""Redaction operators: small named classes with typed params and a pure ``apply``.

``base`` holds the framework (context, registry, ``build_operator``); importing this package
registers the built-in operators from ``personal`` and ``generic``.
"""

from redaction_rules.operators import generic, personal
from redaction_rules.operators.base import (
    MAX_TEXT,
    OPERATORS,
    ApplyContext,
    NoParams,
    Operator,
    as_text,
    bounded_scan,
    build_operator,
    register,
)

__all__ = [
    "MAX_TEXT",
    "OPERATORS",
    "ApplyContext",
    "NoParams",
    "Operator",
    "as_text",
    "bounded_scan",
    "build_operator",
    "generic",
    "personal",
    "register",
]
