"""`ecsim targets`: target engagement and endocannabinoid tone per arm, with between-patient spread."""

from __future__ import annotations

import numpy as np

from .exposure import TARGETS
from .simulation import ArmResult


def target_table(results: list[ArmResult]) -> dict:
    """Per arm, each target's last-day time average: median and 5th-95th percentile over patients."""
    arms = []
    for r in results:
        rows = {}
        for name in TARGETS:
            values = r.exposure[f"{name}.avg"]
            lo, mid, hi = np.percentile(values, [5, 50, 95])
            rows[name] = {"median": _r(mid), "p05": _r(lo), "p95": _r(hi)}
        cbd = r.exposure["cbd_brain_free_nM.cavg"]
        rows["cbd_brain_free_nM"] = {"median": _r(np.median(cbd)), "p05": _r(np.percentile(cbd, 5)),
                                     "p95": _r(np.percentile(cbd, 95))}
        arms.append({"arm": r.name, "patients": r.n, "targets": rows})
    return {"window": "time average over the last 24 h", "spread": "between patients (5th-95th percentile)",
            "arms": arms}


def _r(x: float) -> float:
    return float(f"{x:.4g}")
