"""What a run reports about symptoms and scales: per arm, per visit, with spread and change."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .circuit.regions import REGIONS
from .circuit.scales import SYMPTOMS
from .simulation import ArmResult

SCALES = ("bfmdrs_movement", "bfmdrs_disability", "twstrs_total", "jrs", "gpi_hz")
PRESENT = 0.1   # a symptom score above this counts as present


def clinical_table(results: list[ArmResult]) -> pd.DataFrame:
    """Long table: one row per arm, patient and visit, with every scale, rate and symptom score."""
    frames = []
    for r in results:
        if not r.clinical:
            continue
        n, visits = next(iter(r.clinical.values())).shape
        base = {"arm": r.name, "patient": np.repeat(np.arange(n), visits), "day": np.tile(r.visit_days, n)}
        frames.append(pd.DataFrame(base | {k: v.reshape(-1) for k, v in r.clinical.items()}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _mean_ci(x: np.ndarray) -> dict:
    m = float(np.mean(x))
    half = 1.96 * float(np.std(x, ddof=1)) / np.sqrt(len(x)) if len(x) > 1 else 0.0
    return {"mean": round(m, 3), "ci95": [round(m - half, 3), round(m + half, 3)]}


def clinical_summary(results: list[ArmResult]) -> list[dict] | None:
    """Per arm: scales at each visit (mean, 5th-95th percentile), change from baseline at the last
    visit (mean and 95 % CI of the mean), symptom prevalence and mean severity per region."""
    arms = [r for r in results if r.clinical]
    if not arms:
        return None
    out = []
    for r in arms:
        scales = {}
        for k in SCALES:
            v = r.clinical[k]
            lo, hi = np.percentile(v, [5, 95], axis=0)
            scales[k] = {"mean": np.round(v.mean(axis=0), 3).tolist(), "p05": np.round(lo, 3).tolist(),
                         "p95": np.round(hi, 3).tolist(),
                         "change_at_last_visit": _mean_ci(v[:, -1] - v[:, 0])}
        symptoms = {k: {"baseline": round(float(np.mean(r.clinical[k][:, 0] > PRESENT)), 3),
                        "last_visit": round(float(np.mean(r.clinical[k][:, -1] > PRESENT)), 3)} for k in SYMPTOMS}
        severity = r.region_severity_sum / r.n
        regions = {reg: {"baseline": round(float(severity[0, i]), 3), "last_visit": round(float(severity[-1, i]), 3)}
                   for i, reg in enumerate(REGIONS)}
        out.append({"arm": r.name, "visit_days": r.visit_days.tolist(), "scales": scales,
                    "symptom_prevalence": symptoms, "region_severity_mean": regions})
    return out
