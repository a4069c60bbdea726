"""JSON that every reader can parse: NaN and infinities become null.

Python's `json` writes NaN and Infinity by default, which are not JSON (RFC 8259) and which
`jq`, JavaScript and most other readers refuse. A value the model could not compute (for example the
mean of an empty group) is therefore written as null.
"""

from __future__ import annotations

import json
import math


def finite_or_null(x):
    """``x`` with every non-finite float, at any depth of dicts, lists and tuples, replaced by None."""
    if isinstance(x, dict):
        return {k: finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite_or_null(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def dumps(doc, **kwargs) -> str:
    """`json.dumps` of ``doc`` with non-finite numbers as null; never writes NaN or Infinity."""
    return json.dumps(finite_or_null(doc), allow_nan=False, **kwargs)
