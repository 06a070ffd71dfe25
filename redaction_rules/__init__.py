"""Fail-closed redaction: rule files, operators, free-text scanners and the engine.

``engine`` is the entry point (``Redactor``, ``load_rules``, ``default_redactor``). Rule files
live in ``rules/`` and are described in ``models`` and ``README.md``; ``operators`` mask named
fields; ``scanners`` (with ``numbers``, ``phones``, ``credentials`` and ``keyvalues``) mask
free text; ``walker`` applies the rules to an event's data.
"""
