"""Every JSON ecsim writes parses with a strict reader: no NaN or Infinity (RFC 8259)."""

import json
import math

from ecsim.json_io import dumps, finite_or_null


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth():
    doc = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": (2, math.nan), "e": "nan"}
    assert _strict(dumps(doc)) == {"a": None, "b": [1.0, None, {"c": None}], "d": [2, None], "e": "nan"}


def test_finite_values_are_untouched():
    doc = {"x": 0.1, "y": [1, 2, 3], "z": None, "w": True}
    assert finite_or_null(doc) == doc and _strict(dumps(doc)) == doc


def test_a_runs_json_files_parse_strictly(default_report_run):
    out, _, _ = default_report_run
    for name in ("summary.json", "claims.json", "uncertainty.json", "manifest.json"):
        _strict((out / name).read_text())
