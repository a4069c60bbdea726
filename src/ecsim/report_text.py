"""Plain-terminal tables for `ecsim validate`, `targets`, `circuit`, `claims` and `run`."""

from __future__ import annotations


def print_validation(results) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table("metric", "kind", "observed", "simulated", "tolerance", "result")
    for r in results:
        table.add_row(r.id, r.kind, f"{r.observed:.4g}", f"{r.simulated:.4g}", r.tolerance,
                      "[green]pass[/]" if r.passed else "[red]MISS[/]")
    console = Console(width=200)
    console.print(table)
    for kind in ("calibration", "validation"):
        sub = [r for r in results if r.kind == kind]
        console.print(f"{kind}: {sum(r.passed for r in sub)} of {len(sub)} metrics within tolerance")


def print_targets(table: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(width=200)
    for arm in table["arms"]:
        t = Table("target", "median", "5th pct", "95th pct", title=f"{arm['arm']} ({arm['patients']} patients)")
        for name, v in arm["targets"].items():
            t.add_row(name, f"{v['median']:.4g}", f"{v['p05']:.4g}", f"{v['p95']:.4g}")
        console.print(t)
    console.print(f"{table['window']}; {table['spread']}")


def _circuit_drugs(doc: dict) -> str:
    dose = doc.get("levodopa_mg_per_day") or 0.0
    return f"after 4 weeks of levodopa {dose:g} mg/day" if dose > 0 else "drug-free"


def print_circuit(doc: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(width=200)
    rates = doc["rates_hz"]
    console.print(f"{doc['phenotype']}: GPi {rates['gpi_hz']:.1f} Hz, GPe {rates['gpe_hz']:.1f} Hz, "
                  f"STN {rates['stn_hz']:.1f} Hz (typical patient, {_circuit_drugs(doc)}, at rest)")
    t = Table("region", "severity 0-1", "BFMDRS item", "posture deviation", "co-contraction", "duty cycle")
    for region, v in doc["regions"].items():
        t.add_row(region, f"{v['severity']:.2f}", f"{v['bfmdrs_region']:.1f}", f"{v['deviation']:+.2f}",
                  f"{v['cocontraction']:.2f}", f"{v['duty']:.2f}")
    console.print(t)
    if "dynamics" in doc:
        d = doc["dynamics"]
        console.print(f"dynamics (3 s, STN-GPe delays, drug-free): GPi {d['mean_gpi_hz']:.1f} ± {d['sd_gpi_hz']:.1f} Hz, "
                      f"peak {d['peak_hz']:.1f} Hz, {100 * d['band_2_10_fraction']:.0f} % of power in 2-10 Hz")


def _replicates(r: dict | None) -> str:
    return "—" if r is None else f"{100 * r['share_significant']:.0f} % of {r['replicates']} (n = {replicate_size(r)})"


def signed(x: float) -> str:
    """x with its sign to 2 decimals; a value that rounds to zero prints +0.00, not -0.00."""
    return f"{round(x, 2) + 0.0:+.2f}"


def mean_ci(d: dict) -> str:
    """'mean [low, high]' of a {mean, ci95} block; the mean alone when it has no interval."""
    if d.get("ci95") is None or None in d["ci95"]:
        return f"{signed(d['mean'])} (no CI: too few patients)"
    return f"{signed(d['mean'])} [{signed(d['ci95'][0])}, {signed(d['ci95'][1])}]"


def paired_ci(d: dict, label: str = "paired") -> str:
    """' (label [low, high])' for a difference with a paired interval (arms of the same patients), else ''."""
    paired = d.get("paired_ci95")
    return f" ({label} [{signed(paired[0])}, {signed(paired[1])}])" if paired else ""


def replicate_size(r: dict) -> str:
    """The size of each replicate trial: patients per arm, or per sequence in a crossover."""
    return f"{r['patients_per_arm']}/arm" if "patients_per_arm" in r else f"{r['patients_per_sequence']}/sequence"


EXPOSURE_COLUMNS = (("cbd_plasma_cavg_ng_per_ml", "CBD Cavg ng/mL"), ("cbd_plasma_cmax_ng_per_ml", "CBD Cmax ng/mL"),
                    ("cbd7oh_plasma_cavg_ng_per_ml", "7-OH-CBD Cavg ng/mL"),
                    ("thc_single_dose_oral_equivalent_mg", "THC per dose, oral-equivalent mg"),
                    ("thc_plasma_cmax_ng_per_ml", "THC Cmax ng/mL"))


def print_exposure(summary: dict) -> None:
    """Drug levels per arm over the run's last 24 h: geometric mean [5th, 95th percentile] between patients."""
    from rich.console import Console
    from rich.table import Table
    t = Table("arm", *[label for _, label in EXPOSURE_COLUMNS],
              title=f"drug levels, {summary['window']}: geometric mean [5th-95th percentile between patients]")
    for arm in summary["arms"]:
        t.add_row(arm["arm"], *[_spread(arm[key]) for key, _ in EXPOSURE_COLUMNS])
    Console(width=200).print(t)


def _spread(v: dict) -> str:
    if v["geometric_mean"] == 0 and not v["p95"]:
        return "0"
    mean = "—" if v["geometric_mean"] is None else f"{v['geometric_mean']:.3g}"
    return f"{mean} [{v['p05']:.3g}, {v['p95']:.3g}]"


def print_clinical(summary: dict) -> None:
    """Scales over time and symptoms per region, one table each per arm."""
    from rich.console import Console
    from rich.table import Table
    console = Console(width=200)
    console.print(f"phenotype: {summary['phenotype']}")
    trial = summary["trial"]
    t = Table("arm", f"change in {trial['primary_scale']} (95% CI)", "responders",
              f"difference vs {trial['control_arm'] or 'control'} (95% CI)", "replicate trials significant",
              title=f"primary outcome on day {trial['primary_day']:g}"
              + (" (placebo response included)" if trial["placebo_response"] else ""))
    for name, a in trial["arms"].items():
        d = a.get("difference_vs_control")
        t.add_row(name, mean_ci(a["change"]),
                  "—" if a["responders"] is None else f"{100 * a['responders']:.0f} %",
                  (mean_ci(d) + paired_ci(d)) if d else "—",
                  _replicates(a.get("replicate_trials")))
    console.print(t)
    for arm in summary["clinical"]:
        days = arm["visit_days"]
        t = Table("scale (mean)", *[f"day {d:g}" for d in days], f"change day 0 to {days[-1]:g} (95% CI)",
                  title=f"{arm['arm']}: scales over time")
        for name, v in arm["scales"].items():
            ch = v["change_at_last_visit"]
            t.add_row(name, *[f"{x:.1f}" for x in v["mean"]],
                      f"{ch['mean']:+.2f} [{ch['ci95'][0]:+.2f}, {ch['ci95'][1]:+.2f}]")
        console.print(t)
        console.print(_two_columns(
            Table("symptom", "present at baseline", "present at last visit", title=f"{arm['arm']}: symptoms"),
            [(k.replace("_", " "), f"{100 * v['baseline']:.0f} %", f"{100 * v['last_visit']:.0f} %")
             for k, v in arm["symptom_prevalence"].items()],
            Table("region", "severity baseline", "severity last visit", title=f"{arm['arm']}: severity per region"),
            [(k, f"{v['baseline']:.3f}", f"{v['last_visit']:.3f}") for k, v in arm["region_severity_mean"].items()]))


def _two_columns(left, left_rows, right, right_rows):
    """Two separate tables side by side (the symptoms and the regions are different lists: a row
    of one has nothing to do with the same row of the other)."""
    from rich.columns import Columns
    for table, rows in ((left, left_rows), (right, right_rows)):
        for row in rows:
            table.add_row(*row)
    return Columns([left, right])


VERDICT_STYLE = {"supported": "green", "partly supported": "yellow", "not supported": "red", "unknown": "blue"}


def print_claims(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(width=200)
    t = Table("claim (the article)", "verdict", "why", show_lines=True)
    for r in rows:
        style = VERDICT_STYLE[r["verdict"]]
        refs = ", ".join(e["ref"] for e in r["evidence"]["items"])
        t.add_row(f"{r['claim']}\n[dim]{r['category']}[/]", f"[{style}]{r['verdict']}[/]",
                  f"{r['model']['reason']}.\n[dim]evidence ({refs}): {r['evidence']['reason']}; {r['why'].split('.')[0]}[/]")
    console.print(t)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICT_STYLE}
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()) + " (a model, not medical advice; "
                  "`ecsim claims --json` gives every number and citation)")


def print_sensitivity(doc: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(width=200)
    best = doc.get("sobol", doc["morris"])
    for output in doc["answer_outputs"]:
        r = best["outputs"][output]
        t = Table("parameter", *(["S1", "ST (95 % CI)"] if best["method"] == "sobol" else ["mu*", "sigma"]),
                  title=f"{output} ({best['method']}, {best['evaluations']} evaluations)")
        order = sorted(range(len(best["factors"])), key=lambda i: -(r["ST"][i] if "ST" in r else r["mu_star"][i]))
        for i in order[:10]:
            if best["method"] == "sobol":
                t.add_row(best["factors"][i], f"{r['S1'][i]:.3f}", f"{r['ST'][i]:.3f} ± {r['ST_conf'][i]:.3f}")
            else:
                t.add_row(best["factors"][i], f"{r['mu_star'][i]:.3g}", f"{r['sigma'][i]:.3g}")
        console.print(t)
    oat = doc.get("clinical_one_at_a_time")
    if oat:
        t = Table("parameter", "5th pct", "95th pct", "answer at 5th", "answer at 95th", "source",
                  title=f"{oat['output']}: circuit and clinical parameters one at a time (typical patient; "
                        f"at the registry values {oat['baseline']:+.3g} %)")
        for r in oat["factors"][:10]:
            t.add_row(r["parameter"], f"{r['low']:.3g}", f"{r['high']:.3g}", f"{r['answer_low']:+.3g} %",
                      f"{r['answer_high']:+.3g} %", r["source"])
        console.print(t)
    joint = doc.get("joint")
    if joint:
        t = Table("arm", "median", "90 % interval", "draws",
                  title=f"joint uncertainty, every layer, conditioned on {', '.join(joint['conditioned_on'])}: "
                        f"{joint['accepted']} of {joint['draws']} re-calibrated draws kept (per cent vs control)")
        for arm, v in joint["answers"].items():
            t.add_row(arm, *((f"{v['median']:+.3g} %", f"{v['p05']:+.3g} to {v['p95']:+.3g} %", str(v["n"])) if v
                             else ("–", "–", "0")))
        console.print(t)
        if joint["rejected_by"]:
            console.print(" rejected: " + "; ".join(f"{k} ({n})" for k, n in joint["rejected_by"].items()))
    console.print("[bold]What to measure next[/] (parameters whose uncertainty moves the answer most):")
    for output, rows in doc["measure_next"].items():
        console.print(f" {output}:")
        for d in rows[:3]:
            console.print(f"  {d['parameter']} = {d['value']:g} {d['unit']} ({d['description']}); {d['score_kind']} "
                          f"{d['score']:.3g}; source: {d['citation'][:100]}")
