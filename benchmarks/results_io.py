"""What the benchmark scripts share: a checked name label and an atomic JSON write."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def label_suffix(label: str) -> str:
    """'-label' to append to a results file's name ('' for none); exits 2 on a label that is not a plain name."""
    if label and not re.fullmatch(r"[A-Za-z0-9._-]+", label):
        print(f"error: --label: {label!r}; allowed: letters, digits, '.', '_' and '-'", file=sys.stderr)
        raise SystemExit(2)
    return f"-{label}" if label else ""


def write_json(path: Path, doc: dict) -> None:
    """Write, then rename: a reader never sees half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(doc, indent=1) + "\n")
    partial.replace(path)
