"""`ecsim bench`: the engine against libroadrunner (CVODE) and SciPy on the same patients.

Workload (fixed, so numbers compare across machines and versions): the full ODE model,
`ecsim.chain.full_model()` (36 states: CBD, 7-OH- and 7-COOH-CBD, THC and 11-OH-THC, clobazam and
N-desmethylclobazam with CBD inhibiting CYP3A4 and CYP2C19, PF-04457845, nabilone, FAAH turnover,
CB1 tolerance at four synapse classes; the ones this regimen does not dose stay at zero;
endocannabinoid tone and transmitter release are algebraic in these states), exactly what
`ecsim export-sbml` writes. The circuit and clinical layers (L4-L6) are algebraic steady states
evaluated at visits, not ODEs, so they are not part of it. Regimen `REGIMEN`: a full-spectrum oil,
300 mg CBD (with its THC, 2.5 % median) orally, fasted, at 08:00 and 20:00, plus clobazam 10 mg at
the same times, for 14 days; output every hour (337 times); default population (seed 1), so every
patient has their own weight, CYP2C19 phenotype, clearances, bioavailability and label content.

Contenders, each producing the same `COMPARED` outputs at the same hourly times for the same
patients, single-threaded:
- ecsim: `ecsim.engine.integrate` over chunks of `simulation.CHUNK` patients (the chunk size of
  `ecsim run`), population draws and boluses included in its time, outputs reduced per chunk;
- libroadrunner: the exported SBML, CVODE at rtol `RTOL`, atol `ATOL`, one patient at a time:
  reset, set the patient's varying parameters and covariates, integrate from dose to dose and add
  each dose to its state. Its faster setting on this model: Adams (`stiff = False`), about
  20 % faster than BDF here. Timed before and after ecsim, the faster of the two kept, so a
  busy machine during one of them does not count against it;
- SciPy: `solve_ivp` LSODA with the symbolic Jacobian on the declared right-hand side
  (`ecsim.reference.integrate_reference`) at the same tolerances, dose to dose.
Model loading and code generation (SymPy lambdify, libroadrunner's LLVM JIT) are done before timing.
The reference is the same SciPy solver at rtol 1e-10, atol 1e-14 on the first patients.

`backend="jax"` times `ecsim.engine_jax` instead of the NumPy engine: the same algorithm compiled by
XLA, the compared outputs evaluated and summed inside the kernel (no trajectories stored), chunks
of `JAX_CHUNK_CPU` patients on a CPU and `JAX_CHUNK_ACCELERATOR` on a GPU; its compilation is done
before timing, like the code generation above, and reported as `compile_s`. On a CPU it is held to
one core like the others (`single_threaded_xla`) and each chunk is waited for before the next
chunk's patients are drawn; on a GPU the draws overlap the device's work.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .engine import Bolus, Grid, integrate
from .errors import InputError
from .model.compile import VectorFunction
from .model.declaration import Model, symbols

RTOL, ATOL = 1e-6, 1e-9
REF_RTOL, REF_ATOL = 1e-10, 1e-14
DAYS = 14
REGIMEN = """
name: bench
duration_days: {days}
output_step_h: 1
population: {{n: {n}, seed: 1}}
arms:
  - name: full_spectrum_300mg_bid_with_clobazam
    product: full_spectrum
    route: oral
    food: fasted
    cbd:
      - {{dose: 300 mg, times_h: [8, 20]}}
    comedication:
      - {{drug: clobazam, steps: [{{dose: 10 mg, times_h: [8, 20]}}]}}
"""
COMPARED = ("cbd_plasma_ng_per_ml", "cbd7oh_plasma_ng_per_ml", "thc_plasma_ng_per_ml", "thc11oh_plasma_ng_per_ml",
            "clobazam_plasma_ng_per_ml", "nclb_plasma_ng_per_ml", "aea_fold_brain",
            "cb1_surface_shift_glu_corticostriatal", "cb1_signal_glu_corticostriatal_rel",
            "release_gaba_striatum_to_gpi_snr_rel")   # outputs, and one state: CB1 tolerance, as a deviation
KEYS = ("patients", "ecsim_patients_per_s", "roadrunner_patients_per_s", "scipy_patients_per_s",
        "ratio_vs_roadrunner", "max_rel_error_vs_reference", "peak_rss_mb")
EXTRA_KEYS = ("backend", "device", "chunk", "compile_s")   # the engine timed, where, patients per chunk, warm-up s
BACKENDS = ("numpy", "jax")
CONTENDERS = ("ecsim", "roadrunner", "scipy")
JAX_CHUNK_CPU = 500   # 250-500 measured fastest here (per-op overhead below, cache misses above)
JAX_CHUNK_ACCELERATOR = 100_000   # 10^6 patients in 10 chunks (the next made while the device works), 10^5 in one: one compilation


@dataclass(frozen=True)
class Workload:
    """The benchmark's scenario, arm, registry, model and output grid."""

    scenario: object
    registry: object
    model: Model

    @classmethod
    def build(cls, patients: int, days: float = DAYS) -> "Workload":
        from .chain import full_model
        from .registry import default_registry
        from .scenario import parse_scenario
        scenario = parse_scenario(REGIMEN.format(days=days, n=patients), "bench regimen")
        return cls(scenario, default_registry().with_overrides(scenario.parameters), full_model())

    @property
    def grid(self) -> Grid:
        return Grid(self.scenario.duration_days * 24.0, self.scenario.output_step_h)

    def patients(self, start: int, stop: int) -> tuple[dict[str, np.ndarray], list[Bolus]]:
        """Values and boluses of patients [start, stop), made exactly as `ecsim run` makes them."""
        from .simulation import patient_inputs
        return patient_inputs(self.scenario, self.scenario.arms[0], start, stop, self.registry)


@dataclass(frozen=True)
class Contender:
    """One contender's wall time over `patients` patients and its outputs for the first ones."""

    name: str
    patients: int
    seconds: float
    outputs: np.ndarray   # (patients kept, times, len(COMPARED))

    @property
    def per_s(self) -> float:
        return self.patients / self.seconds


@lru_cache(maxsize=4)
def _output_function(model: Model, names: tuple[str, ...]) -> VectorFunction:
    return VectorFunction.build([model.outputs[n] if n in model.outputs else symbols(n)[0] for n in names])


def compared_outputs(model: Model, values: dict[str, np.ndarray], states: dict[str, np.ndarray]) -> np.ndarray:
    """The `COMPARED` outputs or states (batch, times, outputs) from parameter values and state trajectories."""
    fn = _output_function(model, COMPARED)
    batch, size = next(iter(states.values())).shape
    merged = {k: v[:, None] for k, v in values.items() if k in fn.names} | states
    flat = {k: np.broadcast_to(v, (batch, size)).ravel() for k, v in merged.items() if k in fn.names}
    return fn(flat, batch * size).reshape(batch, size, -1)


def run_ecsim(work: Workload, patients: int, keep: int, chunk: int | None = None) -> Contender:
    """The NumPy engine over all `patients` in chunks; keeps the outputs of the first `keep`."""
    from threadpoolctl import threadpool_limits

    from .simulation import CHUNK
    chunk = chunk or CHUNK
    kept, total = [], 0.0
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        for start in range(0, patients, chunk):
            stop = min(patients, start + chunk)
            values, doses = work.patients(start, stop)
            out = compared_outputs(work.model, values, integrate(work.model, values, doses, work.grid, stop - start))
            total = total + out.sum(axis=0)   # the population mean, as a run keeps it
            if start < keep:
                kept.append(out[: keep - start])
        seconds = time.perf_counter() - started
    return Contender("ecsim", patients, seconds, np.concatenate(kept))


def run_ecsim_jax(work: Workload, patients: int, keep: int, chunk: int) -> Contender:
    """`ecsim.engine_jax` over all `patients` in chunks of at most `chunk`, the compared outputs
    evaluated and summed on the device; keeps the outputs of the first `keep`. Call `warm_up_jax`
    first so that compilation is not timed."""
    from . import engine_jax
    fn = _output_function(work.model, COMPARED)
    overlap = engine_jax.device() != "cpu"   # on a CPU, one core at a time like every contender
    started = time.perf_counter()
    run = engine_jax.observe(work.model, fn, work.patients, work.grid, patients, chunk, keep, overlap)
    return Contender("ecsim", patients, time.perf_counter() - started, run.first)


def warm_up_jax(work: Workload, patients: int, chunk: int, keep: int) -> float:
    """Compile the JAX kernel for the chunk size that `run_ecsim_jax` will use; its seconds."""
    from . import engine_jax
    size = engine_jax.chunks(patients, chunk)[0][2]
    started = time.perf_counter()
    engine_jax.observe(work.model, _output_function(work.model, COMPARED), work.patients, work.grid, size, size, keep)
    return time.perf_counter() - started


def default_chunk(backend: str) -> int:
    """Patients per chunk: `ecsim run`'s for NumPy; for JAX, by the device it computes on."""
    if backend == "numpy":
        from .simulation import CHUNK
        return CHUNK
    from . import engine_jax
    return JAX_CHUNK_CPU if engine_jax.device() == "cpu" else JAX_CHUNK_ACCELERATOR


def single_threaded_xla() -> None:
    """Hold JAX on a CPU to one core, as every contender is; only effective before JAX starts. XLA's
    flag stops its Eigen thread pool, but its runtime may still run independent operations on two
    threads (measured here: 4.8 s of CPU in 3.1 s of wall time), so the process is also pinned to
    one core. Left alone where a GPU plugin is installed: the flag is for CPUs, and XLA aborts on a
    flag its version does not know."""
    if _gpu_plugin_installed():
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    if hasattr(os, "sched_setaffinity"):
        _CORES_BEFORE_PINNING.update(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {min(_CORES_BEFORE_PINNING)})


_CORES_BEFORE_PINNING: set[int] = set()   # the machine's usable cores, for `machine()`, once pinned


def _gpu_plugin_installed() -> bool:
    import importlib.util
    import pkgutil
    spec = importlib.util.find_spec("jax_plugins")
    plugins = [m.name for m in pkgutil.iter_modules(spec.submodule_search_locations)] if spec else []
    top = [m.name for m in pkgutil.iter_modules() if m.name.startswith(("jax_cuda", "jax_rocm"))]
    return any(("cuda" in n or "rocm" in n) for n in plugins + top)


def roadrunner_model(work: Workload, rtol: float = RTOL, atol: float = ATOL):
    """The exported SBML loaded in libroadrunner, CVODE at the given tolerances."""
    import roadrunner

    from .model.sbml import to_sbml
    rr = roadrunner.RoadRunner(to_sbml(work.model, work.registry))
    rr.setIntegrator("cvode")
    rr.integrator.stiff = False
    rr.integrator.relative_tolerance = rtol
    rr.integrator.absolute_tolerance = atol
    rr.timeCourseSelections = list(COMPARED)
    return rr


def run_roadrunner(work: Workload, patients: int, rr=None) -> Contender:
    """libroadrunner (`rr`, default `roadrunner_model(work)`), patient by patient, dose to dose."""
    rr = rr or roadrunner_model(work)
    values, doses = work.patients(0, patients)
    names = [n for n in [*work.model.parameters, *work.model.covariates] if np.any(values[n] != rr[n])]
    schedule = _schedule(doses, work.grid)
    started = time.perf_counter()
    out = np.stack([_roadrunner_patient(rr, values, names, schedule, work.grid, i) for i in range(patients)])
    return Contender("libroadrunner", patients, time.perf_counter() - started, out)


def _schedule(doses: list[Bolus], grid: Grid) -> dict[int, list[Bolus]]:
    """Doses by output-grid index."""
    out: dict[int, list[Bolus]] = {}
    for dose in doses:
        out.setdefault(grid.index(dose.time_h), []).append(dose)
    return out


def _roadrunner_patient(rr, values, names, schedule, grid: Grid, i: int) -> np.ndarray:
    rr.reset()
    for name in names:
        rr.setValue(name, float(values[name][i]))
    out = np.empty((grid.size, len(COMPARED)))
    stops = sorted(set(schedule) | {0, grid.size - 1})
    for k0, k1 in zip(stops, stops[1:]):
        for dose in schedule.get(k0, []):
            rr.setValue(dose.state, rr.getValue(dose.state) + float(dose.amount[i]))
        out[k0:k1 + 1] = rr.simulate(grid.times[k0], grid.times[k1], k1 - k0 + 1)
    return out


def run_scipy(work: Workload, patients: int, rtol: float = RTOL, atol: float = ATOL, name: str = "scipy") -> Contender:
    """SciPy LSODA with the symbolic Jacobian on the declared model, patient by patient."""
    from .reference import integrate_reference
    values, doses = work.patients(0, patients)
    outs = []
    started = time.perf_counter()
    for i in range(patients):
        states = integrate_reference(work.model, values, doses, work.grid, i, rtol=rtol, atol=atol)
        one = {k: v[i:i + 1] for k, v in values.items()}
        outs.append(compared_outputs(work.model, one, {k: v[None, :] for k, v in states.items()})[0])
    return Contender(name, patients, time.perf_counter() - started, np.stack(outs))


def max_rel_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """max over patients, outputs and times of |ours - ref| / max over time of |ref| (per patient and output)."""
    n = min(len(ours), len(reference))
    scale = np.abs(reference[:n]).max(axis=1, keepdims=True)
    return float((np.abs(ours[:n] - reference[:n]) / np.where(scale > 0, scale, 1.0)).max())


@dataclass(frozen=True)
class BenchResult:
    """Every contender (None where not run), the reference, and what the JSON reports."""

    ecsim: Contender
    roadrunner: Contender | None
    scipy: Contender | None
    reference: Contender
    backend: str = "numpy"
    device: str = "cpu"
    chunk: int = 0
    compile_s: float = 0.0
    states: int = 0   # ODE states of the model timed

    @property
    def contenders(self) -> tuple[Contender, ...]:
        return tuple(c for c in (self.ecsim, self.roadrunner, self.scipy) if c is not None)

    def errors(self) -> dict[str, float]:
        """Each contender's `max_rel_error` against the reference, on the reference's patients."""
        return {c.name: max_rel_error(c.outputs, self.reference.outputs) for c in self.contenders}

    def as_json(self) -> dict:
        """The keys of issue 6 (null for a contender not run), the engine timed (`EXTRA_KEYS`), then
        `machine` and `definitions`."""
        errors = self.errors()
        rr, sp = self.roadrunner, self.scipy
        return {"patients": self.ecsim.patients,
                "ecsim_patients_per_s": self.ecsim.per_s,
                "roadrunner_patients_per_s": rr.per_s if rr else None,
                "scipy_patients_per_s": sp.per_s if sp else None,
                "ratio_vs_roadrunner": self.ecsim.per_s / rr.per_s if rr else None,
                "max_rel_error_vs_reference": errors["ecsim"],
                "peak_rss_mb": peak_rss_mb(),
                "backend": self.backend, "device": self.device, "chunk": self.chunk, "compile_s": self.compile_s,
                "machine": machine(self.backend),
                "definitions": self.definitions(errors)}

    def definitions(self, errors: dict[str, float]) -> dict[str, str]:
        e, rr, sp, ref = self.ecsim, self.roadrunner, self.scipy, self.reference
        engine = (f"ecsim.engine.integrate and the compared outputs, in chunks of {self.chunk} patients, one thread"
                  if self.backend == "numpy" else
                  f"ecsim.engine_jax (XLA on {self.device}, compiled beforehand in {self.compile_s:.3g} s, not "
                  f"timed) with the compared outputs summed on the device, in chunks of at most {self.chunk} "
                  f"patients" + (", one thread" if self.device == "cpu" else ""))
        missing = "not run (--contenders)"
        return {
            "workload": f"ecsim.chain.full_model() ({self.states} ODE states, the model `ecsim export-sbml` writes), "
                        f"{self.ecsim.outputs.shape[1] - 1} h of a full-spectrum oil (300 mg CBD with its THC) "
                        f"plus clobazam 10 mg, both orally at 08:00 and 20:00, fasted; compared every hour "
                        f"(outputs, and one state): " + ", ".join(COMPARED),
            "ecsim_patients_per_s": f"{e.patients} patients / wall seconds of population draws, boluses, "
                                    f"{engine} ({e.seconds:.3g} s)",
            "roadrunner_patients_per_s": missing if rr is None else
                                         f"libroadrunner CVODE (Adams, its faster setting here) at rtol {RTOL:g}, "
                                         f"atol {ATOL:g}, one patient at a time (reset, set varying parameters, "
                                         f"dose to dose), on the first {rr.patients} patients ({rr.seconds:.3g} s; "
                                         f"the faster of a run before and one after ecsim's), one thread",
            "scipy_patients_per_s": missing if sp is None else
                                    f"scipy.integrate.solve_ivp LSODA with the symbolic Jacobian at rtol {RTOL:g}, "
                                    f"atol {ATOL:g}, dose to dose, measured on the first {sp.patients} patients "
                                    f"({sp.seconds:.3g} s), one thread",
            "ratio_vs_roadrunner": "ecsim_patients_per_s / roadrunner_patients_per_s",
            "max_rel_error_vs_reference": "ecsim's max over the reference patients, compared outputs and hourly "
                                          "times of |ecsim - reference| / max over time of |reference|",
            "reference": f"solve_ivp LSODA with the symbolic Jacobian at rtol {REF_RTOL:g}, atol {REF_ATOL:g} on the "
                         f"first {ref.patients} patients; same measure for libroadrunner "
                         f"{_fmt(errors.get('libroadrunner'))}, SciPy at the benchmark tolerances "
                         f"{_fmt(errors.get('scipy'))}",
            "peak_rss_mb": "peak resident memory of the whole process (getrusage ru_maxrss), MiB",
            "backend": "the engine timed as ecsim: numpy (ecsim.engine) or jax (ecsim.engine_jax)",
            "device": "where that engine computed (JAX's default device; cpu for numpy)",
            "chunk": "patients per chunk (JAX: at most; chunks are made equal and the last padded)",
            "compile_s": "seconds of the untimed JAX warm-up: compiling the kernel for the chunk size, then one "
                         "run of it on the first chunk (0 for numpy)",
        }


def _fmt(x: float | None) -> str:
    return "not run" if x is None else f"{x:.2g}"


def run_bench(patients: int, *, reference_patients: int = 3, roadrunner_patients: int = 50,
              scipy_patients: int = 5, days: float = DAYS, backend: str = "numpy", chunk: int | None = None,
              contenders: tuple[str, ...] = CONTENDERS, progress=None) -> BenchResult:
    """Run every contender on the same patients (libroadrunner and SciPy on the first ones).
    `progress(text)`, if given, hears each stage as it ends."""
    from threadpoolctl import threadpool_limits
    say = progress or (lambda text: None)
    work = Workload.build(patients, days)
    reference_patients = min(reference_patients, patients)
    chunk = chunk or default_chunk(backend)
    _warm_up(work)
    compile_s, device = 0.0, "cpu"
    if backend == "jax":
        from . import engine_jax
        compile_s, device = warm_up_jax(work, patients, chunk, reference_patients), engine_jax.device()
        say(f"jax on {device}: kernel compiled in {compile_s:.1f} s")
    rr = sp = None
    with threadpool_limits(limits=1):
        if "roadrunner" in contenders:
            model = roadrunner_model(work)
            before = run_roadrunner(work, min(roadrunner_patients, patients), model)
        if backend == "jax":
            ecsim = run_ecsim_jax(work, patients, keep=reference_patients, chunk=chunk)
        else:
            ecsim = run_ecsim(work, patients, keep=reference_patients, chunk=chunk)
        say(f"ecsim ({backend}): {patients} patients in {ecsim.seconds:.2f} s, {ecsim.per_s:.0f}/s")
        if "roadrunner" in contenders:
            after = run_roadrunner(work, min(roadrunner_patients, patients), model)
            rr = max(before, after, key=lambda c: c.per_s)
            say(f"libroadrunner: {rr.per_s:.1f}/s")
        if "scipy" in contenders:
            sp = run_scipy(work, min(scipy_patients, patients))
            say(f"scipy: {sp.per_s:.2f}/s")
        ref = run_scipy(work, reference_patients, REF_RTOL, REF_ATOL, name="reference")
    return BenchResult(ecsim, rr, sp, ref, backend, device, chunk, compile_s, len(work.model.states))


def _warm_up(work: Workload) -> None:
    """Generate code (SymPy lambdify) before anything is timed."""
    from .model.compile import full_jacobian, full_rhs
    values, doses = work.patients(0, 1)
    compared_outputs(work.model, values, integrate(work.model, values, doses, work.grid, 1))
    full_rhs(work.model)
    full_jacobian(work.model)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine(backend: str = "numpy") -> dict:
    """CPU, cores, memory, OS, Python and library versions (with JAX's and its devices for that backend)."""
    import numpy
    import scipy
    import sympy

    from . import __version__
    usable = len(_CORES_BEFORE_PINNING or os.sched_getaffinity(0))
    info = {"cpu": _cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable,
            "memory_gb": _memory_gb(), "os": platform.platform(), "python": platform.python_version(),
            "ecsim": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__, "sympy": sympy.__version__,
            "load_average_1min": os.getloadavg()[0]}
    try:
        import roadrunner
        info["libroadrunner"] = roadrunner.__version__
    except ImportError:
        info["libroadrunner"] = None
    if backend == "jax":
        import jax
        import jaxlib
        info |= {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
                 "jax_devices": [str(d) for d in jax.devices()], "xla_flags": os.environ.get("XLA_FLAGS", ""),
                 "cpu_affinity": sorted(os.sched_getaffinity(0))}
    return info


def _cpu_model() -> str:
    for line in _read_lines("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    for line in _read_lines("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return None


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def check_options(patients: int, reference_patients: int, days: float, backend: str = "numpy",
                  chunk: int | None = None, contenders: str = ",".join(CONTENDERS)) -> tuple[str, ...]:
    """One-line errors for impossible options, a missing libroadrunner or jax; the contenders to run."""
    from .scenario import MAX_PATIENTS
    if not 1 <= patients <= MAX_PATIENTS:
        raise InputError("--patients", patients, f"1 to {MAX_PATIENTS}")
    if not 1 <= reference_patients <= min(patients, 50):
        raise InputError("--reference-patients", reference_patients, "1 to min(--patients, 50)")
    if not 0 < days <= 730 or (days * 24) % 1:
        raise InputError("--days", days, "a whole number of hours, over 0 and up to 730 days")
    if backend not in BACKENDS:
        raise InputError("--backend", backend, " or ".join(BACKENDS))
    if chunk is not None and not 1 <= chunk <= MAX_PATIENTS:
        raise InputError("--chunk", chunk, f"1 to {MAX_PATIENTS} patients")
    chosen = tuple(c.strip() for c in contenders.split(","))
    if "ecsim" not in chosen or not set(chosen) <= set(CONTENDERS):
        raise InputError("--contenders", contenders, f"a comma-separated list of {', '.join(CONTENDERS)} "
                                                     "that includes ecsim")
    if backend == "jax":
        from . import engine_jax
        if not engine_jax.available():
            raise InputError("--backend", "jax", "numpy, or jax once installed (pip install jax)")
    if "roadrunner" in chosen:
        try:
            import roadrunner  # noqa: F401
        except ImportError:
            raise InputError("libroadrunner", "not installed", "pip install 'libroadrunner>=2.6' (in the test "
                             "extra), or --contenders without roadrunner") from None
    return chosen


def print_bench(result: BenchResult) -> None:
    """The contenders side by side, the ratios and the errors."""
    from rich.console import Console
    from rich.table import Table
    doc, errors = result.as_json(), result.errors()
    title = (f"ecsim bench: {doc['patients']} patients, full model, {result.ecsim.outputs.shape[1] - 1} h, "
             f"hourly outputs, ecsim on {result.backend} ({result.device})")
    table = Table("contender", "timed", "seconds", "patients/s", "ecsim x", "max rel. error", title=title)
    for c in result.contenders:
        table.add_row(c.name, str(c.patients), f"{c.seconds:.3g}", f"{c.per_s:.4g}",
                      f"{result.ecsim.per_s / c.per_s:.3g}", f"{errors[c.name]:.2g}")
    console = Console()
    console.print(table)
    console.print(f"ecsim: {doc['definitions']['ecsim_patients_per_s']}")
    console.print(f"reference: {doc['definitions']['reference']}")
    console.print(f"peak RSS {doc['peak_rss_mb']:.0f} MiB; {doc['machine']['cpu']}, "
                  f"{doc['machine']['usable_cores']} cores, load average {doc['machine']['load_average_1min']:.2f}")
