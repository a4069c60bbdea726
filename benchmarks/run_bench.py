"""Run `ecsim bench` at several population sizes; keep the results with the machine description.

    .venv/bin/python benchmarks/run_bench.py                      # 10^3, 10^4, 10^5 patients
    .venv/bin/python benchmarks/run_bench.py --sizes 1000 1000000 # any sizes
    .venv/bin/python benchmarks/run_bench.py --backends numpy jax # both engines, alternating per size
    .venv/bin/python benchmarks/run_bench.py --label after-x      # results/<date>-<machine>-after-x.json

Each size runs in its own process (`ecsim bench --patients N --json`), so `peak_rss_mb` is that
run's own peak. Writes `benchmarks/results/<date>-<machine>.json` (machine, every run's JSON) and
`benchmarks/results/scaling.png` (wall seconds against patients, log-log, with a linear reference);
with other backends than numpy alone, `<date>-<machine>-<backends>.json` and `scaling-<backends>.png`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from results_io import label_suffix, write_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ECSIM = [sys.executable, "-m", "ecsim"]


def run_size(patients: int, reference_patients: int, backend: str = "numpy") -> dict:
    """One `ecsim bench --json` run in a fresh process, with its total wall time."""
    started = time.perf_counter()
    done = subprocess.run([*ECSIM, "bench", "--patients", str(patients), "--reference-patients",
                           str(reference_patients), "--backend", backend, "--json"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"ecsim bench --patients {patients} failed:\n{done.stderr}")
    doc = json.loads(done.stdout)
    doc["process_wall_s"] = time.perf_counter() - started
    print(f"{patients:>9} patients: ecsim ({backend}) {doc['ecsim_patients_per_s']:.0f}/s, libroadrunner "
          f"{doc['roadrunner_patients_per_s']:.1f}/s, ratio {doc['ratio_vs_roadrunner']:.1f}, "
          f"error {doc['max_rel_error_vs_reference']:.1e}, peak RSS {doc['peak_rss_mb']:.0f} MiB", flush=True)
    return doc


def machine_slug(machine: dict) -> str:
    cpu = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*", "", machine["cpu"].lower())
    return "-".join(re.findall(r"[a-z0-9]+", cpu)[:4] + [f"{machine['usable_cores']}core"])


def plot(runs: list[dict], path: Path) -> None:
    """Wall seconds of each contender against patients, log-log, with a line of slope 1 through the
    smallest ecsim run; libroadrunner and SciPy extrapolated from their fastest measured rate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    backends = list(dict.fromkeys(r.get("backend", "numpy") for r in runs))
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for backend in backends:
        mine = [r for r in runs if r.get("backend", "numpy") == backend]
        label = "ecsim (measured)" if backends == ["numpy"] else f"ecsim, {backend} (measured)"
        ax.loglog([r["patients"] for r in mine], [r["patients"] / r["ecsim_patients_per_s"] for r in mine], "o-",
                  label=label)
    runs = [r for r in runs if r.get("backend", "numpy") == backends[0]]
    n = [r["patients"] for r in runs]
    for key, label in (("roadrunner_patients_per_s", "libroadrunner CVODE"), ("scipy_patients_per_s", "SciPy LSODA")):
        rate = max(r[key] for r in runs)
        ax.loglog(n, [p / rate for p in n], "--", label=f"{label} ({rate:.3g}/s, extrapolated)")
    first = n[0] / runs[0]["ecsim_patients_per_s"]
    ax.loglog(n, [first * p / n[0] for p in n], ":", color="grey", label="linear in patients")
    ax.set_xlabel("patients (14 days, twice-daily doses, hourly outputs)")
    ax.set_ylabel("wall time, one thread (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--reference-patients", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["numpy"], choices=["numpy", "jax"])
    parser.add_argument("--plot-only", type=Path, help="redraw scaling.png from a results file")
    parser.add_argument("--label", default="", help="appended to the results file's name, so a series of the "
                        "same day and machine does not replace another")
    args = parser.parse_args()
    label = label_suffix(args.label)
    tag = "" if args.backends == ["numpy"] else "-" + "-".join(args.backends)
    if args.plot_only:
        plot(json.loads(args.plot_only.read_text())["runs"], RESULTS / f"scaling{tag}.png")
        return
    runs = [run_size(n, args.reference_patients, backend) for n in sorted(args.sizes) for backend in args.backends]
    machine = runs[-1]["machine"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.date.today().isoformat()}-{machine_slug(machine)}{tag}{label}.json"
    doc = {"command": "ecsim bench --patients N --backend B --json", "machine": machine,
           "runs": [{k: v for k, v in r.items() if k != "machine"}
                    | {"load_average_1min": r["machine"]["load_average_1min"]} for r in runs]}
    write_json(path, doc)
    plot(runs, RESULTS / f"scaling{tag}.png")
    print(f"wrote {path.relative_to(HERE.parent)} and benchmarks/results/scaling{tag}.png")


if __name__ == "__main__":
    main()
