"""Run outputs: Parquet tables, a JSON manifest and summary, a plot. Written to a temporary folder
and renamed into place, so a folder named like a result is always complete."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .checkpoint import code_digest
from .errors import InputError
from .exposure import REPORTED
from .faults import fault_summary
from .registry import Registry
from .scenario import Scenario
from .clinical_summary import clinical_summary, clinical_table, primary_scale, trial_statistics
from .simulation import ArmResult

SUMMARY_TARGETS = ("faah_inhibition", "magl_inhibition", "aea_fold_brain", "twoag_fold_brain",
                   "cb1_signal_gaba_striatum_to_gpe_rel", "release_gaba_striatum_to_gpe_rel", "ent1_inhibition")


def exposure_table(results: list[ArmResult]) -> pd.DataFrame:
    """One row per arm and patient; a faulted patient's row has empty values and its reason."""
    frames = []
    for r in results:
        frames.append(pd.DataFrame({"arm": r.name, "patient": r.patients, "fault": None} | r.exposure))
        if r.faults:
            frames.append(faulted_rows(r, r.exposure))
    return in_patient_order(pd.concat(frames, ignore_index=True), results)


def faulted_rows(r: ArmResult, columns: dict[str, np.ndarray], repeat: np.ndarray | None = None) -> pd.DataFrame:
    """Rows for ``r``'s faulted patients: the reason, and NaN (written as null) in every column of
    ``columns`` (per-patient arrays of the sound patients, for names and types);
    ``repeat`` adds a column per extra key (e.g. visit days) with one row per value."""
    ids = np.array(sorted(r.faults))
    base = {"arm": r.name, "patient": ids, "fault": [r.faults[i] for i in ids]}
    if repeat is not None:
        k = len(repeat)
        base = {"arm": r.name, "patient": np.repeat(ids, k), "day": np.tile(repeat, len(ids)),
                "fault": np.repeat(base["fault"], k)}
    rows = len(base["patient"])
    return pd.DataFrame(base | {c: np.full(rows, np.nan, dtype=v.dtype) for c, v in columns.items()})


def in_patient_order(table: pd.DataFrame, results: list[ArmResult]) -> pd.DataFrame:
    """Faulted rows moved to their patients' places (arms in run order; patients, then days); the
    fault column typed as text even when it is empty."""
    table["fault"] = table["fault"].astype("string")
    if not any(r.faults for r in results):
        return table
    order = {r.name: i for i, r in enumerate(results)}
    keys = [k for k in ("arm", "patient", "day") if k in table]
    return table.sort_values(keys, kind="stable", key=lambda c: c.map(order) if c.name == "arm" else c
                             ).reset_index(drop=True)


def band_table(results: list[ArmResult]) -> pd.DataFrame:
    """Population mean and 5/50/95th percentiles (of the sampled patients) per arm, output and time."""
    rows = []
    for r in results:
        for name in REPORTED:
            sample = np.concatenate(r.sample[name])
            q = np.percentile(sample, [5, 50, 95], axis=0) if len(sample) else np.full((3, len(r.times_h)), np.nan)
            rows.append(pd.DataFrame({"arm": r.name, "output": name, "time_h": r.times_h, "mean": r.mean[name],
                                      "p05": q[0], "p50": q[1], "p95": q[2]}))
    return pd.concat(rows, ignore_index=True)


def interval(x: np.ndarray) -> dict:
    """Geometric mean and 5th-95th percentile of positive values; zeros give zeros."""
    x = np.asarray(x, dtype=float)
    gm = float(np.exp(np.mean(np.log(x)))) if np.all(x > 0) else float(np.mean(x))
    lo, hi = np.percentile(x, [5, 95])
    return {"geometric_mean": _r(gm), "p05": _r(lo), "p95": _r(hi)}


def summary(scenario: Scenario, results: list[ArmResult], registry: Registry) -> dict:
    """The `--json` summary: per arm, last-day exposure with between-patient spread."""
    arms = []
    for r in results:
        e = r.exposure
        threshold = registry["thc_impairment_threshold_mg"].value
        arms.append({
            "arm": r.name, "patients": r.n, "patients_faulted": len(r.faults),
            "cbd_plasma_cavg_ng_per_ml": interval(e["cbd_plasma_ng_per_ml.cavg"]),
            "cbd_plasma_cmax_ng_per_ml": interval(e["cbd_plasma_ng_per_ml.cmax"]),
            "cbd_brain_free_cavg_nM": interval(e["cbd_brain_free_nM.cavg"]),
            "cbd7oh_plasma_cavg_ng_per_ml": interval(e["cbd7oh_plasma_ng_per_ml.cavg"]),
            "thc_plasma_cmax_ng_per_ml": interval(e["thc_plasma_ng_per_ml.cmax"]),
            "thc_single_dose_mg": interval(e["max_single_thc_mg"]),
            "fraction_thc_dose_above_impairment_threshold": _r(float(np.mean(e["max_single_thc_mg"] > threshold))),
            "nclb_plasma_cavg_ng_per_ml": interval(e["nclb_plasma_ng_per_ml.cavg"]),
            "nabilone_plasma_cmax_ng_per_ml": interval(e["nabilone_plasma_ng_per_ml.cmax"]),
            "targets": {name: interval(e[f"{name}.avg"]) for name in SUMMARY_TARGETS},
        })
    doc = {"scenario": scenario.name, "window": "last 24 h of the run", "arms": arms,
           "note": "between-patient spread (5th-95th percentile); parameter uncertainty: uncertainty.json (report runs)",
           "faults": fault_summary({r.name: r.faults for r in results}, {r.name: r.n_simulated for r in results})}
    doc["adverse_effects"] = adverse_effects_summary(scenario, results, registry)
    doc["adverse_effects_note"] = ("probability per patient over a course like the Epidiolex label trials' (14 weeks), "
                                   "from the last day's exposure, whatever the run's length; excess_ci95 is the "
                                   "sampling error of the virtual arms, not model uncertainty (docs/adverse.md)")
    clinical = clinical_summary(results)
    if clinical is not None:
        t = scenario.trial
        doc["phenotype"] = scenario.population.phenotype
        doc["trial"] = trial_statistics(results, primary_scale(scenario.population.phenotype, t.primary_scale),
                                        t.control_arm, t.responder_fraction, t.primary_day,
                                        t.sample_size_per_arm, t.replicates, scenario.population.seed,
                                        dropout=t.dropout, registry=registry)
        doc["trial"]["placebo_response"] = t.placebo_response
        doc["clinical"] = clinical
    return doc


def adverse_effects_summary(scenario: Scenario, results: list[ArmResult], registry: Registry) -> dict:
    """Per arm and event, the mean risk over patients (and its excess over the control arm, if the
    scenario names one), from each patient's exposure (`ecsim.treatments.adverse`; docs/adverse.md)."""
    from .treatments.adverse import adverse_effects, adverse_summary
    from .treatments.oral_agents import oral_agent_adverse_effects
    from .treatments.painkillers import painkiller_adverse_effects
    per_arm = {r.name: adverse_effects(r.exposure, r.exposure["cbd_daily_mg"], registry) for r in results}
    arms = {a.name: a for a in scenario.arms}
    if any(a.painkiller is not None for a in scenario.arms):   # opioid misuse and addiction, if any arm has one
        for r in results:
            per_arm[r.name] |= painkiller_adverse_effects(arms[r.name].painkiller, scenario.duration_days, r.n,
                                                          registry)
    if any(a.interventions.clonazepam_mg_per_day or a.interventions.baclofen_mg_per_day for a in scenario.arms):
        for r in results:   # sedation, weakness, benzodiazepine dependence, baclofen withdrawal
            per_arm[r.name] |= oral_agent_adverse_effects(arms[r.name].interventions, scenario.duration_days, r.n,
                                                          registry)
    control = scenario.trial.control_arm if scenario.trial.control_arm in per_arm else None
    doc = adverse_summary(per_arm, control)
    return {arm: {event: _rounded(row) for event, row in events.items()} for arm, events in doc.items()}


def _rounded(x):
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return _r(x) if isinstance(x, float) else x


def manifest(scenario: Scenario, registry: Registry, timings: dict, files: list[str],
             execution: dict | None = None) -> dict:
    """Everything needed to rerun: scenario, seed, version, parameter digest; and how it ran."""
    return {
        "ecsim_version": __version__,
        "scenario": scenario.model_dump(mode="json"),
        "parameter_set_sha256_16": registry.digest(),
        "code_sha256_16": code_digest(),
        "seed": scenario.population.seed,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "execution": execution or {},
        "python": sys.version.split()[0], "platform": platform.platform(),
        "machine": {"cpus": os.cpu_count(), "processor": platform.machine()},
        "files": files,
        "citations": sorted({p.source for p in registry.parameters.values()} - {"assumption"}),
    }


def check_out(out: Path) -> Path:
    """Fail before simulating if ``out`` cannot become a results folder."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise InputError("--out", str(out), "a folder with a name of its own (not . or ..), e.g. results/run")
    if out.exists() and not out.is_dir():
        raise InputError("--out", str(out), "a folder path (an existing file is in the way)")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise InputError("--out", str(out), "a new or empty folder, or an earlier ecsim result (this folder holds "
                                            "other files, which the run would replace)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("--out", str(out), f"a folder that can be created ({exc.strerror})") from None
    if not os.access(out.parent, os.W_OK):
        raise InputError("--out", str(out), "a folder inside a writable folder")
    return out


def write_run(out: Path, scenario: Scenario, results: list[ArmResult], registry: Registry,
              timings: dict, claims: list[dict] | None = None, uncertainty: dict | None = None, *,
              execution: dict | None = None, staging: Path | None = None) -> dict:
    """Write every file into ``staging`` (default: a temporary sibling folder), then rename it to
    ``out``. With ``claims`` (the claims checker's rows) the folder also gets claims.json and the
    HTML report."""
    out = check_out(out)
    tmp = staging or out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    summ = summary(scenario, results, registry)
    exposure_table(results).to_parquet(tmp / "exposure.parquet", index=False)
    band_table(results).to_parquet(tmp / "bands.parquet", index=False)
    clinical = clinical_table(results, scenario.population.seed)
    if not clinical.empty:
        clinical.to_parquet(tmp / "clinical.parquet", index=False)
    (tmp / "summary.json").write_text(json.dumps(summ, indent=2))
    from .plots import plot_run
    plot_run(results, tmp / "pk.png")
    files = sorted(p.name for p in tmp.iterdir()) + ["manifest.json"]
    if claims is not None:
        files = sorted(files + ["claims.json", "report.html"] + (["uncertainty.json"] if uncertainty else []))
    meta = manifest(scenario, registry, timings, files, execution)
    if claims is not None:
        (tmp / "claims.json").write_text(json.dumps(claims, indent=1, allow_nan=False))
        if uncertainty:
            (tmp / "uncertainty.json").write_text(json.dumps(uncertainty, indent=1, allow_nan=False))
        (tmp / "report.html").write_text(_report(scenario, results, summ, registry, claims, meta, uncertainty))
    (tmp / "manifest.json").write_text(json.dumps(meta, indent=2))
    _replace(tmp, out)
    return summ


def _report(scenario, results, summ, registry, claims, meta, uncertainty) -> str:
    from .report import ReportInputs, render_report
    from .validation.snapshot import is_current, load_snapshot
    snap = load_snapshot()
    snap["current"] = is_current(snap)
    snap["run_overrides"] = len(scenario.parameters)
    return render_report(ReportInputs(scenario, results, summ, registry, claims, snap, meta, uncertainty or {}))


def _replace(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _r(x: float) -> float:
    return float(f"{x:.4g}")
