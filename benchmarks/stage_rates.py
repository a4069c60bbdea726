"""Where `ecsim run`'s time goes: each stage of one chunk of each arm, timed, as patients per second.

    .venv/bin/python benchmarks/stage_rates.py                    # default scenario, 512 patients, 5 repeats
    .venv/bin/python benchmarks/stage_rates.py --patients 2048 --repeats 3 --label big

The stages are those of `simulation.summarize_task`, run one after the other on one core (one BLAS
thread): the patients' inputs (`patient_inputs`), the drug layers (`engine.integrate`), their
outputs (`engine.outputs`), the clinical layers (`assess_chunk`) split into the circuit's fixed
points (`clinical._protocols`, timed by wrapping it) and the rest (motor output, scales,
treatments), and the reduction (`summarize_chunk`). Each arm is warmed once, then timed
``--repeats`` times; medians are reported. Writes `results/<date>-stage-rates<-label>.json` with
the machine, and prints the table and what the 10-minute goal of issue 6 asks of each core.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results_io import label_suffix, write_json  # noqa: E402

STAGES = ("inputs", "integrate", "outputs", "circuit", "clinical_rest", "summarize")
GOAL_PATIENTS, GOAL_SECONDS = 1_000_000, 600.0   # issue 6: the default scenario, 10^6 patients per arm, 10 minutes


def time_arm(scenario, registry, model, arm, patients: int):
    """Seconds of each stage for patients [0, patients) of one arm, and the `ChunkSummary` the stages
    made (the same as `simulation.summarize_task`'s: tests/test_stage_rates.py)."""
    from ecsim import simulation as S
    from ecsim.circuit import clinical
    from ecsim.engine import integrate, outputs
    circuit = [0.0]
    protocols = clinical._protocols

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return protocols(*args, **kwargs)
        finally:
            circuit[0] += time.perf_counter() - started

    clinical._protocols = timed
    try:
        grid = S.grid_for(scenario)
        t0 = time.perf_counter()
        p, doses = S.patient_inputs(scenario, arm, 0, patients, registry)
        t1 = time.perf_counter()
        with np.errstate(all="ignore"):
            states = integrate(model, p, doses, grid, patients)
            t2 = time.perf_counter()
            out = outputs(model, p, states)
            t3 = time.perf_counter()
            clin = S.assess_chunk(scenario, arm, grid.times, out, 0, patients, registry)
            t4 = time.perf_counter()
        summary = S.summarize_chunk(S.Chunk(grid.times, out, p, states, clin, S.patient_labels(scenario, 0, patients)), 0)
        t5 = time.perf_counter()
    finally:
        clinical._protocols = protocols
    seconds = {"inputs": t1 - t0, "integrate": t2 - t1, "outputs": t3 - t2, "circuit": circuit[0],
               "clinical_rest": t4 - t3 - circuit[0], "summarize": t5 - t4}
    return seconds, summary


def measure(patients: int, repeats: int) -> dict:
    from threadpoolctl import threadpool_limits

    from ecsim import bench
    from ecsim import simulation as S
    from ecsim.chain import full_model
    from ecsim.scenario import load_scenario
    scenario = load_scenario(None)
    if scenario.population.phenotype is None or scenario.trial.crossover is not None:
        raise SystemExit("stage_rates: expects the default scenario (a phenotype, parallel arms)")
    registry, model = S.scenario_registry(scenario), full_model()
    load_start = os.getloadavg()[0]
    arms = {}
    with threadpool_limits(limits=1):
        for arm in scenario.arms:
            time_arm(scenario, registry, model, arm, patients)   # warm: code generation, first guesses
            runs = [time_arm(scenario, registry, model, arm, patients)[0] for _ in range(repeats)]
            arms[arm.name] = {s: statistics.median(r[s] for r in runs) for s in STAGES}
    return {"machine": bench.machine(), "load_average_1min_start": load_start, "date": datetime.date.today().isoformat(),
            "scenario": scenario.name, "patients_per_chunk": patients, "repeats": repeats,
            "seconds_median": arms, "goal": goal(arms, patients)}


def goal(arms: dict[str, dict[str, float]], patients: int) -> dict:
    """What the 10-minute goal asks of one core, against what each stage allows."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    needed = GOAL_PATIENTS * len(arms) / GOAL_SECONDS / cores
    per_stage = {s: sum(a[s] for a in arms.values()) for s in STAGES}
    total = sum(per_stage.values())
    rate = lambda seconds: patients * len(arms) / seconds if seconds > 0 else float("inf")
    return {"cores": cores, "needed_patient_arms_per_s_per_core": needed,
            "measured_patient_arms_per_s_per_core": rate(total),
            "shortfall": needed / rate(total),
            "stage_share": {s: per_stage[s] / total for s in STAGES},
            "rate_if_only_this_stage_ran": {s: rate(per_stage[s]) for s in STAGES},
            "slowest_arm_rate": min(patients / sum(a.values()) for a in arms.values())}


def print_table(doc: dict) -> None:
    n = doc["patients_per_chunk"]
    print(f"{'arm':28s} " + " ".join(f"{s:>13s}" for s in STAGES) + f" {'total':>8s} {'patients/s':>10s}")
    for name, s in doc["seconds_median"].items():
        total = sum(s.values())
        print(f"{name:28s} " + " ".join(f"{s[k]:13.3f}" for k in STAGES) + f" {total:8.3f} {n / total:10.0f}")
    g = doc["goal"]
    print(f"\nmeasured {g['measured_patient_arms_per_s_per_core']:.0f} patient-arms/s per core; the goal needs "
          f"{g['needed_patient_arms_per_s_per_core']:.0f} on each of {g['cores']} cores ({g['shortfall']:.1f}x short)")
    print("rate if only one stage ran: " + ", ".join(f"{s} {v:.0f}" for s, v in g["rate_if_only_this_stage_ran"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=512, help="patients per arm (one chunk; ecsim run's is 512)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--label", default="", help="appended to the results file's name")
    args = parser.parse_args()
    suffix = label_suffix(args.label)
    if args.patients < 1 or args.repeats < 1:
        print(f"error: --patients {args.patients} / --repeats {args.repeats}: both must be at least 1", file=sys.stderr)
        raise SystemExit(2)
    doc = measure(args.patients, args.repeats)
    print_table(doc)
    path = HERE / "results" / f"{doc['date']}-stage-rates{suffix}.json"
    write_json(path, doc)
    print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
