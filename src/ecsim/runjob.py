"""The main job behind `ecsim run`: load, simulate with a progress bar, write."""

from __future__ import annotations

from pathlib import Path

from .outputs import check_out, write_run
from .scenario import load_scenario
from .simulation import Simulation


def run_job(scenario_path: Path | None, out: Path, *, patients: int | None = None, seed: int | None = None,
            quiet: bool = False) -> dict:
    scenario = prepared_scenario(scenario_path, patients, seed)
    check_out(out)
    sim = Simulation(scenario)
    with _Progress(scenario, quiet) as advance:
        results = sim.run(progress=advance)
    summary = write_run(out, scenario, results, sim.registry, sim.timings)
    if not quiet:
        if "clinical" in summary:
            from .report_text import print_clinical
            print_clinical(summary)
        names = sorted(p.name for p in out.iterdir())
        print(f"wrote {out}/ ({', '.join(names)})")
    return summary


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
    """A rich progress bar over patients × arms (silent with --json)."""

    def __init__(self, scenario, quiet: bool):
        self.total = scenario.population.n * len(scenario.arms)
        self.quiet = quiet

    def __enter__(self):
        if self.quiet:
            return None
        from rich.progress import Progress
        self.bar = Progress(transient=True)
        self.bar.start()
        task = self.bar.add_task("simulating patients", total=self.total)
        return lambda arm, n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if not self.quiet:
            self.bar.stop()
        return False
