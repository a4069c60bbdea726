"""What runs in a run process: one scenario, one server-made folder, progress sent back.

Every run has a process of its own (spawned, not forked), used for that run only and then ended,
so concurrent runs share no state (not matplotlib's, not the registry's, not NumPy's threads) and
a run whose process crashes, is killed by the out-of-memory killer or runs past the time limit
takes no other run with it. The process talks to the server over its own pipe: it receives one
job, sends ``("progress", done, total)`` messages and finally ``("result", error or None)``.

A process is started before its job arrives (the server keeps one spare, see ``jobs.Jobs``), so
the model is already imported and compiled when a run begins.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

PROGRESS_EVERY_S = 0.2
CLAIMS_PATIENTS = 200   # the claims checker's own default per tested dose
PARENT_CHECK_S = 1.0
# Test-only fault injection: read here, in the run process, and nowhere else; no request can set it.
# "KIND:SEED[,KIND:SEED...]": a run whose population seed is SEED suffers KIND once its simulation
# has started (at its first progress report): exit (os._exit(3)), segv (a real segmentation fault),
# kill (SIGKILL, as the out-of-memory killer sends), hang (sleeps forever), raise (a Python error).
FAULT_ENV = "ECSIM_TEST_WORKER_FAULT"


def main(conn, parent_pid: int) -> None:
    """A run process: import the model, wait for one job on ``conn``, run it, send the result, end.

    Ctrl-C in a terminal reaches the whole process group; the server stops its run processes itself,
    so they ignore SIGINT. If the server dies without stopping them, they end too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(parent_pid)
    _warm()
    try:
        run_id, scenario, out, report = conn.recv()
    except (EOFError, OSError):
        return   # the server closed the pipe: a spare that was never used
    error = run_scenario(run_id, scenario, out, report, send=conn.send)
    try:
        conn.send(("result", error))
    except OSError:
        pass
    conn.close()


def _warm() -> None:
    """Import the model and build what every run needs (cached per process) before a job arrives."""
    try:
        import ecsim.runjob  # noqa: F401
        from ..chain import full_model
        from ..model.compile import compile_model
        from ..registry import default_registry
        import matplotlib
        matplotlib.use("Agg")              # as the report's figures do; run processes have no display
        import matplotlib.pyplot  # noqa: F401
        default_registry()
        compile_model(full_model())
    except Exception:   # the run itself will meet the problem and report it
        logging.getLogger("ecsim.server").exception("warming a run process failed")


def run_scenario(run_id: str, scenario: dict, out: str, report: bool = True, send=None) -> str | None:
    """Validate and run one scenario into ``out``; return None, or one line saying why it failed.
    With ``report``, the run also checks the article's claims (at most CLAIMS_PATIENTS, and no more
    than the run's own population, per tested dose) and writes report.html. ``send`` gets the
    progress messages."""
    from ..errors import InputError
    from ..faults import NumericalFault
    from ..runjob import run_job
    from ..scenario import Scenario
    send = send or (lambda message: None)
    send(("progress", 0, 1))
    try:
        sc = Scenario.model_validate(scenario)
        extra = {"claims_patients": min(sc.population.n, CLAIMS_PATIENTS)} if report else {}
        progress = _reporter(send, _fault(sc.population.seed))
        run_job(sc, Path(out), quiet=True, progress=progress, report=report, **extra)
    except (InputError, NumericalFault) as exc:
        return str(exc)
    except Exception as exc:   # reported as one line; the traceback goes to the server log only
        logging.getLogger("ecsim.server").exception("run %s failed", run_id)
        return f"the simulation failed ({type(exc).__name__}); see the server log"
    return None


def _reporter(send, fault=None):
    """A progress(done, total) callback that sends at most one message every PROGRESS_EVERY_S."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if fault is not None and done > 0:
            fault()
        now = time.monotonic()
        if done >= total or now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            send(("progress", done, total))
    return progress


def _fault(seed: int):
    """The fault FAULT_ENV asks for this run (by its population seed), or None: tests only."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    kinds = {int(s): k for k, _, s in (item.partition(":") for item in spec.split(",")) if s.strip().isdigit()}
    kind = kinds.get(seed)
    if kind is None:
        return None

    def fault():
        if kind == "exit":
            os._exit(3)
        elif kind == "segv":
            import ctypes
            ctypes.string_at(0)
        elif kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "hang":
            while True:
                time.sleep(60)
        elif kind == "raise":
            raise RuntimeError("injected fault")
    return fault


def _exit_with_parent(parent_pid: int) -> None:
    """End this process if the server that started it is gone (killed before it could stop us)."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="ecsim-parent-watch").start()
