"""Does `ecsim bench`'s error, measured on 3 patients, hold for the worst patient of a population?

    .venv/bin/python benchmarks/error_coverage.py                    # 2,000 patients, 14 days
    .venv/bin/python benchmarks/error_coverage.py --patients 500 --worst 3

`ecsim bench` measures `max_rel_error_vs_reference` on its first 3 patients, because the
reference (SciPy LSODA at rtol 1e-10) costs about 5 s per patient. Those 3 patients may not be
the ones with the largest error, for example a CYP2C19 poor metaboliser. This script looks for the
worst patients among many, cheaply, and then checks them against the reference:

1. **Estimate** every patient's error with ecsim itself. The only approximation in the engine is
   the fourth-order Magnus step of the coupled blocks. Constant-coefficient blocks use exact
   exponentials, and doses land on grid times. So ecsim at 16 substeps per hour, whose error is
   about 8^4 times smaller, is a reference for ecsim at its default 2 (step doubling, Hairer,
   Norsett & Wanner, Solving ODEs I, section II.4).
2. **Check** against the LSODA reference: the first 3 patients (`ecsim bench`'s), the `--worst`
   patients by the estimate, and the first patient of each CYP2C19 activity class.

Errors are reported two ways. **peak** is `ecsim bench`'s: |error| divided by the output's max over
time of |reference|. **range** divides by the output's range over time (max - min). That is
stricter for fold outputs that sit near 1 while the drug moves them by a few per cent. Writes
`results/<date>-error-coverage.json`.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ecsim import bench, engine
from ecsim.reference import integrate_reference
from results_io import label_suffix, write_json
from work_precision import with_substeps

RESULTS = Path(__file__).resolve().parent / "results"
FINE_SUBSTEPS = 16


def ecsim_outputs(work: bench.Workload, patients: int, substeps: int) -> np.ndarray:
    """ecsim's compared outputs (patients, times, outputs) at `substeps` Magnus substeps per hour."""
    default = engine.SUBSTEPS
    try:
        with_substeps(substeps)
        return bench.run_ecsim(work, patients, keep=patients).outputs
    finally:
        with_substeps(default)


def per_patient_error(ours: np.ndarray, reference: np.ndarray, scale: str = "peak") -> np.ndarray:
    """Each patient's max over outputs and times of |ours - reference| / the output's scale over time
    (`peak`: max |reference|; `range`: max - min of reference); (patients,)."""
    if scale == "peak":
        size = np.abs(reference).max(axis=1, keepdims=True)
    else:
        size = np.ptp(reference, axis=1, keepdims=True)
    return (np.abs(ours - reference) / np.where(size > 0, size, 1.0)).max(axis=(1, 2))


def reference_outputs(work: bench.Workload, values: dict, doses: list, indices: list[int]) -> np.ndarray:
    """LSODA at the benchmark's reference tolerances for the patients `indices`."""
    outs = []
    for i in indices:
        states = integrate_reference(work.model, values, doses, work.grid, i, rtol=bench.REF_RTOL, atol=bench.REF_ATOL)
        one = {k: v[i:i + 1] for k, v in values.items()}
        outs.append(bench.compared_outputs(work.model, one, {k: v[None, :] for k, v in states.items()})[0])
    return np.stack(outs)


def checked_patients(values: dict, estimate: np.ndarray, worst: int) -> dict[int, str]:
    """Patient index -> why it is checked against the reference."""
    chosen: dict[int, str] = {i: "one of ecsim bench's first 3" for i in range(min(3, len(estimate)))}
    for i in np.argsort(estimate)[::-1][:worst]:
        chosen.setdefault(int(i), "largest estimated error")
    activity = np.asarray(values["cyp2c19_activity"])
    for level in np.unique(activity):
        chosen.setdefault(int(np.flatnonzero(activity == level)[0]), f"first with CYP2C19 activity {level:g}")
    return chosen


def measure(patients: int, worst: int) -> dict:
    work = bench.Workload.build(patients)
    bench._warm_up(work)
    with threadpool_limits(limits=1):
        coarse = ecsim_outputs(work, patients, engine.SUBSTEPS)
        fine = ecsim_outputs(work, patients, FINE_SUBSTEPS)
        estimate = per_patient_error(coarse, fine)
        values, doses = work.patients(0, patients)
        chosen = checked_patients(values, estimate, worst)
        indices = sorted(chosen)
        reference = reference_outputs(work, values, doses, indices)
    rows = [_row(i, chosen[i], values, estimate, coarse[[i]], fine[[i]], reference[[k]]) for k, i in enumerate(indices)]
    for r in rows:
        print(f"patient {r['patient']:>5} ({r['why']}): estimate {r['estimated_error_peak']:.1e}, "
              f"vs reference {r['error_peak']:.1e} (peak) {r['error_range']:.1e} (range); "
              f"ecsim at {FINE_SUBSTEPS} substeps vs reference {r['fine_error_peak']:.1e}", flush=True)
    return {"machine": bench.machine(), "date": datetime.date.today().isoformat(), "patients": patients,
            "days": float(work.scenario.duration_days), "substeps": engine.SUBSTEPS, "fine_substeps": FINE_SUBSTEPS,
            "reference": f"SciPy LSODA rtol {bench.REF_RTOL:g}, atol {bench.REF_ATOL:g}",
            "estimated_error_peak_quantiles": {q: float(np.quantile(estimate, float(q))) for q in ("0.5", "0.9", "0.99", "1")},
            "checked": rows}


def _row(i: int, why: str, values: dict, estimate: np.ndarray, coarse, fine, reference) -> dict:
    return {"patient": i, "why": why,
            "covariates": {k: float(np.asarray(values[k])[i]) for k in ("cyp2c19_activity", "body_weight_kg", "cbd_cl",
                                                                         "clb_cl", "cbd_f_oral_eta", "cbd_daily_mg")},
            "estimated_error_peak": float(estimate[i]),
            "error_peak": float(per_patient_error(coarse, reference)[0]),
            "error_range": float(per_patient_error(coarse, reference, "range")[0]),
            "fine_error_peak": float(per_patient_error(fine, reference)[0]),
            "error_peak_by_output": {name: float(per_patient_error(coarse[..., [k]], reference[..., [k]])[0])
                                     for k, name in enumerate(bench.COMPARED)},
            "error_range_by_output": {name: float(per_patient_error(coarse[..., [k]], reference[..., [k]], "range")[0])
                                      for k, name in enumerate(bench.COMPARED)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=2000, help="patients whose error is estimated")
    parser.add_argument("--worst", type=int, default=5, help="patients with the largest estimate checked against the reference")
    parser.add_argument("--label", default="", help="appended to the results' name, so a run does not replace another")
    args = parser.parse_args()
    label = label_suffix(args.label)
    if args.patients < 3 or not 0 <= args.worst <= 20:
        print(f"error: --patients {args.patients}, --worst {args.worst}: allowed patients >= 3, 0 <= worst <= 20",
              file=sys.stderr)
        raise SystemExit(2)
    doc = measure(args.patients, args.worst)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{doc['date']}-error-coverage{label}.json"
    write_json(out, doc)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
