"""What runs in a worker process: one scenario, one server-made folder, progress sent back.

Each run has its own process (from a small pool), so concurrent runs share no state: not
matplotlib's, not the registry's, not NumPy's threads.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

_queue = None          # the server's progress queue, set in each worker by `init_worker`
PROGRESS_EVERY_S = 0.2
CLAIMS_PATIENTS = 200   # the claims checker's own default per tested dose


def init_worker(queue) -> None:
    """Pool initializer: keep the progress queue and import the simulator once per process."""
    global _queue
    _queue = queue
    import ecsim.runjob  # noqa: F401


def run_scenario(run_id: str, scenario: dict, out: str, report: bool = True) -> str | None:
    """Validate and run one scenario into ``out``; return None, or one line saying why it failed.
    With ``report``, the run also checks the article's claims (at most CLAIMS_PATIENTS, and no more
    than the run's own population, per tested dose) and writes report.html."""
    from ..errors import InputError
    from ..runjob import run_job
    from ..scenario import Scenario
    _send(run_id, "running", 0, 1)
    try:
        sc = Scenario.model_validate(scenario)
        extra = {"claims_patients": min(sc.population.n, CLAIMS_PATIENTS)} if report else {}
        run_job(sc, Path(out), quiet=True, progress=_reporter(run_id), report=report, **extra)
    except InputError as exc:
        return str(exc)
    except Exception as exc:   # reported as one line; the traceback goes to the server log only
        logging.getLogger("ecsim.server").exception("run %s failed", run_id)
        return f"the simulation failed ({type(exc).__name__}); see the server log"
    return None


def _reporter(run_id: str):
    """A progress(done, total) callback that sends at most one message every PROGRESS_EVERY_S."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            _send(run_id, "running", done, total)
    return report


def _send(run_id: str, status: str, done: int, total: int) -> None:
    if _queue is not None:
        _queue.put((run_id, status, done, total))
