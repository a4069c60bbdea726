"""Errors that reach the user as one line, never as a traceback.

`InputError` names the field, the value and what is allowed; the CLI prints
``error: <field>: <message>`` and exits with status 2.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a scenario, case file, parameter override or CLI flag."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}: got {shown}; allowed: {allowed}")


class ModelError(RuntimeError):
    """The model declaration is inconsistent (a developer error, not a user error)."""
