"""The main job behind `ecsim run`: load, simulate with a progress bar, write."""

from __future__ import annotations

import sys
from pathlib import Path

from .checkpoint import Checkpoint, identity, stored_run
from .claims import CLAIMS_DRAWS
from .claims.context import DOSE_PATIENTS
from .distributed import check_cluster_options
from .errors import InputError
from .faults import NumericalFault
from .outputs import check_out, summary, write_run
from .scenario import Scenario, load_scenario
from .simulation import CHUNK, Simulation

UNCERTAINTY_DRAWS = 128   # parameter sets for the headline outputs' uncertainty (typical patient per draw)


def run_job(scenario_path: Path | Scenario | None, out: Path, *, patients: int | None = None,
            seed: int | None = None, quiet: bool = False, progress=None, report: bool | None = None,
            claims_patients: int = DOSE_PATIENTS, uncertainty_draws: int = UNCERTAINTY_DRAWS, workers: int | None = None,
            scheduler: str | None = None, chunk: int | None = None, resume: bool = False) -> dict:
    """Simulate a scenario (a file, a validated `Scenario`, or None for the default) and write its
    folder; with ``report``, also check the article's claims (simulating ``claims_patients`` per
    tested dose), propagate parameter uncertainty (``uncertainty_draws`` parameter sets; 0 skips it)
    and write report.html. ``progress(done, total)``, if given, is called as patients ×
    arms complete (the web page uses it); otherwise a progress bar is shown unless ``quiet``. The
    patients are simulated ``chunk`` at a time on a local Dask cluster of ``workers`` processes, or
    on the cluster whose scheduler is at ``scheduler``, if given (same numbers); claims, uncertainty
    and report stay here. Finished chunks are checkpointed (`ecsim.checkpoint`); ``resume``
    continues the interrupted run that was writing to ``out``, with its own scenario and options."""
    check_cluster_options(workers, scheduler)
    out = check_out(out)
    scenario, report, claims_patients, uncertainty_draws, chunk = _inputs(
        scenario_path, out, patients, seed, report, claims_patients, uncertainty_draws, chunk, resume)
    sim = Simulation(scenario, chunk=chunk)
    options = {"report": report, "claims_patients": claims_patients, "uncertainty_draws": uncertainty_draws}
    ident = identity(scenario.model_dump(mode="json"), sim.registry.digest(), chunk, options)
    with Checkpoint(out, ident, resume=resume) as checkpoint:
        _note_discarded(checkpoint, out, quiet)
        results = _simulate(scenario, sim, checkpoint, quiet, progress, workers, scheduler)
        summ = summary(scenario, results, sim.registry)
        unc, claims = _report_extras(scenario, summ, sim, report, claims_patients, uncertainty_draws, quiet)
        summ = write_run(out, scenario, results, sim.registry, sim.timings, claims, unc,
                         execution=sim.execution, staging=checkpoint.staging, summ=summ)
        checkpoint.remove()
    if not quiet:
        _print_outcome(summ, out, sim.execution)
    return summ


def _inputs(scenario_path, out: Path, patients, seed, report, claims_patients: int, uncertainty_draws: int, chunk,
            resume: bool):
    """The scenario and options of this run: the interrupted run's with ``resume``, else the given ones."""
    if resume:
        scenario, report, claims_patients, uncertainty_draws, chunk = _interrupted_run(
            out, {"SCENARIO": scenario_path, "--patients": patients, "--seed": seed, "--chunk": chunk,
                  "--report/--no-report": report})
    elif not isinstance(scenario_path, Scenario):
        scenario = prepared_scenario(scenario_path, patients, seed)
    else:
        scenario = _with_population(scenario_path, patients, seed)
    report = True if report is None else report
    chunk = CHUNK if chunk is None else _checked_chunk(chunk)
    return scenario, report, claims_patients, uncertainty_draws, chunk


def _note_discarded(checkpoint: Checkpoint, out: Path, quiet: bool) -> None:
    if checkpoint.discarded and not quiet:
        print(f"note: started afresh; the {checkpoint.discarded} finished chunks of an interrupted run in "
              f"{checkpoint.folder} were discarded (--resume {out} continues an interrupted run)", file=sys.stderr)


def _simulate(scenario: Scenario, sim: Simulation, checkpoint: Checkpoint, quiet: bool, progress, workers,
              scheduler) -> list:
    """Every arm's patients, chunk by chunk (resumed chunks from the checkpoint), with a progress bar."""
    try:
        with _Progress(scenario, quiet, progress) as advance:
            return sim.run(progress=advance, workers=workers, scheduler=scheduler, checkpoint=checkpoint,
                           store=checkpoint.arrays)
    except NumericalFault:   # the same again on resume: nothing worth keeping
        checkpoint.remove()
        raise


def _report_extras(scenario, summ: dict, sim, report: bool, claims_patients: int, uncertainty_draws: int,
                   quiet: bool) -> tuple[dict | None, list[dict] | None]:
    """For a report: the parameter uncertainty of the headline outputs and the claims checker's rows."""
    if not report:
        return None, None
    unc = _uncertainty(scenario, sim, uncertainty_draws, quiet) if uncertainty_draws else None
    claims_draws = CLAIMS_DRAWS if uncertainty_draws else 0
    return unc, _claims(scenario, summ, sim, claims_patients, claims_draws, quiet, unc)


def _interrupted_run(out: Path, flags: dict):
    """The scenario and options stored by the interrupted run in ``out``'s checkpoint; ``flags``
    (name -> value given) must all be None."""
    given = [flag for flag, v in flags.items() if v is not None]
    if given:
        raise InputError("--resume", str(out), f"alone: the interrupted run's scenario is stored with it "
                         f"(drop {', '.join(given)})")
    from pydantic import ValidationError
    doc = stored_run(out)
    try:
        scenario = Scenario.model_validate(doc["scenario"])
    except ValidationError:
        raise InputError("--resume", str(out), "a checkpoint whose scenario this ecsim can read") from None
    o = doc["options"]
    return scenario, o["report"], o["claims_patients"], o["uncertainty_draws"], doc["chunk_patients"]


def _checked_chunk(chunk) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= 100_000:
        raise InputError("--chunk", chunk, "a whole number of patients per chunk from 1 to 100000")
    return chunk


def _print_outcome(summary: dict, out: Path, execution: dict) -> None:
    from .report_text import print_exposure
    print_exposure(summary)
    limit = [(a["arm"], a["fraction_cbd_dose_above_label_max"]) for a in summary["arms"]
             if a["fraction_cbd_dose_above_label_max"]]
    for arm, share in limit:
        print(f"note: arm {arm}: {share:.0%} of patients take more CBD than the Epidiolex label's maximum, "
              f"{summary['cbd_label_max_mg_per_kg_day']:g} mg/kg/day (25 in tuberous sclerosis complex); summary.json "
              "'cbd_labelled_mg_per_kg_day'")
    if "clinical" in summary:
        from .report_text import print_clinical
        print_clinical(summary)
    faults = summary["faults"]
    if faults["patients_faulted"]:
        reasons = ", ".join(f"{k} {v}" for k, v in faults["by_reason"].items())
        print(f"warning: {faults['patients_faulted']} patients left out as numerical faults ({reasons}); "
              "see summary.json 'faults'")
    if execution.get("chunks_resumed"):
        print(f"resumed: {execution['chunks_resumed']} of {execution['chunks']} chunks came from the checkpoint")
    names = sorted(p.name for p in out.iterdir())
    print(f"wrote {out}/ ({', '.join(names)})")


def _claims(scenario, summ: dict, sim, patients: int, draws: int, quiet: bool, unc: dict | None) -> list[dict]:
    """The claims checker on this run's trial (if it has one; ``summ``, the run's `outputs.summary`),
    the article's doses and the run's parameter uncertainty."""
    import time
    from .claims import check_claims, claims_context, load_claims, trial_evidence
    started = time.perf_counter()
    spec = load_claims(sim.registry.references)
    if not quiet:
        print(f"checking the article's claims ({patients} patients per tested dose)...")
    trial = trial_evidence(scenario, summ)
    rows = check_claims(claims_context(sim.registry, trial, patients, scenario.population.seed, draws, spec, unc), spec)
    sim.timings["claims_s"] = time.perf_counter() - started
    return rows


def _uncertainty(scenario, sim, draws: int, quiet: bool) -> dict:
    """Parameter uncertainty of the headline outputs (typical patient per draw)."""
    import time
    from .uncertainty import parameter_uncertainty
    started = time.perf_counter()
    if not quiet:
        print(f"propagating parameter uncertainty ({draws} parameter sets)...")
    doc = parameter_uncertainty(scenario, sim.registry, draws, seed=scenario.population.seed)
    sim.timings["uncertainty_s"] = time.perf_counter() - started
    return doc


def prepared_scenario(path: Path | None, patients: int | None, seed: int | None):
    """The scenario file (or the default) with the command line's population overrides."""
    return _with_population(load_scenario(path), patients, seed)


def _with_population(scenario, patients, seed):
    update = {k: v for k, v in (("n", patients), ("seed", seed)) if v is not None}
    if not update:
        return scenario
    from .scenario import Scenario, pydantic_to_input_error
    from pydantic import ValidationError
    data = scenario.model_dump(mode="json")
    data["population"] |= update
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = pydantic_to_input_error(exc)
        flag = "--seed" if "seed" in err.field else "--patients"
        raise err.__class__(flag, err.value, err.allowed) from None


class _Progress:
    """A rich progress bar over patients × arms (silent with --json), or a caller's callback."""

    def __init__(self, scenario, quiet: bool, callback=None):
        self.total = scenario.population.n * len(scenario.arms)
        self.quiet = quiet or callback is not None
        self.callback = callback
        self.done = 0

    def __enter__(self):
        if self.callback is not None:
            return self._report
        if self.quiet:
            return None
        from rich.progress import Progress
        self.bar = Progress(transient=True)
        self.bar.start()
        task = self.bar.add_task("simulating patients", total=self.total)
        return lambda arm, n: self.bar.advance(task, n)

    def _report(self, arm, n):
        self.done += n
        self.callback(self.done, self.total)

    def __exit__(self, *exc):
        if not self.quiet:
            self.bar.stop()
        return False
