"""Fail-closed redaction: rule files, operators, free-text scanners and the engine.

``engine`` is the entry point (``Redactor``, ``load_rules``, ``default_redactor``); rule files
live in ``rules/`` and are described in ``models``; ``operators`` masks named fields;
``scanners`` (with ``numbers``, ``credentials`` and ``keyvalues``) masks free text; ``walker``
applies the rules to an event's data.
"""
