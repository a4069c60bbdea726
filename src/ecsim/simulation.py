"""`Simulation`: joins scenario, registry, model, population and engine; nothing else.

`simulate_chunk` runs one arm for patients [start, stop) and returns full trajectories;
`summarize_chunk` reduces them, where the chunk ran, to what the outputs need (per-patient exposure
metrics and visits, a sample of trajectories, sums over patients); `Simulation.run` walks arms ×
chunks, here or on Dask workers (`ecsim.distributed`), and adds the summaries into `ArmResult`s,
so memory stays bounded. Sums over patients follow a fixed binary tree over patient numbers: they
have the same bits whatever the chunking, the order in which chunks finish, or the workers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .circuit.clinical import PLASTICITY_SIGNAL, RELEASE, ClinicalModel, ClinicalTrajectory, assess
from .engine import Bolus, Grid, integrate, outputs
from .treatments.adverse import daily_cbd_mg
from .treatments.course import Course
from .exposure import MEANS, REPORTED, exposure_metrics
from .faults import AllPatientsFaulted, patient_faults
from .model.declaration import Model
from .chain import full_model
from .population import Demographics, patient_values, phenotype_labels
from .registry import Registry, default_registry
from .regimen import arm_boluses, arm_covariates, max_single_thc_mg, max_single_thc_oral_equivalent_mg
from .scenario import Arm, Scenario

CHUNK = 512     # a power of two: each chunk's sums over patients are one block (see `block_sums`)
SAMPLE = 200


@dataclass(frozen=True)
class Chunk:
    """Trajectories (patients × time) of every output for one arm and a slice of patients."""

    times_h: np.ndarray
    outputs: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    states: dict[str, np.ndarray]
    clinical: ClinicalTrajectory | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)    # per patient: phenotype of a mix, ...


class ChunkTask(NamedTuple):
    """One unit of work: arm number ``arm`` of the scenario, patients [start, stop)."""

    arm: int
    start: int
    stop: int


Blocks = list[tuple[int, int, np.ndarray]]   # (level, index, sum over patients [index 2^level, (index+1) 2^level))


@dataclass(frozen=True)
class ChunkSummary:
    """What an `ArmResult` keeps of one chunk: small enough to send back from a Dask worker or to
    checkpoint. Faulted patients (`ecsim.faults`) are left out of every array and sum."""

    start: int
    n: int                                        # patients simulated, faulted ones included
    sums: dict[str, Blocks]                       # per output of `MEANS`: block sums of trajectories over sound patients
    sample: dict[str, np.ndarray]                 # reported trajectories of sound patients numbered below SAMPLE
    exposure: dict[str, np.ndarray]               # per sound patient
    visit_days: np.ndarray | None = None
    clinical: dict[str, np.ndarray] = field(default_factory=dict)   # per sound patient x visit (float32)
    severity: Blocks = field(default_factory=list)                  # block sums of region severity
    unconverged: int = 0
    faults: dict[int, str] = field(default_factory=dict)            # patient number -> `faults.REASONS` key
    enrolled: np.ndarray | None = None        # numbers of the patients who passed screening (None: all)
    labels: dict[str, np.ndarray] = field(default_factory=dict)     # per sound patient

    @property
    def sound(self) -> np.ndarray:
        """Numbers of the enrolled patients that are not faults, in order."""
        ids = np.arange(self.start, self.start + self.n) if self.enrolled is None else self.enrolled
        return ids[~np.isin(ids, list(self.faults))] if self.faults else ids

    @property
    def n_enrolled(self) -> int:
        """Patients in the trial, faulted ones included (screen failures are not)."""
        return self.n if self.enrolled is None else len(self.enrolled)


def summarize_chunk(chunk: Chunk, start: int, enrolled: np.ndarray | None = None) -> ChunkSummary:
    """Reduce a chunk of patients [start, start + n) to its `ChunkSummary`. ``enrolled``: which of
    them passed screening (a boolean per patient; None: all); the others are left out like faults,
    but not counted as faults."""
    fault = patient_faults(chunk.values, chunk.outputs, chunk.clinical)
    inside = np.ones(len(fault), dtype=bool) if enrolled is None else np.asarray(enrolled, dtype=bool)
    sound = (fault == "") & inside
    n = len(sound)
    keep = max(0, min(n, SAMPLE - start))
    exposure = exposure_metrics(chunk.times_h, chunk.outputs, chunk.values)
    summary = ChunkSummary(start, n, {name: block_sums(_zeroed(chunk.outputs[name], sound), start)
                                      for name in MEANS if name in chunk.outputs},
                           {name: chunk.outputs[name][:keep][sound[:keep]] for name in REPORTED} if keep else {},
                           {k: np.broadcast_to(np.asarray(v, dtype=float), (n,))[sound] for k, v in exposure.items()},
                           faults={start + int(i): str(fault[i]) for i in np.flatnonzero((fault != "") & inside)},
                           enrolled=None if enrolled is None else start + np.flatnonzero(inside),
                           labels={k: v[sound] for k, v in chunk.labels.items()})
    c = chunk.clinical
    if c is None:
        return summary
    return replace(summary, visit_days=c.visit_days, unconverged=int((~c.converged[inside]).sum()),
                   clinical={name: v[sound].astype(np.float32) for name, v in (c.totals | c.symptoms).items()},
                   severity=block_sums(_zeroed(c.regions["severity"], sound), start))


def _zeroed(x: np.ndarray, sound: np.ndarray) -> np.ndarray:
    """``x`` with the rows of faulted patients set to zero, so that sums leave them out."""
    if sound.all():
        return x
    return np.where(sound.reshape((-1,) + (1,) * (x.ndim - 1)), x, 0.0)


def block_sums(x: np.ndarray, start: int) -> Blocks:
    """Sums over axis 0 (patients start, start + 1, ...) of the largest aligned blocks of 2^level
    patients that tile the chunk, each summed as a fixed binary tree (pairs, pairs of pairs, ...):
    a block's bits do not depend on the chunk it was computed in."""
    blocks, a, stop = [], start, start + len(x)
    while a < stop:
        level = min(((a & -a) or 1 << 62).bit_length(), (stop - a).bit_length()) - 1
        part = x[a - start: a - start + (1 << level)]
        while len(part) > 1:
            part = part[0::2] + part[1::2]
        blocks.append((level, a >> level, part[0].copy()))
        a += 1 << level
    return blocks


class TreeSum:
    """Sum over patients from `block_sums` of any chunking: sibling blocks merge (left + right) as
    they arrive, then the blocks left, which depend only on the number of patients, add in order."""

    def __init__(self):
        self.blocks: dict[tuple[int, int], np.ndarray] = {}

    def add(self, blocks: Blocks) -> None:
        for level, index, value in blocks:
            while (level, index ^ 1) in self.blocks:
                other = self.blocks.pop((level, index ^ 1))
                value = other + value if index & 1 else value + other
                level, index = level + 1, index >> 1
            self.blocks[(level, index)] = value

    def total(self) -> np.ndarray | None:
        parts = [self.blocks[k] for k in sorted(self.blocks, key=lambda k: k[1] << k[0])]
        total = parts[0] if parts else None
        for part in parts[1:]:
            total = total + part
        return total


@dataclass
class ArmResult:
    """What a run keeps of one arm: `add_summary` each chunk (in any order), then `finish`."""

    name: str
    times_h: np.ndarray
    exposure: dict[str, np.ndarray] = field(default_factory=dict)   # per patient
    sample: dict[str, list[np.ndarray]] = field(default_factory=dict)  # trajectories, first patients
    mean: dict[str, np.ndarray] = field(default_factory=dict)       # over sound patients
    n: int = 0                                                      # sound patients (statistics use these)
    n_simulated: int = 0                                            # sound and faulted
    patients: np.ndarray | None = None                              # numbers of the sound patients
    faults: dict[int, str] = field(default_factory=dict)            # patient number -> `faults.REASONS` key
    visit_days: np.ndarray | None = None
    clinical: dict[str, np.ndarray] = field(default_factory=dict)   # per patient x visit (float32)
    region_severity_sum: np.ndarray | None = None                   # visits x regions, summed over patients
    unconverged: int = 0                                            # patient-visits whose circuit did not settle
    sequence: object | None = None                                  # crossover: its `designs.Sequence`
    labels: dict[str, np.ndarray] = field(default_factory=dict)     # per patient: phenotype of a mix, ...
    screening: object | None = None                                 # `designs.Enrolment` of a screened trial
    screened: int = 0                                               # patients simulated, screen failures included
    titration: object | None = None                                 # the arm's flexible `scenario.Titration`
    store: Path | None = None     # if set, per-patient arrays go to disk here and come back memory-mapped
    _sums: dict[str, TreeSum] = field(default_factory=dict, init=False, repr=False)
    _severity: TreeSum = field(default_factory=TreeSum, init=False, repr=False)
    _parts: list[ChunkSummary] = field(default_factory=list, init=False, repr=False)

    def add_summary(self, s: ChunkSummary) -> None:
        for name, blocks in s.sums.items():
            self._sums.setdefault(name, TreeSum()).add(blocks)
        self._severity.add(s.severity)
        if self.store is not None:
            s = _spill(s, self.store)
        self._parts.append(replace(s, sums={}, severity=[]))
        self.n += s.n_enrolled - len(s.faults)
        self.n_simulated += s.n_enrolled
        self.screened += s.n
        self.faults |= s.faults
        self.unconverged += s.unconverged
        self.visit_days = s.visit_days if s.visit_days is not None else self.visit_days

    def finish(self) -> None:
        """Per-patient arrays in patient order; means and region severity sums from the trees."""
        parts = sorted(self._parts, key=lambda s: s.start)
        if self.n == 0:
            raise AllPatientsFaulted(f"every patient of arm {self.name!r} is a numerical fault "
                                     f"({', '.join(sorted(set(self.faults.values())))}); see ecsim.faults.REASONS")
        self.patients = np.concatenate([s.sound for s in parts])
        self.faults = dict(sorted(self.faults.items()))
        if self.store is None:
            for group in PER_PATIENT:
                setattr(self, group, _joined(getattr(self, group), [getattr(s, group) for s in parts]))
        else:
            for group, columns in _joined_on_disk(parts, self.store).items():
                setattr(self, group, columns)
        for s in parts:
            for name, traj in s.sample.items():
                self.sample.setdefault(name, []).append(traj)
        self.mean = {name: tree.total() / self.n for name, tree in self._sums.items()}
        self.region_severity_sum = self._severity.total()
        self._parts = []


def _joined(done: dict[str, np.ndarray], parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``done`` followed by the parts, per name (patients on axis 0)."""
    names = dict.fromkeys([*done, *(name for part in parts for name in part)])
    return {name: np.concatenate(([done[name]] if name in done else []) + [p[name] for p in parts if name in p])
            for name in names}


PER_PATIENT = ("exposure", "clinical", "labels")   # the `ChunkSummary` fields that grow with patients


class Spilled(NamedTuple):
    """Where `_spill` put one per-patient array: ``offset`` bytes into the chunk's file, C order."""

    path: Path
    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]


def _spill(s: ChunkSummary, store: Path) -> ChunkSummary:
    """Write a chunk's per-patient arrays, one after another, to one file ``store``/START.bin and
    return the summary with a `Spilled` in place of each array, so that the process holds one chunk
    at a time (`_joined_on_disk` reads them back in order when the arm is finished). One file per
    chunk, not one per array: creating and reopening some 74 small .npy files per chunk took 2.5 of
    24.9 s on the one-arm memory benchmark at 25,000 patients (benchmarks/README.md, "Memory")."""
    store.mkdir(parents=True, exist_ok=True)
    path = store / f"{s.start}.bin"
    kept, offset = {}, 0
    with open(path, "wb") as f:
        for group in PER_PATIENT:
            kept[group] = {}
            for name, values in getattr(s, group).items():
                values = np.ascontiguousarray(values)
                if values.dtype.hasobject:
                    raise TypeError(f"per-patient array {group}.{name} holds Python objects; it cannot be spilled")
                f.write(values)   # its bytes (a cast to bytes refuses a chunk with no sound patients)
                kept[group][name] = Spilled(path, offset, values.dtype, values.shape)
                offset += values.nbytes
    return replace(s, **kept)


class OnDisk(Mapping):
    """Per-patient arrays kept as .npy files, each opened read-only as a memory map when it is read.
    A map (and the pages it brought in) goes with the last reference to its array, so reading the
    columns one after another does not keep them all in memory. The files must outlive the reads:
    a run's store is deleted only after its outputs are written."""

    def __init__(self, paths: dict[str, Path]):
        self.paths = paths

    def __getitem__(self, name: str) -> np.ndarray:
        return np.load(self.paths[name], mmap_mode="r")

    def __iter__(self):
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __or__(self, other: Mapping) -> dict:
        return dict(self) | dict(other)


MAX_OPEN = 256   # joined files written at once; more columns than this are joined in several passes


def _joined_on_disk(parts: list[ChunkSummary], store: Path) -> dict[str, OnDisk]:
    """`_joined` for spilled parts (in patient order): per group of `PER_PATIENT`, each name's
    chunks appended in order to ``store``/GROUP/NAME.npy (`OnDisk`), a chunk's types widened to
    the joined one (text labels differ in width between chunks). Each chunk file is read once per
    `MAX_OPEN` columns and deleted after the last; one chunk is in memory at a time."""
    columns = [(group, name, [getattr(part, group)[name] for part in parts if name in getattr(part, group)])
               for group in PER_PATIENT
               for name in dict.fromkeys(name for part in parts for name in getattr(part, group))]
    for first in range(0, max(len(columns), 1), MAX_OPEN):
        batch = columns[first:first + MAX_OPEN]
        with contextlib.ExitStack() as files:
            targets = {}
            for group, name, pieces in batch:
                dtype = np.result_type(*(p.dtype for p in pieces))
                shape = (sum(p.shape[0] for p in pieces),) + pieces[0].shape[1:]
                (store / group).mkdir(parents=True, exist_ok=True)
                f = files.enter_context(open(store / group / f"{name}.npy", "wb"))
                np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                         "fortran_order": False, "shape": shape})
                targets[(group, name)] = (f, dtype)
            for part in parts:
                _append_chunk(part, batch, targets)
                if first + MAX_OPEN >= len(columns):
                    (store / f"{part.start}.bin").unlink(missing_ok=True)
    joined = {group: {} for group in PER_PATIENT}
    for group, name, _ in columns:
        joined[group][name] = store / group / f"{name}.npy"
    return {group: OnDisk(paths) for group, paths in joined.items()}


def _append_chunk(part: ChunkSummary, batch: list, targets: dict) -> None:
    """Append one spilled chunk's arrays of the columns in ``batch`` to their open joined files."""
    pieces = [((group, name), getattr(part, group)[name]) for group, name, _ in batch if name in getattr(part, group)]
    data = {path: np.fromfile(path, dtype=np.uint8) for path in {piece.path for _, piece in pieces}}
    for key, piece in pieces:
        f, dtype = targets[key]
        count = int(np.prod(piece.shape, dtype=np.int64))
        values = np.frombuffer(data[piece.path], piece.dtype, count, piece.offset).astype(dtype, copy=False)
        f.write(values)


def scenario_registry(scenario: Scenario, registry: Registry | None = None) -> Registry:
    """The parameter set a scenario runs with: its species' values (rat and mouse entries where the
    registry has them, `ecsim.ecs.species`), then the scenario's own overrides."""
    from .ecs.species import species_registry
    return species_registry(registry or default_registry(), scenario.species).with_overrides(scenario.parameters)


def grid_for(scenario: Scenario) -> Grid:
    return Grid(scenario.duration_days * 24.0, scenario.output_step_h)


def demographics(scenario: Scenario) -> Demographics:
    pop = scenario.population
    return Demographics(pop.weight_mean_kg, pop.weight_sd_kg, pop.weight_min_kg, pop.weight_max_kg,
                        pop.hepatic, pop.cyp2c19, pop.typical)


def simulate_chunk(scenario: Scenario, arm: Arm, start: int, stop: int, *,
                   registry: Registry | None = None, model: Model | None = None,
                   overrides: dict[str, np.ndarray] | None = None, expected_scores: bool = False) -> Chunk:
    """One arm, patients [start, stop): trajectories of every state and output. ``overrides``
    replace per-patient parameter values (one value per patient; uncertainty analysis);
    ``expected_scores`` rates every scale item at its mean over raters."""
    registry = registry or scenario_registry(scenario)
    model = model or full_model()
    if arm.titration is not None and arm.titration.rule == "flexible" and scenario.population.phenotype is not None:
        from .designs import titrated_chunk
        return titrated_chunk(scenario, arm, registry, lambda forced: simulate_chunk(
            scenario, forced, start, stop, registry=registry, model=model, overrides=overrides,
            expected_scores=expected_scores), start, stop)
    grid = grid_for(scenario)
    p, doses = patient_inputs(scenario, arm, start, stop, registry, overrides)
    with np.errstate(all="ignore"):   # non-finite numbers are found per patient afterwards (ecsim.faults)
        states = integrate(model, p, doses, grid, stop - start)
        out = outputs(model, p, states)
        clinical, labels = None, {}
        if scenario.population.phenotype is not None:
            clinical = assess_chunk(scenario, arm, grid.times, out, start, stop, registry, expected_scores)
            labels = patient_labels(scenario, start, stop)
    return Chunk(grid.times, out, p, states, clinical, labels)


def patient_labels(scenario: Scenario, start: int, stop: int) -> dict[str, np.ndarray]:
    """Per-patient categories the statistics break down by: the phenotype of a mixed population."""
    mix = scenario.population.phenotype_mix
    return {} if mix is None else {"phenotype": phenotype_labels(scenario.population.seed, start, stop, mix)}


def assess_chunk(scenario: Scenario, arm: Arm, times_h: np.ndarray, out: dict[str, np.ndarray], start: int,
                 stop: int, registry: Registry, expected_scores: bool = False) -> ClinicalTrajectory:
    """The clinical layers (circuit, motor output, scales) at the scenario's visits, driven by the
    drug-layer outputs ``out`` of patients [start, stop). Re-run alone to vary clinical parameters."""
    days = visit_days(scenario)
    return assess_population(scenario, registry, days, visit_drivers(times_h, out, days), arm_course(arm, scenario),
                             start, stop, expected_scores)


def assess_population(scenario: Scenario, registry: Registry, days: np.ndarray, drivers: dict[str, np.ndarray],
                      course: Course, start: int, stop: int, expected_scores: bool = False) -> ClinicalTrajectory:
    """`circuit.clinical.assess` for patients [start, stop) of the scenario's population: with a
    phenotype mix, one batch in which each patient has their own phenotype."""
    pop = scenario.population
    phenotype = pop.phenotype if pop.phenotype_mix is None else phenotype_labels(pop.seed, start, stop,
                                                                                   pop.phenotype_mix)
    return assess(ClinicalModel.from_registry(registry), registry, phenotype, days, drivers, course, pop.seed, start,
                  stop, typical=pop.typical, expected_scores=expected_scores)


def patient_inputs(scenario: Scenario, arm: Arm, start: int, stop: int, registry: Registry,
                   overrides: dict[str, np.ndarray] | None = None) -> tuple[dict[str, np.ndarray], list[Bolus]]:
    """Per-patient parameter and covariate values and the arm's boluses, patients [start, stop).
    A titrated arm is given its forced schedule to the top level (`designs.titrated_chunk` picks
    each patient's level)."""
    arm = arm.forced() if arm.titration is not None else arm
    p = patient_values(registry, sorted(registry.parameters), demographics(scenario), arm.product,
                       arm.food, scenario.population.seed, start, stop)
    p |= {name: np.asarray(v, dtype=float) for name, v in (overrides or {}).items()}
    p |= arm_covariates(arm, p)
    species_ic50 = f"cbd_faah_ic50_{scenario.species}"
    p["cbd_faah_ic50_uM"] = np.asarray(p[species_ic50] if species_ic50 in p else registry[species_ic50].value
                                       ) * np.ones(stop - start)
    p["max_single_thc_mg"] = max_single_thc_mg(arm, p)
    p["max_single_thc_oral_equivalent_mg"] = max_single_thc_oral_equivalent_mg(arm, p)
    p["cbd_daily_mg"] = daily_cbd_mg(arm, p, grid_for(scenario))
    p["parkinsonian_features"] = parkinsonian_features(scenario, start, stop)
    return p, arm_boluses(arm, p, grid_for(scenario))


def typical_arm_inputs(scenario: Scenario, arm: Arm, registry: Registry | None = None
                       ) -> tuple[dict[str, float], list[Bolus]]:
    """One arm's typical patient (the median of every distribution; a titrated arm's forced
    schedule): every parameter and covariate value, and the boluses (amounts for one patient)."""
    typical = scenario.model_copy(update={"population": scenario.population.model_copy(update={"typical": True})})
    p, boluses = patient_inputs(typical, arm, 0, 1, scenario_registry(scenario, registry))
    return {k: float(np.asarray(v).reshape(-1)[0]) for k, v in p.items()}, boluses


def parkinsonian_features(scenario: Scenario, start: int, stop: int) -> np.ndarray:
    """1.0 for patients [start, stop) whose phenotype has parkinsonian features
    (`circuit.phenotypes.PARKINSONIAN`), else 0.0; 0.0 for a population without a phenotype."""
    from .circuit.phenotypes import PARKINSONIAN
    pop = scenario.population
    if pop.phenotype_mix is not None:
        labels = phenotype_labels(pop.seed, start, stop, pop.phenotype_mix)
        return np.isin(labels, sorted(PARKINSONIAN)).astype(float)
    return np.full(stop - start, float(pop.phenotype in PARKINSONIAN))


def arm_course(arm: Arm, scenario: Scenario) -> Course:
    """The arm's treatments outside the drug-level layers. A sham-stimulation arm is blinded, so its
    ratings carry the expectation response whether or not the trial sets it for every arm."""
    sham = arm.gpi_stimulation is not None and arm.gpi_stimulation.sham
    return Course(arm.interventions.levodopa_mg_per_day, arm.interventions.trihexyphenidyl_mg_per_day,
                  arm.botulinum, arm.gpi_stimulation, scenario.trial.placebo_response or sham,
                  arm.physiotherapy, arm.painkiller, arm.interventions.clonazepam_mg_per_day,
                  arm.interventions.baclofen_mg_per_day)


def visit_days(scenario: Scenario) -> np.ndarray:
    return np.array(scenario.visit_days())


def visit_drivers(times_h: np.ndarray, out: dict[str, np.ndarray], days: np.ndarray) -> dict[str, np.ndarray]:
    """Circuit drivers at each visit: the mean over the 24 h before it (the value at t = 0 on day 0)."""
    columns = []
    for day in days:
        t = day * 24.0
        window = (times_h > t - 24.0 - 1e-9) & (times_h <= t + 1e-9) if day > 0 else np.isclose(times_h, 0.0)
        columns.append(window)
    return {name: np.stack([out[source][:, w].mean(axis=1) for w in columns], axis=1)
            for name, source in {**RELEASE, PLASTICITY_SIGNAL: PLASTICITY_SIGNAL}.items()}


class Simulation:
    """Run a scenario: every arm, the whole population, in chunks of patients."""

    def __init__(self, scenario: Scenario, *, registry: Registry | None = None, chunk: int = CHUNK):
        self.scenario = scenario
        self.sequences = None
        if scenario.trial.crossover is not None:   # one arm per sequence: `ecsim.designs`
            from .designs import crossover_scenario
            self.scenario, self.sequences = crossover_scenario(scenario)
        self.registry = scenario_registry(scenario, registry)
        self.model = full_model()
        self.chunk = chunk
        self.timings: dict[str, float] = {}
        self.execution: dict = {}
        self.enrolment = None
        if scenario.population.inclusion is not None:   # screened here, before anything is written
            from .designs import enrolment
            self.enrolment = enrolment(self.scenario, self.registry)

    def run(self, progress=None, *, workers: int | None = None, scheduler: str | None = None,
            checkpoint=None, store: Path | None = None) -> list[ArmResult]:
        """Every arm, chunk by chunk: in this process, on a local Dask cluster of ``workers``
        processes, or on the Dask scheduler at ``scheduler``; the same numbers in every case.
        With a `Checkpoint`, chunks it holds are not simulated again and each new one is saved
        as it finishes. ``progress(arm_name, patients)`` is called as chunks finish. With a
        ``store`` folder (new or empty), per-patient results go to disk as chunks finish and come
        back memory-mapped (same values), so memory does not grow with the number of patients; the
        results read from the store, so it must outlive them."""
        if store is not None and Path(store).is_dir() and any(Path(store).iterdir()):
            raise ValueError(f"store {store} is not empty: another run's results may still read from it")
        from .distributed import chunk_executor
        started = time.perf_counter()
        results = [ArmResult(arm.name, grid_for(self.scenario).times,
                             sequence=self.sequences[i] if self.sequences else None, screening=self.enrolment,
                             titration=arm.titration if arm.titration and arm.titration.rule == "flexible" else None,
                             store=None if store is None else Path(store) / f"arm{i}")
                   for i, arm in enumerate(self.scenario.arms)]
        tasks = self.tasks()
        done = checkpoint.finished(tasks) if checkpoint is not None else []
        self.execution = {"workers": workers, "scheduler": scheduler, "chunk_patients": self.chunk,
                          "chunks": len(tasks), "chunks_resumed": len(done)}

        def add(task: ChunkTask, summary: ChunkSummary) -> None:
            results[task.arm].add_summary(summary)
            if progress is not None:
                progress(results[task.arm].name, summary.n_enrolled)

        for task in done:
            add(task, checkpoint.load(task))
        resumed = set(done)
        todo = [t for t in tasks if t not in resumed]
        if todo:
            with chunk_executor(self.scenario, self.registry, workers=workers, scheduler=scheduler) as executor:
                for task, summary in executor.map(todo):
                    if checkpoint is not None:
                        checkpoint.save(task, summary)
                    add(task, summary)
        for result in results:
            result.finish()
        self.timings["simulate_s"] = time.perf_counter() - started
        return results

    def tasks(self) -> list[ChunkTask]:
        """Arms x chunks of patients; a screened trial simulates every patient screened up to the
        last one enrolled (the screen failures are then left out of every statistic)."""
        n = self.scenario.population.n if self.enrolment is None else self.enrolment.screened
        return [ChunkTask(i, start, min(n, start + self.chunk))
                for i in range(len(self.scenario.arms)) for start in range(0, n, self.chunk)]


def summarize_task(scenario: Scenario, registry: Registry, task: ChunkTask) -> ChunkSummary:
    """Simulate and reduce one task, wherever it runs (registry: with the scenario's overrides)."""
    chunk = simulate_chunk(scenario, scenario.arms[task.arm], task.start, task.stop, registry=registry,
                           model=full_model())
    enrolled = None
    if scenario.population.inclusion is not None:
        from .designs import meets_inclusion
        enrolled = meets_inclusion(scenario, registry, task.start, task.stop)
    return summarize_chunk(chunk, task.start, enrolled)
