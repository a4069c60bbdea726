"""Crash-safe runs: each finished chunk of patients is saved in the run's checkpoint, so that
``ecsim run --resume OUT`` continues a run that was killed and gives the same files as a run that
never stopped (chunk sums are order-independent, see `ecsim.simulation.TreeSum`).

The checkpoint is a hidden sibling of the output folder, ``.OUT.partial/``:

- ``run.json``: what the run is (scenario, options, ecsim version, digests of the code and the
  parameters); a resume refuses a checkpoint made by other code or parameters;
- ``lock``: held (``flock``) while a process writes here, so two runs cannot share a folder; the
  kernel releases it when the process dies, however it dies;
- ``chunks/A-START-STOP.pkl``: one `ChunkSummary` per finished chunk, written under a temporary
  name, flushed to disk, then renamed: a chunk file is complete or absent;
- ``output/``: the result files while they are written; renamed to ``OUT`` when all are there;
- ``arrays/``: per-patient results of this process's run, spilled to disk as chunks finish, one
  file per chunk, joined into one .npy per column when an arm is finished
  (`ecsim.simulation.ArmResult.store`); rebuilt from the chunk files on resume. With the chunk
  files, the per-patient results are on disk twice while a run is unfinished (about 2 KB per
  patient and arm on the default scenario), and a third time in the result files until the
  checkpoint goes.

Chunk files are pickles: resume only checkpoints that this machine's runs wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

from . import __version__
from .errors import InputError

FORMAT = 1


def checkpoint_folder(out: Path) -> Path:
    return Path(out).parent / f".{Path(out).name}.partial"


def code_digest(root: Path | None = None) -> str:
    """SHA-256 (16 hex digits) of the installed package's source and data files (or those under
    ``root``): resuming under edited code would mix two models in one result."""
    root = root or Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in {".py", ".yaml", ".json"} and p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def numerics() -> dict[str, str]:
    """The versions that decide a chunk's last bits besides ecsim's own code."""
    import platform

    import numpy
    import scipy
    return {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
            "machine": platform.machine()}


def identity(scenario_json: dict, parameter_digest: str, chunk: int, options: dict) -> dict:
    """Everything that decides a chunk's numbers, plus the options needed to finish the run."""
    return {"format": FORMAT, "ecsim_version": __version__, "code_sha256_16": code_digest(),
            "parameter_set_sha256_16": parameter_digest, "numerics": numerics(), "chunk_patients": chunk,
            "scenario": scenario_json, "options": options}


def stored_run(out: Path) -> dict:
    """The run.json of the interrupted run writing to ``out`` (for ``--resume``)."""
    path = checkpoint_folder(out) / "run.json"
    if not path.is_file():
        raise InputError("--resume", str(out), "the output folder of an interrupted run "
                         f"(no checkpoint at {checkpoint_folder(out)})")
    try:
        doc = json.loads(path.read_text())
        doc["scenario"], doc["options"], doc["chunk_patients"]
    except (ValueError, KeyError, TypeError):
        raise InputError("--resume", str(out), "a checkpoint written by ecsim (run.json is unreadable)") from None
    return doc


class Checkpoint:
    """The checkpoint of one run; use as a context manager (holds the lock)."""

    def __init__(self, out: Path, ident: dict, *, resume: bool):
        self.out = Path(out)
        self.folder = checkpoint_folder(self.out)
        self.ident = ident
        self.resume = resume
        self.resumed = 0
        self.discarded = 0   # chunks of an interrupted run that a fresh run (no --resume) threw away
        self._lock = None

    def __enter__(self) -> "Checkpoint":
        if self.resume:
            self._check_resumable()
        self.folder.mkdir(exist_ok=True)
        self._take_lock()
        if not self.resume:
            self._clear()
            _atomic_write(self.folder / "run.json", json.dumps(self.ident, indent=1).encode())
        (self.folder / "chunks").mkdir(exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        shutil.rmtree(self.arrays, ignore_errors=True)
        return self

    def __exit__(self, *exc) -> bool:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        return False

    @property
    def staging(self) -> Path:
        """Where the result files are written before the rename to ``out``."""
        return self.folder / "output"

    @property
    def arrays(self) -> Path:
        """Where the run keeps its per-patient arrays while it writes (not part of the result)."""
        return self.folder / "arrays"

    def finished(self, tasks) -> list:
        """Those of ``tasks`` whose saved summaries can be read (`load` them one at a time, so a
        resumed run holds one chunk in memory, not all); a chunk file that cannot be read is
        deleted, and its chunk simulated again."""
        done = []
        for task in tasks:
            path = self._path(task)
            if path.is_file():
                try:
                    summary = pickle.loads(path.read_bytes())
                    if (summary.start, summary.n) == (task.start, task.stop - task.start):
                        done.append(task)
                        continue
                except Exception:   # damaged by something outside ecsim: recompute rather than trust
                    pass
                path.unlink()
        self.resumed = len(done)
        return done

    def load(self, task):
        """The saved `ChunkSummary` of a task that `finished` returned."""
        return pickle.loads(self._path(task).read_bytes())

    def save(self, task, summary) -> None:
        _atomic_write(self._path(task), pickle.dumps(summary, protocol=pickle.HIGHEST_PROTOCOL))

    def remove(self) -> None:
        """The run is complete: the checkpoint goes (the lock file with it)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _path(self, task) -> Path:
        return self.folder / "chunks" / f"{task.arm}-{task.start}-{task.stop}.pkl"

    def _check_resumable(self) -> None:
        stored = stored_run(self.out)
        for key in ("format", "ecsim_version", "code_sha256_16", "parameter_set_sha256_16", "numerics"):
            if stored.get(key) != self.ident[key]:
                raise InputError("--resume", str(self.out), f"a run interrupted under the same ecsim code and "
                                 f"parameters ({key} was {stored.get(key)}, is {self.ident[key]}); "
                                 "run it again without --resume")

    def _take_lock(self) -> None:
        import fcntl
        fd = os.open(self.folder / "lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InputError("--out", str(self.out), "a folder no other running ecsim run is writing to") from None
        self._lock = fd

    def _clear(self) -> None:
        """A fresh run: whatever an earlier, interrupted run left here goes (`discarded` counts its chunks)."""
        chunks = self.folder / "chunks"
        self.discarded = len(list(chunks.glob("*.pkl"))) if chunks.is_dir() else 0   # not a killed write's .tmp
        for name in ("chunks", "output", "arrays", "run.json"):
            path = self.folder / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
