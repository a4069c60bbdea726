"""Peak memory and wall time of `ecsim run` as the number of patients grows (issue 6).

Each size runs `ecsim run SCENARIO --patients N --no-report` in a fresh process; its peak resident
memory comes from the kernel's accounting of that process (os.wait4). ``--python`` and
``--pythonpath`` run another checkout (e.g. a git worktree of an earlier commit) in the same
session, so that two versions are compared on the same machine and load:

    .venv/bin/python benchmarks/memory_scaling.py --sizes 25000 100000 400000
    git worktree add --detach /tmp/old <commit>
    .venv/bin/python benchmarks/memory_scaling.py --pythonpath /tmp/old/src --label old --sizes 25000 100000

Results (JSON, one line per run, with the machine and load) are appended to --out; --plot draws
peak memory against patients for every label in that file. Each row also says where the wall time
that is not CPU went: ``runqueue_wait_s`` is the time the main thread was ready but another process
had the core (`/proc/PID/schedstat`), ``blocked_s`` the rest of wall - CPU - wait of the main thread
(sleeping on disk, fsync, locks); ``io`` is the kernel's `/proc/PID/io` (``write_bytes``: to the
disk; ``wchar``: through write calls). ``--scenario default`` runs the default scenario;
``--keep DIR`` keeps each run's folder in DIR (otherwise a temporary folder), e.g. to compare the
files of two checkouts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
SCENARIO = HERE / "scenarios" / "memory-scaling.yaml"


def measure(patients: int, python: str, pythonpath: str | None, scenario: Path | None, chunk: int | None,
            keep: Path | None = None, label: str = "") -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else dict(os.environ)
    with contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory() as folder:
        out = Path(folder, f"{_slug(label)}-{patients}" if keep else "run")
        cmd = [python, "-m", "ecsim", "run"] + ([str(scenario)] if scenario else []) + [
            "--patients", str(patients), "--no-report", "--out", str(out)] + (["--chunk", str(chunk)] if chunk else [])
        load_before = os.getloadavg()
        started = time.perf_counter()
        log = tempfile.TemporaryFile()   # not a pipe: a child writing more than the pipe holds would block
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)   # exited, not reaped: /proc/PID is still there
        seconds = time.perf_counter() - started
        main_cpu_ns, wait_ns, _ = (int(x) for x in Path(f"/proc/{proc.pid}/schedstat").read_text().split())
        io = {k: int(v) for k, v in (line.split(": ") for line in
                                     Path(f"/proc/{proc.pid}/io").read_text().splitlines())}
        _, status, usage = os.wait4(proc.pid, 0)
        log.seek(0)
        error = log.read().decode(errors="replace")[-500:]
        log.close()
        sizes = {p.name: p.stat().st_size for p in out.glob("*")} if status == 0 else {}
    return {"patients": patients, "status": os.waitstatus_to_exitcode(status), "wall_s": round(seconds, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "user_s": round(usage.ru_utime, 1), "sys_s": round(usage.ru_stime, 1),
            "runqueue_wait_s": round(wait_ns / 1e9, 1), "blocked_s": round(seconds - (main_cpu_ns + wait_ns) / 1e9, 1),
            "voluntary_switches": usage.ru_nvcsw, "io": io, "out_filesystem": filesystem(out.parent),
            "files_bytes": sizes, "error": error if status else "", "load_before": load_before,
            "load_after": os.getloadavg()}


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label)[:40] or "run"


def filesystem(path: Path) -> str:
    """Type and device of the mount holding ``path`` (from /proc/mounts)."""
    path = str(Path(path).resolve())
    mounts = [line.split()[:3] for line in Path("/proc/mounts").read_text().splitlines()]
    device, point, kind = max((m for m in mounts if path == m[1] or path.startswith(m[1].rstrip("/") + "/")),
                              key=lambda m: len(m[1]))
    return f"{kind} {device} on {point}"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(int(mem) / 2**20, 1), "python": sys.version.split()[0]}


def plot(path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = sorted((r["patients"], r["peak_rss_mb"]) for r in rows if r["label"] == label and r["status"] == 0)
        ax.plot(*zip(*mine), marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("patients (per arm; the scenario is in each label)")
    ax.set_ylabel("peak resident memory (MB)")
    ax.grid(alpha=0.3)
    ax.legend()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=120)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000, 400_000])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--pythonpath", help="src folder of another checkout to run instead of the installed ecsim")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--scenario", default=str(SCENARIO), help="a scenario file, or 'default'")
    ap.add_argument("--chunk", type=int)
    ap.add_argument("--keep", type=Path, help="keep each run's output folder in this folder")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "memory-scaling.jsonl")
    ap.add_argument("--plot", action="store_true", help="only draw the plot of --out")
    args = ap.parse_args()
    if not args.plot:
        for n in args.sizes:
            scenario = None if args.scenario == "default" else Path(args.scenario)
            row = {"label": args.label, "machine": machine()} | measure(n, args.python, args.pythonpath, scenario,
                                                                         args.chunk, args.keep, args.label)
            print(json.dumps(row), flush=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(plot(args.out))


if __name__ == "__main__":
    main()
