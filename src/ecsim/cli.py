"""The `ecsim` command. Each subcommand is a small function with lazy imports; every user error
becomes one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import InputError
from .json_io import dumps

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ecsim: cannabinoids, the endocannabinoid system and dystonia, simulated.")

DEFAULT_RUN_OUT = "results/run"
"""Where `ecsim run` writes without --out (relative to the current folder)."""
UNLIMITED_WIDTH = 100_000
"""Console width for tables printed to a pipe or file: wide enough that no row is ever wrapped or cut."""


@app.command()
def run(scenario: Optional[Path] = typer.Argument(None, help="scenario YAML (default: embedded)"),
        out: Optional[Path] = typer.Option(None, "--out", help=f"output folder (default: {DEFAULT_RUN_OUT} in the "
                                           "current folder); an earlier ecsim result there (a folder with "
                                           "manifest.json) is replaced whole, a folder holding anything else is "
                                           "refused"),
        as_json: bool = typer.Option(False, "--json", help="print the summary as JSON only"),
        patients: Optional[int] = typer.Option(None, "--patients", help="override population size"),
        seed: Optional[int] = typer.Option(None, "--seed", help="override the random seed"),
        workers: Optional[int] = typer.Option(None, "--workers", help="simulate on a local Dask cluster of N "
                                              "worker processes (same numbers as without)"),
        scheduler: Optional[str] = typer.Option(None, "--scheduler", help="simulate on an existing Dask cluster: "
                                                "its scheduler's address, e.g. tcp://host:8786"),
        chunk: Optional[int] = typer.Option(None, "--chunk", help="patients simulated (and checkpointed) "
                                            "together (default: 512); memory and granularity only, never the numbers"),
        report: Optional[bool] = typer.Option(None, "--report/--no-report", help="also check the claims, propagate "
                                              "parameter uncertainty and write report.html (default: report)"),
        resume: Optional[Path] = typer.Option(None, "--resume", help="continue the interrupted run that was "
                                              "writing to this folder (its scenario and options are stored)")) -> None:
    """Run a scenario's population through its regimens; write Parquet, manifest, summary and plot."""
    from .distributed import ClusterError
    from .runjob import run_job
    if resume is not None and out is not None and out != resume:
        raise InputError("--out", str(out), f"left out with --resume (the run writes to {resume})")
    try:
        summary = run_job(scenario, resume or out or Path(DEFAULT_RUN_OUT), patients=patients, seed=seed,
                          quiet=as_json, workers=workers, scheduler=scheduler, chunk=chunk, report=report,
                          resume=resume is not None)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    if as_json:
        print(dumps(summary))


@app.command()
def params(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the parameter registry: value, unit, species, kind and source of every parameter
    (piped or redirected, one parameter per line, e.g. `ecsim params | grep cbd_f_oral`)."""
    from .registry import default_registry
    reg = default_registry()
    rows = [p.model_dump() for p in reg.parameters.values()]
    if as_json:
        print(dumps({"parameters": rows, "digest": reg.digest()}))
        return
    console = table_console()
    console.print(params_table(reg, console.width))


PARAM_COLUMNS = ("name", "value", "unit", "species", "kind", "source", "uncertainty")
PARAM_IDENTIFIERS = ("name", "value", "unit", "kind", "source")
PROSE_MIN_WIDTH = 12
"""Characters per line left for species and uncertainty in the wide `ecsim params` table; a
terminal too narrow for that and whole identifiers gets the two-column table."""


def params_table(reg, width: int) -> "Table":
    """The registry as a rich table ``width`` characters wide at most in which no name, value, unit,
    kind or source is ever cut or broken: one column each where they fit whole (species and
    uncertainty wrap), else two columns: the name, and the rest as wrapping text."""
    from rich.table import Table
    rows = [dict(zip(PARAM_COLUMNS, (p.name, f"{p.value:.4g}", p.unit, p.species, p.kind, p.source,
                                     p.uncertainty.describe()))) for p in reg.parameters.values()]
    identifiers = sum(max(len(row[c]) for row in rows) for c in PARAM_IDENTIFIERS)
    wide = identifiers + 2 * PROSE_MIN_WIDTH + 3 * len(PARAM_COLUMNS) + 1 <= width   # + padding and borders
    columns = PARAM_COLUMNS if wide else ("name", "value unit · kind · source · species · uncertainty")
    table = Table()
    for header in columns:
        table.add_column(header, no_wrap=header in PARAM_IDENTIFIERS, overflow="fold")
    for row in rows:
        table.add_row(*(row.values() if wide else (row["name"], _param_details(row))))
    return table


def _param_details(row: dict[str, str]) -> str:
    """A parameter's cells but its name, as the text of the two-column table's second column."""
    return " · ".join((f"{row['value']} {row['unit']}", row["kind"], row["source"], row["species"],
                       row["uncertainty"]))


def table_console():
    """A rich console for stdout: in a terminal, as wide as it; piped or redirected, unlimited
    whatever COLUMNS says, so that each table row is one line for `grep` and `cut`."""
    from rich.console import Console
    console = Console()
    return console if console.is_terminal else Console(width=UNLIMITED_WIDTH)


@app.command()
def cite(scenario: Optional[Path] = typer.Argument(None, help="scenario YAML (default: embedded)"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """The references behind every parameter a run of the scenario uses (the whole registry, with the
    scenario's overrides listed as assumptions)."""
    from .scenario import load_scenario
    from .simulation import scenario_registry
    sc = load_scenario(scenario)
    reg = scenario_registry(sc)
    names = sorted(reg.parameters)
    refs = reg.citations(names)
    assumptions = sorted(n for n in names if "assumption" in (reg[n].source, reg[n].kind))
    if as_json:
        print(dumps({"references": [r.model_dump() for r in refs], "assumptions": assumptions}))
        return
    for r in refs:
        print(f"[{r.key}] {r.citation}. {r.locator} ({r.checked})")
    print(f"\nassumptions ({len(assumptions)}): " + ", ".join(assumptions))


@app.command()
def validate(cases: Optional[Path] = typer.Option(None, "--cases", help="folder of case YAML files"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Simulate published studies and compare each metric with its tolerance rule."""
    from .validation import evaluate_cases, load_cases
    results = evaluate_cases(load_cases(cases))
    doc = {"cases": [r.as_dict() for r in results], "passed": sum(r.passed for r in results),
           "failed": sum(not r.passed for r in results)}
    if as_json:
        print(dumps(doc))
        return
    from .report_text import print_validation
    print_validation(results)


@app.command()
def targets(scenario: Optional[Path] = typer.Argument(None, help="scenario YAML (default: embedded)"),
            as_json: bool = typer.Option(False, "--json"),
            patients: Optional[int] = typer.Option(None, "--patients", help="override population size")) -> None:
    """Occupancy or inhibition at each target and endocannabinoid tone, per arm, with spread."""
    from .runjob import prepared_scenario
    from .simulation import Simulation
    from .targets import target_table
    table = target_table(Simulation(prepared_scenario(scenario, patients, None)).run())
    if as_json:
        print(dumps(table))
        return
    from .report_text import print_targets
    print_targets(table)


@app.command()
def circuit(phenotype: str = typer.Option("normal", "--phenotype", help="form and cause of dystonia"),
            dynamics: bool = typer.Option(False, "--dynamics", help="also simulate 3 s of millisecond dynamics"),
            levodopa: float = typer.Option(0.0, "--levodopa", help="levodopa, mg/day"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """The typical patient's basal-ganglia circuit: rates, motor output per region, oscillations."""
    from .circuit.explore import oscillation, steady_state_summary
    from .circuit.phenotypes import PHENOTYPES
    from .registry import default_registry
    if phenotype not in PHENOTYPES:
        raise InputError("--phenotype", phenotype, "one of " + ", ".join(PHENOTYPES))
    if not 0 <= levodopa <= 3000:
        raise InputError("--levodopa", levodopa, "a daily dose from 0 to 3000 mg")
    reg = default_registry()
    doc = steady_state_summary(reg, phenotype, levodopa)
    if dynamics:
        doc["dynamics"] = oscillation(reg, phenotype)
    if as_json:
        print(dumps(doc))
        return
    from .report_text import print_circuit
    print_circuit(doc)


@app.command()
def claims(as_json: bool = typer.Option(False, "--json"),
           patients: Optional[int] = typer.Option(None, "--patients", help="patients per arm of the virtual "
                                                  "trial (default: the default scenario's size); always 200 at "
                                                  "each tested dose, as in `ecsim run`"),
           seed: Optional[int] = typer.Option(None, "--seed", help="override the random seed")) -> None:
    """Each claim of the article with a verdict, the model's numbers and the evidence behind it.

    Runs the default virtual trial (efficacy) and the article's doses (mechanism), about a minute:
    the same steps, draws, seed and 200 patients per tested dose as the claims in `ecsim run`'s report,
    so `ecsim claims --patients N` and `ecsim run --patients N` give the same claims."""
    from .claims import CLAIMS_DRAWS
    from .claims.context import DOSE_PATIENTS
    from .outputs import summary
    from .runjob import UNCERTAINTY_DRAWS, _claims, _uncertainty, prepared_scenario
    from .simulation import Simulation
    scenario = prepared_scenario(None, patients, seed)
    sim = Simulation(scenario)
    summ = summary(scenario, sim.run(), sim.registry)
    unc = _uncertainty(scenario, sim, UNCERTAINTY_DRAWS, quiet=True)
    rows = _claims(scenario, summ, sim, DOSE_PATIENTS, CLAIMS_DRAWS, True, unc)
    if as_json:
        print(dumps(rows))
        return
    from .report_text import print_claims
    print_claims(rows)


@app.command()
def sensitivity(scenario: Optional[Path] = typer.Argument(None, help="scenario YAML (default: embedded)"),
                method: str = typer.Option("sobol", "--method", help="sobol (after a Morris screen) or morris"),
                samples: int = typer.Option(256, "--samples", help="Sobol base samples (a power of 2)"),
                trajectories: int = typer.Option(20, "--trajectories", help="Morris trajectories"),
                top: int = typer.Option(10, "--top", help="parameters kept from the Morris screen for Sobol"),
                seed: int = typer.Option(1, "--seed"),
                joint: int = typer.Option(0, "--joint", help="also N joint draws of every layer's parameters, the "
                                          "phenotype's calibration stages re-fitted per draw, kept only if they then "
                                          "reproduce its calibration cases (about 20-40 s per draw here: docs/uncertainty.md)"),
                workers: Optional[int] = typer.Option(None, "--workers", help="evaluate parameter sets on a local "
                                                      "Dask cluster of N processes (same numbers as without)"),
                scheduler: Optional[str] = typer.Option(None, "--scheduler", help="evaluate them on an existing "
                                                        "Dask cluster: its scheduler's address"),
                claims: bool = typer.Option(False, "--claims", help="instead, Morris screening of each claim's "
                                            "numbers (SCENARIO gives the trial claim's arms; --method, --samples "
                                            "and --top do not apply); a few minutes"),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Which uncertain parameters decide the answer: Morris screening of every drug-layer parameter,
    then Sobol indices of the most influential, and what to measure next. With --claims, which
    parameters decide each claim's numbers (docs/uncertainty.md)."""
    from .simulation import scenario_registry
    from .scenario import load_scenario
    from .uncertainty import sensitivity_analysis
    _check_sensitivity_options(method, samples, trajectories, top, seed, joint, claims)
    sc = load_scenario(scenario)
    reg = scenario_registry(sc)
    if joint:
        from .uncertainty.joint import check_joint
        check_joint(sc)
    from .distributed import ClusterError, ordered_mapper
    try:
        with ordered_mapper(workers=workers, scheduler=scheduler) as mapper:
            if claims:
                from .claims.sensitivity import claims_sensitivity, format_claims_sensitivity
                doc = claims_sensitivity(sc, reg, trajectories, seed, mapper=mapper)
                print(dumps(doc) if as_json else format_claims_sensitivity(doc))
                return
            doc = sensitivity_analysis(sc, reg, method, samples, trajectories, top, seed, mapper=mapper)
            if joint:
                from .uncertainty.joint import joint_uncertainty
                doc["joint"] = joint_uncertainty(sc, reg, joint, seed, mapper=mapper)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    if as_json:
        print(dumps(doc))
        return
    from .report_text import print_sensitivity
    print_sensitivity(doc)


@app.command("export-sbml")
def export_sbml(out: Path = typer.Argument(..., help="output .xml file"),
                scenario: Optional[Path] = typer.Option(None, "--scenario",
                                                        help="scenario YAML or embedded name (with --arm)"),
                arm: Optional[str] = typer.Option(None, "--arm", help="arm whose typical patient and doses to export")
                ) -> None:
    """The full model as SBML Level 3, with units and each parameter's source: the typical 70 kg
    patient without doses, or with --scenario and --arm that arm's typical patient (median of every
    distribution, the arm's meal and interventions) and its doses as events."""
    from .chain import full_model
    from .model.sbml import write_sbml
    if (scenario is None) != (arm is None):
        given = ("--scenario", str(scenario)) if arm is None else ("--arm", arm)
        raise InputError(*given, f"{given[0]} together with {'--arm' if arm is None else '--scenario'}")
    kwargs = {}
    if scenario is not None:
        from .scenario import load_scenario
        from .simulation import scenario_registry, typical_arm_inputs
        sc = load_scenario(scenario)
        by_name = {a.name: a for a in sc.arms}
        if arm not in by_name:
            raise InputError("--arm", arm, "an arm of the scenario: " + ", ".join(by_name))
        values, doses = typical_arm_inputs(sc, by_name[arm])
        kwargs = {"registry": scenario_registry(sc), "values": values, "doses": doses}
    write_sbml(full_model(), out, **kwargs)
    print(f"wrote {out}")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (default: this machine only)"),
          port: int = typer.Option(8765, "--port", help="TCP port"),
          data_dir: Path = typer.Option(Path("results/web"), "--data-dir", help="folder for the runs' outputs"),
          max_patients: int = typer.Option(2000, "--max-patients", help="largest population per arm a request may ask for"),
          max_jobs: int = typer.Option(2, "--max-jobs", help="runs at a time (more are refused with HTTP 429)"),
          max_run_seconds: float = typer.Option(600.0, "--max-run-seconds",
                                                help="wall time of one run in seconds; a run still going is stopped "
                                                     "and fails")) -> None:
    """The web page and its JSON API (see docs/server.md); Ctrl-C stops."""
    from .server import serve as run_server
    run_server(host, port, data_dir, max_patients, max_jobs, max_run_seconds)


@app.command()
def bench(patients: int = typer.Option(1000, "--patients", help="patients for ecsim (libroadrunner times the "
                                       "first 50, SciPy the first 5)"),
          as_json: bool = typer.Option(False, "--json", help="print the result as JSON only"),
          reference_patients: int = typer.Option(3, "--reference-patients",
                                                 help="patients solved at rtol 1e-10 for the error"),
          days: float = typer.Option(14.0, "--days", help="regimen length; the published figures use 14"),
          backend: str = typer.Option("numpy", "--backend", help="the engine timed as ecsim: numpy or jax "
                                      "(optional; on JAX's default device, a GPU where there is one)"),
          chunk: Optional[int] = typer.Option(None, "--chunk", help="patients per chunk (default: 500 for numpy; "
                                              "for jax 500 on a CPU, 100000 on a GPU)"),
          contenders: str = typer.Option("ecsim,roadrunner,scipy", "--contenders",
                                         help="which to time, comma-separated; ecsim always (the SciPy "
                                              "reference always runs)"),
          progress: bool = typer.Option(False, "--progress", help="print each stage's time to stderr")) -> None:
    """ecsim against libroadrunner (CVODE) and SciPy on the full model: patients per second, ratio, error
    (see benchmarks/README.md)."""
    from .bench import check_options, print_bench, run_bench, single_threaded_xla
    chosen = check_options(patients, reference_patients, days, backend, chunk, contenders)
    if backend == "jax":
        single_threaded_xla()   # on a CPU, one thread like every contender; no effect on a GPU
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else None
    result = run_bench(patients, reference_patients=reference_patients, days=days, backend=backend, chunk=chunk,
                       contenders=chosen, progress=say)
    if as_json:
        print(dumps(result.as_json()))
        return
    print_bench(result)


def _check_sensitivity_options(method: str, samples: int, trajectories: int, top: int, seed: int, joint: int,
                               claims: bool) -> None:
    if method not in ("sobol", "morris"):
        raise InputError("--method", method, "sobol or morris")
    if samples < 8 or samples & (samples - 1):
        raise InputError("--samples", samples, "a power of 2, at least 8")
    if not 2 <= trajectories <= 1000:
        raise InputError("--trajectories", trajectories, "2 to 1000")
    if not 1 <= top <= 50:
        raise InputError("--top", top, "1 to 50")
    if not 0 <= seed < 2 ** 32:   # one 32-bit word, as population.seed: streams are keyed [seed, ...]
        raise InputError("--seed", seed, "a whole number from 0 to 4294967295")
    if not 0 <= joint <= 10_000:
        raise InputError("--joint", joint, "0 (none) to 10000 draws")
    if claims and joint:
        raise InputError("--joint", joint, "0 with --claims (the joint draws are for the main answer)")


def _parse_error(exc, argv: list[str]) -> str:
    """typer's own parse errors (a word where a number belongs, an unknown flag) as one line that
    names the flag and the value given, like `InputError`."""
    if type(exc).__name__ == "BadParameter" and getattr(getattr(exc, "param", None), "opts", None):
        opts = exc.param.opts
        given = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in opts), None)
        given = given or next((a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] in opts and "=" in a), None)
        if given is not None:
            return str(InputError(opts[0], given, exc.message.removeprefix("Input should be ").replace("\n", " ")))
    return (exc.format_message() or "a command; see ecsim --help").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line and exit status 2."""
    from .faults import NumericalFault
    try:
        rc = app(args=argv, standalone_mode=False)   # click returns an Exit's code here
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NumericalFault as exc:     # the model cannot give numbers for this input: one line, status 1
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:
        print(f"error: {_parse_error(exc, sys.argv[1:] if argv is None else argv)}", file=sys.stderr)
        return 2
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return rc if isinstance(rc, int) else 0
