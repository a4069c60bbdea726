"""A/B check of the clinical layer (circuit fixed points, motor output, scales) against an older commit.

    git worktree add --detach /tmp/clinical_old 01db6d7
    .venv/bin/python benchmarks/clinical_ab.py                        # numbers: new vs old, 200 patients per case
    .venv/bin/python benchmarks/clinical_ab.py --timing 500 2000      # and clinical-layer seconds, A/B alternating
    git worktree remove /tmp/clinical_old

Two worker processes import ecsim, one from this checkout and one from the old tree (``--old``),
and run the same cases. Both get the same drug-layer outputs (computed once, by the old tree), so
any difference comes from the clinical layer. Cases: each arm of the default scenario through
`simulation.assess_chunk`; each phenotype with the drug drivers and course of the default
scenario's second arm (a CBD arm), once with rater draws and once with expected item scores.
Every output array (totals with firing rates, regions, symptoms, converged) is compared: the
report gives the largest relative deviation |new - old| / max(|new|, |old|) and how many values
are not bitwise equal. Timing: the default scenario's second arm, ``assess_chunk`` alone, the two
workers alternating (the order flips each repeat), one BLAS thread each; medians over the repeats
of wall and CPU seconds, and the load average (other work on the machine stretches wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NEW_SRC = HERE.parent / "src"
ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


# ---------------------------------------------------------------- worker side (one per code version)

class Worker:
    """Holds the default scenario and the drug-layer outputs of each population size it was asked for."""

    def __init__(self):
        from ecsim.scenario import load_scenario
        from ecsim.simulation import scenario_registry
        self.scenario = load_scenario(None)
        self.registry = scenario_registry(self.scenario)
        self.outputs: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def drug_outputs(self, arm_index: int, patients: int, path: str) -> dict:
        """Drug-layer outputs of one arm, computed here and saved (the other worker loads them)."""
        from ecsim.engine import integrate, outputs
        from ecsim.simulation import full_model, grid_for, patient_inputs
        sc, arm = self.scenario, self.scenario.arms[arm_index]
        model = full_model()
        p, doses = patient_inputs(sc, arm, 0, patients, self.registry)
        out = outputs(model, p, integrate(model, p, doses, grid_for(sc), patients))
        np.savez(path, **out)
        return {"path": path}

    def arm_count(self) -> dict:
        return {"arms": len(self.scenario.arms)}

    def _loaded(self, path: str) -> dict[str, np.ndarray]:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}

    def cases(self, outputs_dir: str, patients: int, result_path: str) -> dict:
        """Every case's clinical arrays, flattened to ``case/group/name`` and saved."""
        from ecsim.circuit.clinical import ClinicalModel, assess
        from ecsim.circuit.phenotypes import PHENOTYPES
        from ecsim.simulation import arm_course, assess_chunk, grid_for, visit_days, visit_drivers
        sc, reg = self.scenario, self.registry
        times = grid_for(sc).times
        arrays: dict[str, np.ndarray] = {}
        for i, arm in enumerate(sc.arms):
            out = self._loaded(os.path.join(outputs_dir, f"arm{i}_{patients}.npz"))
            _flatten(arrays, f"arm:{arm.name}", assess_chunk(sc, arm, times, out, 0, patients, reg))
        arm = sc.arms[1]
        out = self._loaded(os.path.join(outputs_dir, f"arm1_{patients}.npz"))
        days = visit_days(sc)
        drivers, course, cm = visit_drivers(times, out, days), arm_course(arm, sc), ClinicalModel.from_registry(reg)
        for name in sorted(PHENOTYPES):
            for expected in (False, True):
                tr = assess(cm, reg, name, days, drivers, course, sc.population.seed, 0, patients,
                            expected_scores=expected)
                _flatten(arrays, f"phenotype:{name}{':expected' if expected else ''}", tr)
        np.savez(result_path, **arrays)
        return {"path": result_path, "arrays": len(arrays)}

    def time(self, outputs_dir: str, patients: int) -> dict:
        """Seconds of `assess_chunk` for the second arm (drug-layer outputs loaded beforehand)."""
        from ecsim.simulation import assess_chunk, grid_for
        sc = self.scenario
        if (1, patients) not in self.outputs:
            self.outputs[(1, patients)] = self._loaded(os.path.join(outputs_dir, f"arm1_{patients}.npz"))
        out = self.outputs[(1, patients)]
        started, cpu = time.perf_counter(), time.process_time()
        assess_chunk(sc, sc.arms[1], grid_for(sc).times, out, 0, patients, self.registry)
        return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def _flatten(arrays: dict, case: str, tr) -> None:
    for group in ("totals", "regions", "symptoms"):
        for k, v in getattr(tr, group).items():
            arrays[f"{case}/{group}/{k}"] = v
    arrays[f"{case}/converged"] = tr.converged


def serve() -> None:
    """Answer one JSON request per stdin line with one JSON line on stdout."""
    worker = Worker()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        method = getattr(worker, req.pop("cmd"))
        print(json.dumps(method(**req)), flush=True)


# ---------------------------------------------------------------- driver side

class Client:
    def __init__(self, label: str, src: Path):
        env = os.environ | ONE_THREAD | {"PYTHONPATH": str(src)}
        self.label = label
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self._read()
        version = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, check=False).stdout.strip()
        self.version = version + ("+working tree" if src == NEW_SRC else "")

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.label} worker stopped (see its error above)")
        return json.loads(line)

    def call(self, cmd: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def compare(old_path: str, new_path: str) -> dict:
    """Largest relative deviation and count of values that are not bitwise equal, per case and overall."""
    worst = {"max_rel_dev": 0.0, "where": None, "not_bitwise": 0, "values": 0}
    per_case: dict[str, float] = {}
    with np.load(old_path) as old, np.load(new_path) as new:
        if set(old.files) != set(new.files):
            raise SystemExit(f"different outputs: {sorted(set(old.files) ^ set(new.files))}")
        for k in sorted(old.files):
            a, b = old[k].astype(float), new[k].astype(float)
            scale = np.maximum(np.abs(a), np.abs(b))
            rel = np.where(scale > 0, np.abs(a - b) / np.where(scale > 0, scale, 1.0), 0.0)
            rel = np.where(np.isnan(a) & np.isnan(b), 0.0, np.where(np.isnan(a) | np.isnan(b), np.inf, rel))
            dev = float(rel.max()) if rel.size else 0.0
            worst["not_bitwise"] += int(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b)))))
            worst["values"] += a.size
            case = k.split("/")[0]
            per_case[case] = max(per_case.get(case, 0.0), dev)
            if dev > worst["max_rel_dev"]:
                worst["max_rel_dev"], worst["where"] = dev, k
    return worst | {"per_case": per_case}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default="/tmp/clinical_old", help="the old tree (a git worktree)")
    ap.add_argument("--patients", type=int, default=200, help="patients per case for the numbers")
    ap.add_argument("--timing", type=int, nargs="*", default=[], help="population sizes to time")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-numbers", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve()
    old_src = Path(args.old) / "src"
    if not old_src.is_dir():
        raise SystemExit(f"--old: {args.old} has no src/; create it with git worktree add --detach {args.old} 01db6d7")
    old, new = Client("old", old_src), Client("new", NEW_SRC)
    report: dict = {"old": old.version, "new": new.version}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = ([] if args.skip_numbers else [args.patients]) + args.timing
        for size in dict.fromkeys(sizes):
            arms = range(old.call("arm_count")["arms"]) if size == args.patients and not args.skip_numbers else [1]
            for i in arms:
                old.call("drug_outputs", arm_index=i, patients=size, path=os.path.join(tmp, f"arm{i}_{size}.npz"))
        if not args.skip_numbers:
            a = old.call("cases", outputs_dir=tmp, patients=args.patients, result_path=os.path.join(tmp, "old.npz"))
            new.call("cases", outputs_dir=tmp, patients=args.patients, result_path=os.path.join(tmp, "new.npz"))
            report["numbers"] = {"patients_per_case": args.patients, "arrays": a["arrays"]} | compare(
                os.path.join(tmp, "old.npz"), os.path.join(tmp, "new.npz"))
        if args.timing:
            report["timing"] = timing(old, new, tmp, args.timing, args.repeats)
    old.close()
    new.close()
    print(json.dumps(report, indent=1))


def timing(old: Client, new: Client, tmp: str, sizes: list[int], repeats: int) -> dict:
    for c in (old, new):     # first call of each: warms caches (clinical model, imports)
        c.call("time", outputs_dir=tmp, patients=sizes[0])
    runs = {(c.label, n): [] for c in (old, new) for n in sizes}
    load_before = os.getloadavg()
    for r in range(repeats):
        for n in sizes:
            for c in ((old, new) if r % 2 == 0 else (new, old)):
                runs[(c.label, n)].append(c.call("time", outputs_dir=tmp, patients=n))
    result = {"loadavg_before": load_before, "loadavg_after": os.getloadavg(), "repeats": repeats, "sizes": {}}
    for n in sizes:
        row = {}
        for key in ("seconds", "cpu_seconds"):
            o, w = (statistics.median(r[key] for r in runs[(label, n)]) for label in ("old", "new"))
            row[key] = {"old": o, "new": w, "speedup": o / w,
                        "old_all": [r[key] for r in runs[("old", n)]], "new_all": [r[key] for r in runs[("new", n)]]}
        result["sizes"][str(n)] = row
    return result


if __name__ == "__main__":
    main()
