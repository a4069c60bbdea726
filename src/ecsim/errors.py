"""Errors that reach the user as one line, never as a traceback.

`InputError` names the field, the value and what is allowed; the CLI prints
``error: <field>: got <value>; allowed: <allowed>`` and exits with status 2.
The message is always one line of bounded length, whatever the input: the value is shown through a
size-limited repr (a huge or self-referencing structure is never expanded) and control characters
or line breaks in a field name or in the allowed text are escaped.
"""

from __future__ import annotations

import reprlib

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 3
_SHOWN.maxstring = 60
_SHOWN.maxother = 60
_SHOWN.maxlong = 40
for _name in ("maxdict", "maxlist", "maxtuple", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
    setattr(_SHOWN, _name, 4)

MAX_FIELD = 200
MAX_ALLOWED = 300


def shown(value: object) -> str:
    """A short, one-line repr of any value (at most 80 characters)."""
    try:
        text = _SHOWN.repr(value)
    except Exception:   # a value whose repr fails
        text = f"<{type(value).__name__}>"
    text = one_line(text)
    return text if len(text) <= 80 else text[:77] + "..."


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` with line breaks and other unprintable characters escaped, cut to ``limit``."""
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    if limit is not None and len(text) > limit:
        text = text[:limit - 3] + "..."
    return text


class InputError(ValueError):
    """Bad user input: a scenario, case file, parameter override or CLI flag."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field = one_line(field, MAX_FIELD)
        self.value = value
        self.allowed = one_line(allowed, MAX_ALLOWED)
        super().__init__(f"{self.field}: got {shown(value)}; allowed: {self.allowed}")


class ModelError(RuntimeError):
    """The model declaration is inconsistent (a developer error, not a user error)."""
