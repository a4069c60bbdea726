"""The validation snapshot: the last full `ecsim validate` result, shipped with the package so that
reports and the claims checker can show it without re-running every study (about 2 minutes).

It records the parameter-set digest and hashes of the case files and of the model's code it was
computed from; `is_current` tells whether all three still match, and the test suite fails when
they do not. Refresh with
``python -m ecsim.validation.snapshot``.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from importlib import resources
from pathlib import Path

from .. import __version__
from ..registry import default_registry

FILE = "validation_snapshot.json"


def cases_digest() -> str:
    """A hash of every packaged case file (names and contents)."""
    h = hashlib.sha256()
    for f in sorted(resources.files("ecsim.data.cases").iterdir(), key=lambda f: f.name):
        if f.name.endswith(".yaml"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


MODEL_CODE = ("pk", "ecs", "circuit", "treatments", "model", "validation", "engine.py", "entrywise.py", "chain.py",
              "population.py", "products.py", "regimen.py", "simulation.py", "exposure.py", "scenario.py")


def code_digest() -> str:
    """A hash of the model's source code (what can change a validation result besides parameters
    and case files); the snapshot goes stale when it changes."""
    root = resources.files("ecsim")
    h = hashlib.sha256()
    for name in MODEL_CODE:
        entry = root.joinpath(name)
        files = [entry] if name.endswith(".py") else sorted(
            (f for f in _walk(entry) if f.name.endswith(".py")), key=lambda f: str(f))
        for f in files:
            h.update(str(f.name).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _walk(folder):
    for f in folder.iterdir():
        if f.is_dir():
            yield from _walk(f)
        else:
            yield f


def load_snapshot() -> dict:
    return json.loads(resources.files("ecsim.data").joinpath(FILE).read_text())


def is_current(snapshot: dict) -> bool:
    return (snapshot.get("parameter_set") == default_registry().digest()
            and snapshot.get("cases") == cases_digest() and snapshot.get("code") == code_digest())


def by_metric(snapshot: dict) -> dict[str, dict]:
    return {row["id"]: row for row in snapshot["results"]}


def write_snapshot(path: Path) -> dict:
    """Run every packaged case and write the snapshot (write, then rename)."""
    from . import evaluate_cases, load_cases
    results = [_finite(r.as_dict()) for r in evaluate_cases(load_cases(None))]
    doc = {"created": date.today().isoformat(), "ecsim_version": __version__,
           "parameter_set": default_registry().digest(), "cases": cases_digest(), "code": code_digest(),
           "passed": sum(r["passed"] for r in results), "failed": sum(not r["passed"] for r in results),
           "results": results}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return doc


def _finite(row: dict) -> dict:
    """NaN (a statistic with no defined value) becomes null in JSON."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


if __name__ == "__main__":
    target = Path(str(resources.files("ecsim.data").joinpath(FILE)))
    doc = write_snapshot(target)
    print(f"wrote {target}: {doc['passed']} passed, {doc['failed']} failed")
