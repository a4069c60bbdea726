"""Numerical faults per virtual patient.

A patient whose parameters, drug levels, circuit or scores are not usable numbers (NaN or
infinity, or a basal-ganglia circuit that found no steady state at a visit) is a *fault*: it is
found where its chunk is simulated, kept out of every mean, percentile and trial statistic, written
to the tables as empty values with the reason in a ``fault`` column, and counted in summary.json
and the report. A run never writes a faulted patient's values as numbers.
"""

from __future__ import annotations

import numpy as np

REASONS = {
    "parameters": "a parameter or covariate value is NaN or infinite",
    "drug_levels": "a drug level, target or tone output is NaN or infinite",
    "circuit": "the basal-ganglia circuit found no steady state at a visit",
    "clinical": "a motor, symptom or scale value is NaN or infinite",
}


class NumericalFault(RuntimeError):
    """A run cannot give numbers at all (one line for the user; exit status 1)."""


class AllPatientsFaulted(NumericalFault):
    """Every patient of an arm is a numerical fault: there is nothing to report for it."""


class ParameterSetFault(NumericalFault):
    """The parameter set itself is unusable, for every patient (e.g. a silent normal circuit)."""


def patient_faults(values: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
                   clinical=None) -> np.ndarray:
    """Per patient, the first fault's key in `REASONS` ("" when the patient is sound).

    ``values``: per-patient parameters (arrays of length n or scalars); ``outputs``: trajectories
    (patients × time); ``clinical``: an `ecsim.circuit.clinical.ClinicalTrajectory` or None."""
    n = len(next(iter(outputs.values())))
    fault = np.full(n, "", dtype="<U12")
    checks = [("parameters", _rows_finite(values.values(), n)), ("drug_levels", _rows_finite(outputs.values(), n))]
    if clinical is not None:
        checks += [("circuit", clinical.converged.all(axis=1)),
                   ("clinical", _rows_finite([*clinical.totals.values(), *clinical.symptoms.values(),
                                              *clinical.regions.values()], n))]
    for key, sound in checks:
        fault[(fault == "") & ~sound] = key
    return fault


def _rows_finite(arrays, n: int) -> np.ndarray:
    sound = np.ones(n, dtype=bool)
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind not in "fc":
            continue
        if a.ndim == 0:
            sound &= bool(np.isfinite(a))
        elif a.shape[0] == n:
            sound &= np.isfinite(a.reshape(n, -1)).all(axis=1)
    return sound


def fault_summary(faults: dict[str, dict[int, str]], simulated: dict[str, int]) -> dict:
    """summary.json's account: per arm and in all, how many patients were faulted and why."""
    arms = {arm: {"patients_simulated": simulated[arm], "patients_faulted": len(f),
                  "by_reason": _count(f.values()), "first_patients": sorted(f)[:20]}
            for arm, f in faults.items()}
    every = [r for f in faults.values() for r in f.values()]
    return {"patients_faulted": len(every), "by_reason": _count(every), "reasons": REASONS, "arms": arms,
            "note": "faulted patients are left out of every statistic; their table rows are empty with the reason"}


def _count(reasons) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reasons:
        out[r] = out.get(r, 0) + 1
    return dict(sorted(out.items()))
