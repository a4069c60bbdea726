"""Runs of the web API: a process per run, a table of runs, their folders.

At most ``max_jobs`` runs are queued or running at once (more are refused, not queued). Each run
has a spawned process of its own, used for that run only, and its own folder
``<data_dir>/runs/<run id>``; ids are uuid4 hex made here, so no request ever names a path. A
thread per run watches its process: it passes progress on, kills the process when the run exceeds
``max_run_seconds``, and reports a process that crashed or was killed (out of memory) as that run's
failure only. One spare process is kept started (after the first run), so a run does not wait for
the model to be imported. Finished runs beyond ``max_kept`` are deleted, oldest first, with any
half-written folder they left; the runs folder is emptied when the server starts. ``shutdown``
stops every run process at once and deletes what unfinished runs left.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..json_io import finite_or_null
from . import DEFAULT_MAX_RUN_SECONDS, worker

ACTIVE = ("queued", "running")
START_ALLOWANCE_S = 60.0  # least time a run process gets to load the model and start its run
STOP_GRACE_S = 2.0       # after SIGTERM, a run process gets this long before SIGKILL
_NO_RESULT = object()
log = logging.getLogger("ecsim.server")


class Busy(Exception):
    """Every run slot is taken."""


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
    pid: int | None = field(default=None, repr=False)   # its run process, while it has one

    @property
    def progress(self) -> float:
        return 1.0 if self.status == "done" else min(1.0, self.done / max(self.total, 1))

    def files(self) -> list[str]:
        """Plain files in the finished run's folder (hidden and partial ones excluded)."""
        if self.status != "done" or not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))


@dataclass
class _Process:
    """A run process and the server's end of its pipe."""
    process: multiprocessing.process.BaseProcess
    conn: object


_DATA_LOCKS: dict[str, list] = {}   # resolved data folder -> [open lock file, servers in this process]


def _lock_data_dir(data_dir: Path) -> str:
    """Hold an exclusive lock on the data folder while a server of this process uses it (the kernel
    releases it when the process ends, however it ends); another process is refused. Returns the
    key to give `_unlock_data_dir`."""
    import fcntl
    from ..errors import InputError
    key = str(Path(data_dir).resolve())
    if key in _DATA_LOCKS:
        _DATA_LOCKS[key][1] += 1
        return key
    handle = open(Path(key) / ".ecsim-serve.lock", "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise InputError("--data-dir", str(data_dir), "a folder no other running ecsim serve uses") from None
    _DATA_LOCKS[key] = [handle, 1]
    return key


def _unlock_data_dir(key: str) -> None:
    entry = _DATA_LOCKS.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        entry[0].close()
        del _DATA_LOCKS[key]


class Jobs:
    """The run table and the run processes behind it."""

    def __init__(self, data_dir: Path, max_jobs: int = 2, max_kept: int = 100, report: bool = True,
                 max_run_seconds: float = DEFAULT_MAX_RUN_SECONDS):
        self.root = Path(data_dir) / "runs"
        self.report = report
        self.root.mkdir(parents=True, exist_ok=True)
        self._data_lock = _lock_data_dir(Path(data_dir))   # a second server would clear this one's runs
        _clear(self.root)   # runs of earlier sessions are not in the table, so they could never be evicted
        self.max_jobs = max_jobs
        self.max_kept = max_kept
        self.max_run_seconds = float(max_run_seconds)
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()
        self._ctx = multiprocessing.get_context("spawn")   # no fork of a threaded server
        self._spare: _Process | None = None
        self._running: dict[str, _Process] = {}
        self._watchers: list[threading.Thread] = []
        self._stopping = False

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def active(self) -> int:
        with self._lock:
            return sum(r.status in ACTIVE for r in self._runs.values())

    def submit(self, scenario: dict) -> Run:
        """Accept a run, or raise Busy when ``max_jobs`` runs are already queued or running."""
        with self._lock:
            if self._stopping or sum(r.status in ACTIVE for r in self._runs.values()) >= self.max_jobs:
                raise Busy()
            run_id = uuid.uuid4().hex
            run = Run(run_id, self.root / run_id)
            self._runs[run.id] = run
            self._evict()
            watcher = threading.Thread(target=self._watch, args=(run, scenario), daemon=True,
                                       name=f"ecsim-run-{run.id[:8]}")
            self._watchers = [t for t in self._watchers if t.is_alive()] + [watcher]
        watcher.start()
        return run

    def prestart(self) -> None:
        """Start the spare process now, so that even the first run finds the model loaded."""
        with self._lock:
            if not self._stopping and self._spare is None:
                self._spare = self._start_process()

    def summary(self, run: Run) -> dict | None:
        """The finished run's summary.json (NaN as null), read once."""
        if run.status == "done" and run.summary is None and (run.folder / "summary.json").is_file():
            run.summary = finite_or_null(json.loads((run.folder / "summary.json").read_text()))
        return run.summary

    def shutdown(self) -> None:
        """Stop now: end every run process (SIGTERM, then SIGKILL after STOP_GRACE_S), mark the
        unfinished runs failed and delete what they left (hidden partial folders included)."""
        with self._lock:
            self._stopping = True
            spare, self._spare = self._spare, None
            procs = list(self._running.values()) + ([spare] if spare else [])
            watchers = list(self._watchers)
        for p in procs:
            if p.process.is_alive():
                p.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in procs:
            p.process.join(max(0.0, deadline - time.monotonic()))
            if p.process.is_alive():
                p.process.kill()
                p.process.join(1.0)
        if spare is not None:
            spare.conn.close()   # the others' pipes are their watchers' to close
        for t in watchers:
            t.join(timeout=5)
        with self._lock:
            unfinished = [r for r in self._runs.values() if r.status != "done"]
            for run in unfinished:
                if run.status in ACTIVE:
                    run.status, run.error = "failed", "the server stopped before the run finished"
        for run in unfinished:
            _remove_run_files(self.root, run.id)
        _unlock_data_dir(self._data_lock)
        self._data_lock = ""

    # --- run processes ---------------------------------------------------------------------

    def _start_process(self) -> _Process:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=worker.main, args=(child, os.getpid()), daemon=True,
                                    name="ecsim-run")
        process.start()
        child.close()   # only the run process holds this end: its death closes the pipe
        return _Process(process, parent)

    def _take_process(self, run: Run) -> _Process | None:
        """The spare process (or a fresh one if the spare died) for ``run``; a new spare is started.
        None when the server is stopping."""
        with self._lock:
            if self._stopping:
                return None
            proc, self._spare = self._spare, None
            if proc is None or not proc.process.is_alive():
                if proc is not None:
                    proc.conn.close()
                proc = self._start_process()
            self._running[run.id] = proc
            run.pid = proc.process.pid
            self._spare = self._start_process()
        return proc

    def _watch(self, run: Run, scenario: dict) -> None:
        """The thread of one run: whatever happens, the run ends done or failed."""
        try:
            self._supervise(run, scenario)
        except Exception:
            log.exception("run %s: the server could not run it", run.id)
            with self._lock:
                proc = self._running.pop(run.id, None)
                run.pid = None
            if proc is not None:
                proc.process.kill()
                proc.process.join(1.0)
            _remove_run_files(self.root, run.id)
            self._finish(run, "the server could not start the run's process; see the server log")

    def _supervise(self, run: Run, scenario: dict) -> None:
        """Give ``run`` to a process and follow it to the end: progress, result, time limit, crash."""
        proc = self._take_process(run)
        if proc is None:
            return self._finish(run, "the server stopped before the run started")
        try:
            proc.conn.send((run.id, scenario, str(run.folder), self.report))
        except OSError:
            pass   # the process died meanwhile: reported below as a process that stopped
        result, timed_out = self._follow(run, proc)
        if timed_out:
            proc.process.kill()
        proc.process.join(5.0)
        if proc.process.is_alive():        # sent its result but did not end: it gets no more time
            proc.process.kill()
            proc.process.join(1.0)
        proc.conn.close()
        with self._lock:
            self._running.pop(run.id, None)
            run.pid = None
            stopping = self._stopping
        if stopping and result is _NO_RESULT:
            error = "the server stopped before the run finished"
        elif timed_out:
            error = f"the run exceeded the {self.max_run_seconds:g} s limit and was stopped"
        elif result is _NO_RESULT:
            error = _stopped(proc.process.exitcode)
        else:
            error = result
        if error is not None:
            _remove_run_files(self.root, run.id)   # nothing of a failed run is kept or served
        self._finish(run, error)

    def _follow(self, run: Run, proc: _Process) -> tuple[object, bool]:
        """Read the run's messages until its result, the end of its pipe, or its deadline:
        ``max_run_seconds`` from the moment the process starts the run (its first message); a
        process still loading the model gets as long again (at least START_ALLOWANCE_S) to start it.
        Returns (the result or _NO_RESULT, whether the deadline passed)."""
        deadline, started = time.monotonic() + max(self.max_run_seconds, START_ALLOWANCE_S), False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return _NO_RESULT, True
            try:
                if not proc.conn.poll(min(left, 1.0)):
                    continue
                message = proc.conn.recv()
            except (EOFError, OSError):        # the process ended (or was stopped) without a result
                return _NO_RESULT, False
            if message[0] == "result":
                return message[1], False
            _, done, total = message
            if not started:
                deadline, started = time.monotonic() + self.max_run_seconds, True
            with self._lock:
                if run.status in ACTIVE:
                    run.status, run.done, run.total = "running", done, total

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
            _remove_run_files(self.root, run.id)


def _stopped(exitcode: int | None) -> str:
    """Why a run process ended without a result, in one line."""
    if exitcode is not None and exitcode < 0:
        name = _signal_name(-exitcode)
        if -exitcode == signal.SIGKILL:
            return f"the run's process was killed ({name}; out of memory?); try fewer patients"
        return f"the run's process crashed ({name})"
    return f"the run's process ended without a result (exit status {exitcode})"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _remove_run_files(root: Path, run_id: str) -> None:
    """Delete a run's folder and any half-written one (``.<id>.partial-<pid>``) it left."""
    shutil.rmtree(root / run_id, ignore_errors=True)
    for partial in root.glob(f".{run_id}.*"):
        shutil.rmtree(partial, ignore_errors=True)


def _clear(root: Path) -> None:
    """Delete every run folder (finished or half-written) under ``root``."""
    for entry in root.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
