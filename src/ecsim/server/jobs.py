"""Runs of the web API: a bounded pool of worker processes, a table of runs, their folders.

At most ``max_jobs`` runs are queued or running at once (more are refused, not queued), each in
its own worker process and its own folder ``<data_dir>/runs/<run id>``; ids are uuid4 hex made
here, so no request ever names a path. Finished runs beyond ``max_kept`` are deleted, oldest first,
with any half-written folder they left; the runs folder is emptied when the server starts.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import shutil
import threading
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .worker import init_worker, run_scenario

ACTIVE = ("queued", "running")


class Busy(Exception):
    """Every worker slot is taken."""


@dataclass
class Run:
    id: str
    folder: Path
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    status: str = "queued"
    done: int = 0
    total: int = 1
    error: str | None = None
    summary: dict | None = None

    @property
    def progress(self) -> float:
        return 1.0 if self.status == "done" else min(1.0, self.done / max(self.total, 1))

    def files(self) -> list[str]:
        """Plain files in the finished run's folder (hidden and partial ones excluded)."""
        if self.status != "done" or not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))


class Jobs:
    """The run table and the worker pool behind it (started on the first run)."""

    def __init__(self, data_dir: Path, max_jobs: int = 2, max_kept: int = 100, report: bool = True):
        self.root = Path(data_dir) / "runs"
        self.report = report
        self.root.mkdir(parents=True, exist_ok=True)
        _clear(self.root)   # runs of earlier sessions are not in the table, so they could never be evicted
        self.max_jobs = max_jobs
        self.max_kept = max_kept
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()
        self._ctx = multiprocessing.get_context("spawn")   # no fork of a threaded server
        self._pool: ProcessPoolExecutor | None = None
        self._queue = None
        self._listener: threading.Thread | None = None

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def active(self) -> int:
        with self._lock:
            return sum(r.status in ACTIVE for r in self._runs.values())

    def submit(self, scenario: dict) -> Run:
        """Accept a run, or raise Busy when ``max_jobs`` runs are already queued or running."""
        with self._lock:
            if sum(r.status in ACTIVE for r in self._runs.values()) >= self.max_jobs:
                raise Busy()
            run_id = uuid.uuid4().hex
            run = Run(run_id, self.root / run_id)
            self._runs[run.id] = run
            self._evict()
            pool = self._ensure_pool()
        try:
            future = pool.submit(run_scenario, run.id, scenario, str(run.folder), self.report)
        except (BrokenProcessPool, RuntimeError):
            self._pool = None
            self._finish(run, "the worker pool is not available; try again")
            return run
        future.add_done_callback(lambda f: self._finished(run, f))
        return run

    def summary(self, run: Run) -> dict | None:
        """The finished run's summary.json (NaN as null), read once."""
        if run.status == "done" and run.summary is None and (run.folder / "summary.json").is_file():
            run.summary = _nan_to_none(json.loads((run.folder / "summary.json").read_text()))
        return run.summary

    def shutdown(self) -> None:
        """Cancel queued runs, wait for running ones, stop the pool and the progress listener."""
        with self._lock:
            pool, queue, listener = self._pool, self._queue, self._listener
            self._pool = self._queue = self._listener = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if queue is not None:
            queue.put(None)
            listener.join(timeout=5)
            queue.close()

    def _ensure_pool(self) -> ProcessPoolExecutor:
        """The worker pool and its progress listener; made again if a worker died."""
        if self._queue is None:
            self._queue = self._ctx.Queue()
            self._listener = threading.Thread(target=self._listen, args=(self._queue,), daemon=True,
                                              name="ecsim-progress")
            self._listener.start()
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.max_jobs, mp_context=self._ctx, initializer=init_worker,
                                             initargs=(self._queue,))
        return self._pool

    def _listen(self, queue) -> None:
        while (message := queue.get()) is not None:
            run_id, status, done, total = message
            with self._lock:
                run = self._runs.get(run_id)
                if run is not None and run.status in ACTIVE:
                    run.status, run.done, run.total = status, done, total

    def _finished(self, run: Run, future: Future) -> None:
        if future.cancelled():
            return self._finish(run, "the server stopped before the run started")
        exc = future.exception()
        if isinstance(exc, BrokenProcessPool):
            with self._lock:
                self._pool = None
            return self._finish(run, "the worker process stopped (out of memory?); try fewer patients")
        if exc is not None:
            return self._finish(run, f"the run failed ({type(exc).__name__})")
        self._finish(run, future.result())

    def _finish(self, run: Run, error: str | None) -> None:
        """Mark a run done, or failed with a one-line reason."""
        with self._lock:
            run.error = error
            run.status = "failed" if error else "done"

    def _evict(self) -> None:
        """Delete the oldest finished runs beyond ``max_kept`` (called with the lock held)."""
        finished = [r for r in self._runs.values() if r.status not in ACTIVE]
        for run in finished[:max(0, len(self._runs) - self.max_kept)]:
            del self._runs[run.id]
            shutil.rmtree(run.folder, ignore_errors=True)
            for partial in self.root.glob(f".{run.id}.*"):      # left by a run that failed while writing
                shutil.rmtree(partial, ignore_errors=True)


def _clear(root: Path) -> None:
    """Delete every run folder (finished or half-written) under ``root``."""
    for entry in root.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _nan_to_none(x):
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x
