"""Run the Numba prototype (numba_engine.py) against ecsim's NumPy engine on the benchmark's workload.

    pip install numba==0.68.1
    .venv/bin/python benchmarks/prototypes/compare.py [patients]

Prints each engine's seconds for the regimen with every drug, without clobazam and with CBD alone
(second calls: the first compiles), and the largest difference of any state relative to its peak.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numba_engine  # noqa: E402

from ecsim.bench import Workload  # noqa: E402
from ecsim.engine import integrate  # noqa: E402


def main(n: int) -> None:
    work = Workload.build(n)
    values, doses = work.patients(0, n)
    for label, keep in [("every drug", lambda d: True), ("no clobazam", lambda d: not d.state.startswith("clb")),
                        ("CBD alone", lambda d: d.state.startswith("cbd"))]:
        ds = [d for d in doses if keep(d)]
        timings = {}
        for name, engine in (("numba", numba_engine.integrate), ("numpy", integrate)):
            states = engine(work.model, values, ds, work.grid, n)
            started = time.perf_counter()
            states = engine(work.model, values, ds, work.grid, n)
            timings[name] = (time.perf_counter() - started, states)
        a, b = timings["numpy"][1], timings["numba"][1]
        worst = max(np.max(np.abs(a[s] - b[s])) / max(np.abs(a[s]).max(), 1e-300) for s in a)
        print(f"{label:>12}: numba {timings['numba'][0]:.3f} s, numpy {timings['numpy'][0]:.3f} s, "
              f"largest difference {worst:.1e} of a state's peak")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 512)
