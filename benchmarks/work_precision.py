"""Work against precision: ecsim and libroadrunner at several accuracy settings, same run.

    .venv/bin/python benchmarks/work_precision.py                  # 2,048 ecsim patients, 50 libroadrunner
    .venv/bin/python benchmarks/work_precision.py --patients 4096 --roadrunner-patients 100
    .venv/bin/python benchmarks/work_precision.py --plot-only benchmarks/results/<file>.json
    .venv/bin/python benchmarks/work_precision.py --reference-patients 20 --label ref20   # results/<date>-work-precision-ref20.*

`ecsim bench` compares at equal tolerances, as issue 6 defines its ratio; but ecsim has no
tolerance, and at libroadrunner's rtol 1e-6 the two are not equally accurate. Here each contender
runs at several settings on the benchmark's workload (`ecsim.bench`: 14 days, twice-daily CBD with
THC and clobazam, hourly outputs), and each setting's error is measured the way `ecsim bench`
measures it, against SciPy LSODA at rtol 1e-10 on the first 3 patients (`--reference-patients`):

- ecsim: Magnus substeps per output step for the coupled blocks (`engine.SUBSTEPS`, 2 by default;
  the error of the fourth-order step falls about 16-fold per doubling);
- libroadrunner: CVODE (Adams, its faster setting here) at rtol 1e-3 ... 1e-8, atol = rtol / 1000.

One thread each (threadpoolctl). Writes `results/<date>-work-precision.json` (machine, the load at
start and end, every setting's seconds, patients/s, error, and error per compared output) and
`results/work-precision.png`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ecsim import bench, engine
from results_io import label_suffix, write_json

RESULTS = Path(__file__).resolve().parent / "results"
SUBSTEPS = (1, 2, 4)
RTOLS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)


def with_substeps(substeps: int):
    """Set the engine's Magnus substeps (and the Gauss points that follow from them)."""
    engine.SUBSTEPS = substeps
    engine.POINTS = tuple((j + c) / substeps for j in range(substeps) for c in engine.GAUSS)


def measure(patients: int, roadrunner_patients: int, reference_patients: int = 3) -> dict:
    load_at_start = os.getloadavg()[0]
    work = bench.Workload.build(patients)
    bench._warm_up(work)
    with threadpool_limits(limits=1):
        reference = bench.run_scipy(work, reference_patients, bench.REF_RTOL, bench.REF_ATOL, name="reference")
        rows = []
        default = engine.SUBSTEPS
        for substeps in SUBSTEPS:
            with_substeps(substeps)
            bench.run_ecsim(work, min(patients, 512), keep=1)   # warm: this setting's first call
            c = bench.run_ecsim(work, patients, keep=reference_patients)
            rows.append(_row("ecsim", f"{substeps} Magnus substeps per hour", c, reference))
        with_substeps(default)
        for rtol in RTOLS:
            model = bench.roadrunner_model(work, rtol, rtol * 1e-3)
            runs = [bench.run_roadrunner(work, roadrunner_patients, model) for _ in range(2)]
            c = max(runs, key=lambda r: r.per_s)   # the faster of two, as `ecsim bench` does
            rows.append(_row("libroadrunner", f"CVODE Adams rtol {rtol:g}, atol {rtol * 1e-3:g}", c, reference))
    for row in rows:
        print(f"{row['contender']:>13}  {row['setting']:<40} {row['patients_per_s']:>9.1f}/s  "
              f"error {row['max_rel_error_vs_reference']:.1e}", flush=True)
    return {"machine": bench.machine(), "load_average_1min_start": load_at_start, "date": datetime.date.today().isoformat(), "patients": patients,
            "roadrunner_patients": roadrunner_patients, "reference_patients": reference_patients,
            "reference": f"SciPy LSODA rtol {bench.REF_RTOL:g}, atol {bench.REF_ATOL:g}", "runs": rows}


def _row(contender: str, setting: str, c: bench.Contender, reference: bench.Contender) -> dict:
    return {"contender": contender, "setting": setting, "patients": c.patients, "seconds": c.seconds,
            "patients_per_s": c.per_s, "max_rel_error_vs_reference": bench.max_rel_error(c.outputs, reference.outputs),
            "max_rel_error_by_output": {name: bench.max_rel_error(c.outputs[..., [k]], reference.outputs[..., [k]])
                                        for k, name in enumerate(bench.COMPARED)}}


def plot(doc: dict, path: Path) -> None:
    """Seconds per patient against error, log-log, one line per contender."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for contender, marker in (("ecsim", "o-"), ("libroadrunner", "s--")):
        rows = [r for r in doc["runs"] if r["contender"] == contender]
        ax.loglog([r["max_rel_error_vs_reference"] for r in rows], [1e3 / r["patients_per_s"] for r in rows], marker,
                  label=contender)
        for r in rows:
            ax.annotate(_short(r["setting"]), (r["max_rel_error_vs_reference"], 1e3 / r["patients_per_s"]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("max relative error vs SciPy LSODA at rtol 1e-10")
    ax.set_ylabel("ms per patient (14 days, one thread)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _short(setting: str) -> str:
    """'CVODE Adams rtol 1e-06, atol 1e-09' -> 'rtol 1e-06'; '2 Magnus substeps per hour' -> '2 substeps/h'."""
    return setting.split(",")[0].replace("CVODE Adams ", "").replace(" Magnus substeps per hour", " substeps/h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=2048, help="ecsim patients per setting")
    parser.add_argument("--roadrunner-patients", type=int, default=50, help="libroadrunner patients per setting")
    parser.add_argument("--reference-patients", type=int, default=3, help="patients the errors are measured on")
    parser.add_argument("--plot-only", type=Path, help="redraw work-precision.png from a results file")
    parser.add_argument("--label", default="", help="appended to the results' names, so a run does not replace another")
    args = parser.parse_args()
    label = label_suffix(args.label)
    if args.plot_only:
        plot(json.loads(args.plot_only.read_text()), RESULTS / "work-precision.png")
        return
    if args.reference_patients < 1 or min(args.patients, args.roadrunner_patients) < args.reference_patients:
        print(f"error: --patients {args.patients}, --roadrunner-patients {args.roadrunner_patients}, "
              f"--reference-patients {args.reference_patients}: allowed 1 <= reference <= the others", file=sys.stderr)
        raise SystemExit(2)
    doc = measure(args.patients, args.roadrunner_patients, args.reference_patients)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{doc['date']}-work-precision{label}.json"
    write_json(out, doc)
    plot(doc, RESULTS / f"work-precision{label}.png")
    print(f"wrote {out} and {RESULTS / f'work-precision{label}.png'}")


if __name__ == "__main__":
    main()
