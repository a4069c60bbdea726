"""Where the chunks of a run are simulated: in this process, or on Dask workers.

`chunk_executor` gives an executor whose ``map(tasks)`` yields ``(task, ChunkSummary)`` as chunks
finish: one after another here (no ``workers`` or ``scheduler``), on a local cluster of ``workers``
single-threaded processes (listening on 127.0.0.1 only), or on the existing cluster whose scheduler
is at ``scheduler`` (``tcp://host:8786``; its workers must run the same ecsim, NumPy, SciPy, SymPy
and Python versions, which is checked). The scenario and registry go to each worker once; a
worker builds the model once per process. Workers send back summaries, not trajectories, and a
bounded number of chunks is in flight. Dask is imported only here, only when a cluster is asked for.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Iterable, Iterator

from .errors import InputError
from .registry import Registry
from .scenario import Scenario
from .simulation import ChunkSummary, ChunkTask, summarize_task

MAX_WORKERS = 64
CONNECT_TIMEOUT_S = 10
IN_FLIGHT_PER_THREAD = 2


class ClusterError(RuntimeError):
    """A chunk failed on a Dask worker, or the cluster stopped answering (the message is one line)."""


def check_cluster_options(workers: int | None, scheduler: str | None) -> None:
    """``workers`` and ``scheduler`` exclude each other; at most `MAX_WORKERS` local workers."""
    if workers is not None and scheduler is not None:
        raise InputError("--scheduler", scheduler, "either --workers or --scheduler, not both")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise InputError("--workers", workers, f"1 to {MAX_WORKERS} local worker processes")
    if scheduler is not None and not scheduler.strip():
        raise InputError("--scheduler", scheduler, "a reachable dask scheduler address")


@contextmanager
def chunk_executor(scenario: Scenario, registry: Registry, *, workers: int | None = None,
                   scheduler: str | None = None) -> Iterator["LocalExecutor | DaskExecutor"]:
    """The executor for a run (``registry`` with the scenario's overrides already applied)."""
    check_cluster_options(workers, scheduler)
    job = Job(scenario, registry)
    if workers is None and scheduler is None:
        yield LocalExecutor(job)
        return
    with _client(workers, scheduler) as client:
        yield DaskExecutor(client, job)


@dataclass(frozen=True)
class Job:
    """What every worker needs for any task of a run."""

    scenario: Scenario
    registry: Registry


class LocalExecutor:
    """Chunks one after another in this process, in task order."""

    def __init__(self, job: Job):
        self.job = job

    def map(self, tasks: Iterable[ChunkTask]) -> Iterator[tuple[ChunkTask, ChunkSummary]]:
        for task in tasks:
            yield task, summarize_task(self.job.scenario, self.job.registry, task)


class DaskExecutor:
    """Chunks on Dask workers, a few per worker thread in flight, yielded as they finish."""

    def __init__(self, client, job: Job):
        self.client = client
        self.job = job
        try:
            self.in_flight = max(2, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"the Dask cluster stopped answering ({type(exc).__name__})") from None

    def map(self, tasks: Iterable[ChunkTask]) -> Iterator[tuple[ChunkTask, ChunkSummary]]:
        from distributed import as_completed
        try:
            job = self.client.scatter(self.job, broadcast=True, hash=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"could not send the run to the Dask workers ({type(exc).__name__})") from None
        tasks = iter(tasks)
        submitted = {}
        finished = as_completed()
        for task in islice(tasks, self.in_flight):
            self._submit(job, task, submitted, finished)
        for future in finished:
            task = submitted.pop(future)
            summary = self._result(future, task)
            future.release()
            for nxt in islice(tasks, 1):
                self._submit(job, nxt, submitted, finished)
            yield task, summary

    def _submit(self, job, task: ChunkTask, submitted: dict, finished) -> None:
        future = self.client.submit(run_task, job, task, pure=False)
        submitted[future] = task
        finished.add(future)

    def _result(self, future, task: ChunkTask) -> ChunkSummary:
        try:
            return future.result()
        except InputError:
            raise
        except Exception as exc:  # anything a worker raised or the cluster lost
            arm = self.job.scenario.arms[task.arm].name
            raise ClusterError(f"a Dask worker failed on arm {arm}, patients {task.start}-{task.stop}: "
                               f"{_one_line(exc)}") from None


@contextmanager
def ordered_mapper(*, workers: int | None = None, scheduler: str | None = None):
    """A ``map(fn, items) -> list`` in item order: here, on a local cluster of ``workers``
    processes, or on the cluster at ``scheduler``, kept open for the context's life. ``fn`` must be
    picklable (a module-level function or a partial of one); every item is independent, so the
    results are the same wherever they ran (parameter sets for uncertainty and sensitivity)."""
    check_cluster_options(workers, scheduler)
    if workers is None and scheduler is None:
        yield lambda fn, items: [fn(item) for item in items]
        return
    with _client(workers, scheduler) as client:
        def dask_map(fn, items):
            futures = client.map(fn, list(items), pure=False)
            try:
                return client.gather(futures)
            except InputError:
                raise
            except Exception as exc:   # anything a worker raised or the cluster lost
                raise ClusterError(f"a Dask worker failed: {_one_line(exc)}") from None
        yield dask_map


def run_task(job: Job, task: ChunkTask) -> ChunkSummary:
    """The function that runs on a worker (the model is cached per process by `full_model`)."""
    return summarize_task(job.scenario, job.registry, task)


def versions() -> dict[str, str]:
    """What must match between this process and every worker for the same bits."""
    import numpy
    import scipy
    import sympy
    from . import __version__
    return {"ecsim": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "sympy": sympy.__version__, "python": ".".join(map(str, sys.version_info[:2]))}


@contextmanager
def _client(workers: int | None, scheduler: str | None):
    from distributed import Client, LocalCluster
    if workers is not None:
        with _glibc_malloc_defaults(), \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                             silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except Exception:  # unreachable, refused, timed out or not an address
        raise InputError("--scheduler", scheduler, "a reachable dask scheduler address") from None
    with client:
        _check_workers(client, scheduler)
        yield client


def _glibc_malloc_defaults():
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, to give memory back to the
    system sooner. Setting it turns off glibc's adaptive mmap threshold, so every array over 128 KiB
    is a fresh mmap and is page-faulted in again on each use: a 512-patient chunk took 2.3 s of CPU
    in such a worker against 1.45 s in this process (measured 2026-11-26 on the 2-core dev machine).
    Local workers keep glibc's defaults; the other settings (one BLAS/OpenMP thread) stay."""
    import dask
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return dask.config.set({"distributed.nanny.pre-spawn-environ": environ})


def _check_workers(client, scheduler: str) -> None:
    """At least one worker, each with the same versions of ecsim and the numerical libraries."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        found = client.run(versions)
    except Exception as exc:
        raise InputError("--scheduler", scheduler, f"a dask scheduler with workers that run ecsim "
                         f"({_one_line(exc)})") from None
    here = versions()
    for worker, theirs in found.items():
        if theirs != here:
            raise InputError("--scheduler", scheduler, f"workers with {_describe(here)} "
                             f"(worker {worker} has {_describe(theirs)})")


def _describe(v: dict[str, str]) -> str:
    return ", ".join(f"{k} {v[k]}" for k in sorted(v))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text[:300]}"
