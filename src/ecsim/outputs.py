"""Run outputs: Parquet tables, a JSON manifest and summary, a plot. Written to a temporary folder
and renamed into place, so a folder named like a result is always complete."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .checkpoint import code_digest
from .errors import InputError
from .exposure import REPORTED
from .faults import fault_summary
from .json_io import dumps
from .registry import Registry
from .scenario import Scenario
from .clinical_summary import clinical_frames, clinical_summary, primary_scale, trial_statistics
from .simulation import ArmResult

SUMMARY_TARGETS = ("faah_inhibition", "magl_inhibition", "aea_fold_brain", "twoag_fold_brain",
                   "cb1_signal_gaba_striatum_to_gpe_rel", "release_gaba_striatum_to_gpe_rel", "ent1_inhibition")


PATIENTS_PER_FRAME = 1 << 15   # tables are built and written this many patients at a time


def exposure_table(results: list[ArmResult]) -> pd.DataFrame:
    """One row per arm and patient; a faulted patient's row has empty values and its reason."""
    return pd.concat(list(exposure_frames(results)), ignore_index=True)


def exposure_frames(results: list[ArmResult], per_frame: int = PATIENTS_PER_FRAME) -> Iterator[pd.DataFrame]:
    """`exposure_table` in pieces of ``per_frame`` patients, in order."""
    layout = table_layout([({}, r.exposure) for r in results], days=False)
    for r in results:
        yield from patient_frames(r, r.exposure, per_frame=per_frame, layout=layout)


def table_layout(arms: list[tuple[Mapping, Mapping]], days: bool) -> dict[str, tuple[str, np.dtype] | None]:
    """The columns of a table over arms, each arm given as (labels, values): in order of first
    appearance, as `pd.concat` orders them, each label or value column with its type (None for the
    fixed columns). Arms may differ (a titrated arm has labels the others lack); every frame gets
    every column, empty where its arm has none, so frames written one by one make one table."""
    layout = dict.fromkeys(["arm", "patient", "day", "fault"] if days else ["arm", "patient", "fault"])
    for labels, values in arms:
        for kind, group in (("label", labels), ("value", values)):
            for name in group:
                if name not in layout:
                    layout[name] = (kind, np.asarray(group[name][:0]).dtype)
    return layout


def patient_frames(r: ArmResult, columns: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray] | None = None,
                   days: np.ndarray | None = None, per_frame: int = PATIENTS_PER_FRAME,
                   layout: dict | None = None) -> Iterator[pd.DataFrame]:
    """Rows of arm ``r``: one per patient (or per patient and day of ``days``), sound and faulted
    patients in patient order, ``per_frame`` patient numbers at a time. ``columns`` and ``labels``
    hold per-patient arrays of the sound patients (patients x days for ``columns`` with ``days``);
    a faulted patient's rows have empty values (NaN, null labels) and the reason in ``fault``.
    With a `table_layout`, each frame has the table's columns in its order."""
    labels = labels or {}
    for frame in _patient_frames(r, columns, labels, days, per_frame):
        yield frame if layout is None else _laid_out(frame, layout)


def _laid_out(frame: pd.DataFrame, layout: dict) -> pd.DataFrame:
    missing = {name: _nulls(spec[1], len(frame)) if spec[0] == "label" else np.full(len(frame), np.nan, spec[1])
               for name, spec in layout.items() if name not in frame}
    return (frame.assign(**missing) if missing else frame)[list(layout)]


def _patient_frames(r: ArmResult, columns: Mapping, labels: Mapping, days: np.ndarray | None,
                    per_frame: int) -> Iterator[pd.DataFrame]:
    faulted = np.array(sorted(r.faults), dtype=np.int64)
    ids = np.asarray(r.patients)
    end = max(int(ids[-1]) if len(ids) else -1, int(faulted[-1]) if len(faulted) else -1) + 1
    for lo in range(0, end, per_frame):
        a, b = np.searchsorted(ids, [lo, lo + per_frame])
        fa, fb = np.searchsorted(faulted, [lo, lo + per_frame])
        if a == b and fa == fb:
            continue
        sound = _rows(r.name, ids[a:b], {k: v[a:b] for k, v in columns.items()},
                      {k: v[a:b] for k, v in labels.items()}, days, None)
        if fa == fb:
            yield sound
            continue
        reasons = np.array([r.faults[int(i)] for i in faulted[fa:fb]], dtype=object)
        empty = {k: np.full((fb - fa,) + v.shape[1:], np.nan, dtype=v.dtype) for k, v in columns.items()}
        bad = _rows(r.name, faulted[fa:fb], empty, {k: _nulls(v.dtype, fb - fa) for k, v in labels.items()},
                    days, reasons)
        keys = ["patient", "day"] if days is not None else ["patient"]
        yield pd.concat([sound, bad], ignore_index=True).sort_values(keys, kind="stable").reset_index(drop=True)


def _nulls(dtype: np.dtype, n: int) -> pd.api.extensions.ExtensionArray:
    """n empty values typed like ``dtype`` (text, yes/no, whole numbers), so that every frame of a
    table has the same column types, whichever patients it holds."""
    kind = {"b": "boolean", "i": "Int64", "u": "Int64", "f": "Float64"}.get(np.dtype(dtype).kind, "string")
    return pd.array([None] * n, dtype=kind)


def _rows(arm: str, ids: np.ndarray, columns: dict, labels: dict, days: np.ndarray | None,
          reasons: np.ndarray | None) -> pd.DataFrame:
    k = 1 if days is None else len(days)
    base = {"arm": arm, "patient": np.repeat(ids, k)}
    if days is not None:
        base["day"] = np.tile(np.asarray(days, dtype=float), len(ids))
    base["fault"] = pd.array(np.repeat(reasons, k) if reasons is not None else [None] * (len(ids) * k),
                             dtype="string")
    base |= {name: v.repeat(k) for name, v in labels.items()}   # numpy or pandas arrays, types kept
    return pd.DataFrame(base | {name: np.asarray(v).reshape(len(ids) * k) for name, v in columns.items()})


def write_parquet(frames: Iterable[pd.DataFrame], path: Path) -> bool:
    """Write the frames, in order, as one Parquet file (one row group or more per frame), holding
    one frame in memory at a time. False, and no file, if there are no frames."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    writer = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False, schema=writer.schema if writer else None)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return writer is not None


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
    """Geometric mean and 5th-95th percentile of positive values; all zeros give zeros. With some
    values zero and others not the geometric mean is undefined: None (until 2026-11-27 the
    arithmetic mean was given under its name)."""
    x = np.asarray(x, dtype=float)
    gm = float(np.exp(np.mean(np.log(x)))) if np.all(x > 0) else (0.0 if not np.any(x) else None)
    lo, hi = np.percentile(x, [5, 95])
    return {"geometric_mean": None if gm is None else _r(gm), "p05": _r(lo), "p95": _r(hi)}


def _label_dose(e: dict, registry: Registry) -> dict:
    """Each patient's labelled CBD dose per kg and day over the last 24 h (the product's actual content
    left out), and the share above the Epidiolex label's maximum (`epidiolex_label_max_dose`). A flag
    for the reader: no simulated value depends on it."""
    labelled = e["cbd_daily_mg"] / e["label_content_factor"] / e["body_weight_kg"]
    return {"cbd_labelled_mg_per_kg_day": interval(labelled),
            "fraction_cbd_dose_above_label_max": _r(float(np.mean(
                labelled > registry.value("epidiolex_label_max_dose", "mg/kg/day") * (1 + 1e-9))))}


def summary(scenario: Scenario, results: list[ArmResult], registry: Registry) -> dict:
    """The `--json` summary: per arm, last-day exposure with between-patient spread."""
    arms = []
    for r in results:
        e = r.exposure
        threshold = registry["thc_impairment_threshold_mg"].value
        arms.append({
            "arm": r.name, "patients": r.n, "patients_faulted": len(r.faults),
            **({"last_period": r.sequence.order[-1]} if r.sequence is not None else {}),
            "cbd_plasma_cavg_ng_per_ml": interval(e["cbd_plasma_ng_per_ml.cavg"]),
            "cbd_plasma_cmax_ng_per_ml": interval(e["cbd_plasma_ng_per_ml.cmax"]),
            "cbd_brain_free_cavg_nM": interval(e["cbd_brain_free_nM.cavg"]),
            "cbd7oh_plasma_cavg_ng_per_ml": interval(e["cbd7oh_plasma_ng_per_ml.cavg"]),
            "thc_plasma_cmax_ng_per_ml": interval(e["thc_plasma_ng_per_ml.cmax"]),
            "thc_single_dose_mg": interval(e["max_single_thc_mg"]),
            "thc_single_dose_oral_equivalent_mg": interval(e["max_single_thc_oral_equivalent_mg"]),
            "fraction_thc_dose_above_impairment_threshold": _r(float(np.mean(
                e["max_single_thc_oral_equivalent_mg"] > threshold))),
            **_label_dose(e, registry),
            "nclb_plasma_cavg_ng_per_ml": interval(e["nclb_plasma_ng_per_ml.cavg"]),
            "nabilone_plasma_cmax_ng_per_ml": interval(e["nabilone_plasma_ng_per_ml.cmax"]),
            "targets": {name: interval(e[f"{name}.avg"]) for name in SUMMARY_TARGETS},
        })
    crossover = any(r.sequence is not None for r in results)
    window = "last 24 h of the run" + (": in a crossover, each sequence's last period (last_period)" if crossover else "")
    doc = {"scenario": scenario.name, "window": window, "arms": arms,
           "cbd_label_max_mg_per_kg_day": registry.value("epidiolex_label_max_dose", "mg/kg/day"),
           "note": "between-patient spread (5th-95th percentile); parameter uncertainty: uncertainty.json (report runs)",
           "faults": fault_summary({r.name: r.faults for r in results}, {r.name: r.n_simulated for r in results})}
    doc["adverse_effects"] = adverse_effects_summary(scenario, results, registry)
    doc["adverse_effects_note"] = ("probability per patient; CBD's events, THC psychoactivity and worsened parkinsonism "
                                   "over a course like the Epidiolex label trials' (14 weeks), from the last day's "
                                   "exposure, whatever the run's length; the painkillers' and oral agents' misuse, "
                                   "addiction and dependence build up over the run's days; excess_ci95 is the "
                                   "sampling error of the virtual arms, not model uncertainty (docs/adverse.md)"
                                   + ("; crossover: per treatment, from the sequences whose last period it is"
                                      if crossover else ""))
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
    if any(r.sequence is not None for r in results):
        per_arm = by_last_period(per_arm, results)
    control = scenario.trial.control_arm if scenario.trial.control_arm in per_arm else None
    doc = adverse_summary(per_arm, control)
    return {arm: {event: _rounded(row) for event, row in events.items()} for arm, events in doc.items()}


def by_last_period(per_arm: dict[str, dict[str, np.ndarray]], results: list[ArmResult]) -> dict:
    """A crossover's per-sequence risks as per-treatment risks. A risk is read from the exposure of
    the run's last 24 h, which in a sequence is its last period: a treatment's risks are those of
    the sequences that end with it (each sequence holds the whole population, so with two such
    sequences the mean is over both). A treatment that ends no sequence has none."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for r in results:
        last = r.sequence.order[-1]
        risks = per_arm[r.name]
        out[last] = {e: np.concatenate([out[last][e], v]) for e, v in risks.items()} if last in out else dict(risks)
    return out


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
    try:   # os.access says yes for root in /proc; only making a folder there tells
        os.rmdir(tempfile.mkdtemp(prefix=".ecsim-probe-", dir=out.parent))
    except OSError as exc:
        raise InputError("--out", str(out), f"a folder inside a writable folder ({exc.strerror})") from None
    return out


def write_run(out: Path, scenario: Scenario, results: list[ArmResult], registry: Registry,
              timings: dict, claims: list[dict] | None = None, uncertainty: dict | None = None, *,
              execution: dict | None = None, staging: Path | None = None, summ: dict | None = None) -> dict:
    """Write every file into ``staging`` (default: a temporary sibling folder), then rename it to
    ``out``. With ``claims`` (the claims checker's rows) the folder also gets claims.json and the
    HTML report. ``summ`` is `summary(scenario, results, registry)` where the caller has it already
    (it runs the replicate trials)."""
    out = check_out(out)
    tmp = staging or out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    summ = summ if summ is not None else summary(scenario, results, registry)
    write_parquet(exposure_frames(results), tmp / "exposure.parquet")
    band_table(results).to_parquet(tmp / "bands.parquet", index=False)
    write_parquet(clinical_frames(results, scenario.population.seed), tmp / "clinical.parquet")
    (tmp / "summary.json").write_text(dumps(summ, indent=2))
    from .plots import plot_run
    plot_run(results, tmp / "pk.png")
    files = sorted(p.name for p in tmp.iterdir()) + ["manifest.json"]
    if claims is not None:
        files = sorted(files + ["claims.json", "report.html"] + (["uncertainty.json"] if uncertainty else []))
    meta = manifest(scenario, registry, timings, files, execution)
    if claims is not None:
        (tmp / "claims.json").write_text(dumps(claims, indent=1))
        if uncertainty:
            (tmp / "uncertainty.json").write_text(dumps(uncertainty, indent=1))
        (tmp / "report.html").write_text(_report(scenario, results, summ, registry, claims, meta, uncertainty))
    (tmp / "manifest.json").write_text(dumps(meta, indent=2))
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
