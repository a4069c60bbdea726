"""A/B check of the drug-layer engine (`ecsim.engine.integrate` and `outputs`) against an older commit.

    git worktree add --detach /tmp/engine_old 01db6d7
    .venv/bin/python benchmarks/engine_ab.py --old /tmp/engine_old                  # numbers and timing
    .venv/bin/python benchmarks/engine_ab.py --old /tmp/engine_old --skip-timing    # numbers only
    .venv/bin/python benchmarks/engine_ab.py --old /tmp/engine_old --skip-numbers --skip-timing --memory
    git worktree remove /tmp/engine_old

The old tree's package is imported in this process as ``ecsim_old`` (its modules import each other
relatively), so both engines see the same model object, parameter values and boluses, made once by
this checkout: any difference comes from the engine.

Numbers: every arm of every embedded scenario (`--patients-check` patients each), every state and
output; per state, max |new - old| / max(|old|, tiny) over patients and times, and how many arrays
are not bitwise equal (NaN equal to NaN). Timing: the default scenario's arm
``full_spectrum_25mg_bid`` (84 days, 2 h outputs) and the `ecsim bench` regimen (14 days, hourly,
with clobazam: the general Magnus block), `integrate` and `outputs` separately, wall and CPU
seconds of this process, old and new alternating (the order flips each repeat), one BLAS thread;
medians over the repeats and the load average before and after (other work on the machine slows
both sides alike, not their ratio; CPU seconds are less disturbed by it than wall seconds).
Memory (``--memory``): the same arm, each side in a fresh process, its peak resident set after
`integrate` and after `outputs`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

TINY = 1e-300


def load_old_engine(root: str):
    """``ecsim.engine`` of the tree at ``root`` (a git worktree), imported as ``ecsim_old.engine``."""
    package = os.path.join(root, "src", "ecsim")
    spec = importlib.util.spec_from_file_location("ecsim_old", os.path.join(package, "__init__.py"),
                                                  submodule_search_locations=[package])
    module = importlib.util.module_from_spec(spec)
    sys.modules["ecsim_old"] = module
    spec.loader.exec_module(module)
    import ecsim_old.engine
    return ecsim_old.engine


def scenario_cases(name: str | None, patients: int):
    """(label, model, values, doses, grid, batch) for each arm of an embedded scenario."""
    from ecsim.scenario import load_scenario
    from ecsim.simulation import full_model, grid_for, patient_inputs, scenario_registry
    sc = load_scenario(name)
    registry, model = scenario_registry(sc), full_model()
    for arm in sc.arms:
        values, doses = patient_inputs(sc, arm, 0, patients, registry)
        yield f"{sc.name}/{arm.name}", model, values, doses, grid_for(sc), patients


def bench_case(patients: int):
    from ecsim.bench import Workload
    work = Workload.build(patients)
    values, doses = work.patients(0, patients)
    return "bench-regimen/14d-hourly", work.model, values, doses, work.grid, patients


def deviations(new: dict, old: dict) -> tuple[float, list[str]]:
    """Worst per-array max |new - old| / max(|old|, tiny), and the arrays that are not bitwise equal."""
    worst, unequal = 0.0, []
    for name, reference in old.items():
        ours = new[name]
        if np.array_equal(ours, reference, equal_nan=True):
            continue
        unequal.append(name)
        scale = max(float(np.nanmax(np.abs(reference))), TINY)
        worst = max(worst, float(np.nanmax(np.abs(ours - reference))) / scale)
    return worst, unequal


def check_numbers(old_engine, patients: int) -> list[dict]:
    from ecsim import engine
    from ecsim.scenario import embedded_scenarios
    rows = []
    cases = [c for name in embedded_scenarios() for c in scenario_cases(name, patients)] + [bench_case(patients)]
    for label, model, values, doses, grid, batch in cases:
        with np.errstate(all="ignore"):
            new_states = engine.integrate(model, values, doses, grid, batch)
            old_states = old_engine.integrate(model, values, doses, grid, batch)
            new_out, old_out = engine.outputs(model, values, new_states), old_engine.outputs(model, values, old_states)
        states, unequal_states = deviations(new_states, old_states)
        outs, unequal_outs = deviations(new_out, old_out)
        rows.append({"case": label, "patients": batch, "max_rel_states": states, "max_rel_outputs": outs,
                     "not_bitwise": unequal_states + unequal_outs, "arrays": len(old_states) + len(old_out)})
        print(f"{label:<55} states {states:.1e}  outputs {outs:.1e}  not bitwise: "
              f"{len(unequal_states) + len(unequal_outs)}/{len(old_states) + len(old_out)}", flush=True)
    return rows


def time_once(engine, case) -> dict[str, float]:
    """Wall and CPU seconds (this process) of `integrate` and of `outputs`."""
    _, model, values, doses, grid, batch = case
    clocks = [(time.perf_counter(), time.process_time())]
    states = engine.integrate(model, values, doses, grid, batch)
    clocks.append((time.perf_counter(), time.process_time()))
    engine.outputs(model, values, states)
    clocks.append((time.perf_counter(), time.process_time()))
    seconds = {}
    for part, (a, b) in zip(("integrate", "outputs"), zip(clocks, clocks[1:])):
        seconds[f"{part}_s"], seconds[f"{part}_cpu_s"] = b[0] - a[0], b[1] - a[1]
    return seconds


def time_case(old_engine, case, repeats: int) -> dict:
    from ecsim import engine
    sides = {"old": old_engine, "new": engine}
    for e in sides.values():   # warm-up: compile the model, fill caches
        time_once(e, case)
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    load_before = os.getloadavg()
    for r in range(repeats):
        for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
            runs[side].append(time_once(sides[side], case))
    load_after = os.getloadavg()
    result = {"case": case[0], "patients": case[5], "repeats": repeats,
              "loadavg_before": load_before, "loadavg_after": load_after}
    for side, measured in runs.items():
        for key in measured[0]:
            result[f"{side}_{key}"] = statistics.median(m[key] for m in measured)
    for key in ("integrate_s", "outputs_s", "integrate_cpu_s", "outputs_cpu_s"):
        result[f"speedup_{key}"] = result[f"old_{key}"] / result[f"new_{key}"]
    print(f"{case[0]:<45} {case[5]:>5} patients, medians of {repeats}, wall (CPU) seconds, old -> new:", flush=True)
    for part in ("integrate", "outputs"):
        print(f"    {part:<9} {result[f'old_{part}_s']:.3f} ({result[f'old_{part}_cpu_s']:.3f}) -> "
              f"{result[f'new_{part}_s']:.3f} ({result[f'new_{part}_cpu_s']:.3f}): "
              f"{result[f'speedup_{part}_s']:.1f}x ({result[f'speedup_{part}_cpu_s']:.1f}x)", flush=True)
    print(f"    load average (1, 5, 15 min) before {load_before}, after {load_after}", flush=True)
    return result


def default_arm_case(patients: int):
    from ecsim.scenario import load_scenario
    arm = [a.name for a in load_scenario(None).arms].index("full_spectrum_25mg_bid")
    return list(scenario_cases(None, patients))[arm]


def peak_rss(side: str, old_root: str, patients: int) -> dict:
    """This process: one `integrate` and `outputs` by one side; peak resident set (MiB) before, after each."""
    from ecsim import engine as new_engine
    engine = load_old_engine(old_root) if side == "old" else new_engine
    _, model, values, doses, grid, batch = default_arm_case(patients)
    peaks = {"side": side, "patients": patients, "before_mib": peak_mib()}
    states = engine.integrate(model, values, doses, grid, batch)
    peaks["after_integrate_mib"] = peak_mib()
    engine.outputs(model, values, states)
    peaks["after_outputs_mib"] = peak_mib()
    return peaks


def peak_mib() -> float:
    """Peak resident set of this process's memory (VmHWM: getrusage's maxrss would carry the
    parent's peak over fork and exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def measure_memory(old_root: str, sizes: list[int]) -> list[dict]:
    rows = []
    for patients in sizes:
        for side in ("old", "new"):
            done = subprocess.run([sys.executable, __file__, "--old", old_root, "--rss-child", side, str(patients)],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout))
            r = rows[-1]
            print(f"peak RSS, {side}, {patients} patients: {r['before_mib']:.0f} MiB before, "
                  f"{r['after_integrate_mib']:.0f} after integrate, {r['after_outputs_mib']:.0f} after outputs", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="root of a git worktree of the old commit")
    ap.add_argument("--patients", type=int, nargs="+", default=[500, 2000], help="timing sizes")
    ap.add_argument("--bench-patients", type=int, nargs="*", default=[500], help="timing sizes, bench regimen")
    ap.add_argument("--patients-check", type=int, default=100, help="patients per arm in the numbers check")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-numbers", action="store_true")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--memory", action="store_true", help="peak resident set, each side in its own process")
    ap.add_argument("--rss-child", nargs=2, metavar=("SIDE", "PATIENTS"), help=argparse.SUPPRESS)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if args.rss_child:
        print(json.dumps(peak_rss(args.rss_child[0], args.old, int(args.rss_child[1]))))
        return
    old_engine = load_old_engine(args.old)
    report: dict = {"old": args.old}
    with threadpool_limits(limits=1, user_api="blas"):
        if not args.skip_numbers:
            report["numbers"] = check_numbers(old_engine, args.patients_check)
        if not args.skip_timing:
            cases = [default_arm_case(n) for n in args.patients] + [bench_case(n) for n in args.bench_patients]
            report["timing"] = [time_case(old_engine, case, args.repeats) for case in cases]
    if args.memory:
        report["memory"] = measure_memory(args.old, args.patients)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
