"""What a run reports about symptoms and scales: per arm, per visit, with spread and change."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .circuit.regions import REGIONS
from .circuit.scales import SYMPTOMS
from .intervals import mean_interval, welch_interval
from .simulation import ArmResult

SCALES = ("bfmdrs_movement", "bfmdrs_disability", "twstrs_total", "twstrs_pain", "jrs", "gpi_hz")
PRESENT = 0.1   # a symptom score above this counts as present


def clinical_table(results: list[ArmResult], seed: int | None = None) -> pd.DataFrame:
    """Long table: one row per arm, patient and visit, with every scale, rate and symptom score
    (and the patient's labels, e.g. the phenotype of a mixed population). In a crossover every
    patient is simulated in every sequence; with the run's ``seed``, a ``randomised`` column says
    which sequence each patient was allocated to (the rows the trial statistics use)."""
    frames = list(clinical_frames(results, seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def clinical_frames(results: list[ArmResult], seed: int | None = None, per_frame: int | None = None):
    """`clinical_table` in pieces of ``per_frame`` patients (default `outputs.PATIENTS_PER_FRAME`), in order."""
    from .designs import randomised
    from .outputs import PATIENTS_PER_FRAME, patient_frames, table_layout
    allocated = randomised(results, seed) if seed is not None else {}
    arms = [(r, r.labels | ({"randomised": allocated[r.name]} if r.name in allocated else {}))
            for r in results if r.clinical]
    layout = table_layout([(labels, r.clinical) for r, labels in arms], days=True)
    for r, labels in arms:
        yield from patient_frames(r, r.clinical, labels, r.visit_days, per_frame or PATIENTS_PER_FRAME, layout)


def visit_index(visit_days: np.ndarray, day: float) -> int:
    """The index of the visit on ``day``: never the nearest other visit (docs/scenarios.md; scenario
    validation puts every end point on a visit, so a miss here is a bug)."""
    hit = np.flatnonzero(np.isclose(visit_days, day, rtol=0.0, atol=1e-9))
    if not hit.size:
        raise ValueError(f"day {day:g} is not a visit day ({', '.join(f'{d:g}' for d in visit_days)})")
    return int(hit[0])


def _mean_ci(x: np.ndarray) -> dict:
    m, lo, hi = mean_interval(x)
    return {"mean": round(m, 3), "ci95": [round(lo, 3), round(hi, 3)]}


def primary_scale(phenotype: str, chosen: str | None) -> str:
    """The trial's primary scale: TWSTRS for cervical dystonia, Jankovic for blepharospasm, else BFMDRS."""
    return chosen or {"cervical": "twstrs_total", "blepharospasm": "jrs"}.get(phenotype, "bfmdrs_movement")


def replicate_power(change: np.ndarray, control: np.ndarray, size: int, replicates: int, seed: int,
                    same_patients: bool = False) -> float:
    """Share of replicate trials (``size`` patients per arm) in which a two-sided Welch t-test finds
    the arms different at P < 0.05.

    With ``same_patients`` (every arm of a run holds the same virtual patients: row i is patient i in
    each) a replicate randomises 2 x ``size`` distinct patients, ``size`` to each arm, as a parallel
    trial does. Drawing each arm from the whole pool, as the trial statistics did until 2026-11-26,
    put some patients in both arms of one trial and lowered the false-positive rate (1.2 % instead of
    5 % with 100 virtual patients and no effect). Without it the arms (of different patients) are
    drawn independently. Callers keep ``size`` at most half of each virtual arm, so replicates differ."""
    if same_patients and len(change) != len(control):
        raise ValueError("same_patients needs arms of equal length (row i is one patient in both)")
    rng = np.random.default_rng([seed, 4242, 17])   # three words: never a padded PK key (seed, block)
    hits, batch = 0, max(1, REPLICATE_VALUES // size)
    for first in range(0, replicates, batch):   # batches bound memory (scenarios allow 1e5 x 1e5 draws)
        drawn = [_allocate(rng, len(change), len(control), size, same_patients)
                 for _ in range(min(batch, replicates - first))]   # in this order: one trial at a time
        a = change[np.array([i for i, _ in drawn])]
        b = control[np.array([j for _, j in drawn])]
        hits += int(np.count_nonzero(stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05))
    return hits / replicates


def _allocate(rng: np.random.Generator, n_treated: int, n_control: int, size: int, same_patients: bool
              ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of one replicate's treated and control patients."""
    if same_patients:
        chosen = rng.choice(n_treated, 2 * size, replace=False)
        return chosen[:size], chosen[size:]
    return rng.choice(n_treated, size, replace=False), rng.choice(n_control, size, replace=False)


REPLICATE_VALUES = 1_000_000   # patients drawn per arm and batch of replicate trials: 8 MB of indices


def planned_sample_size(difference: float, var_treated: float, var_control: float, *, power: float = 0.8,
                        alpha: float = 0.05, limit: int = 10**7) -> int | None:
    """Patients per arm for a two-arm parallel trial to find ``difference`` (two-sided test at
    ``alpha``) with ``power``, given the arms' variances of change: the normal approximation
    n = (z_(1-alpha/2) + z_power)^2 (var_t + var_c) / difference^2, rounded up (Chow, Shao & Wang,
    Sample Size Calculations in Clinical Research, 2nd ed. 2008, section 3.2). None when no trial
    up to ``limit`` per arm would do (a difference of zero, or too small for its spread)."""
    if not difference or not np.isfinite(difference):
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = float(np.ceil(z * z * (var_treated + var_control) / difference ** 2))
    return int(max(n, 2)) if n <= limit else None


def trial_statistics(results: list[ArmResult], scale: str, control: str | None, responder: float,
                     day: float | None = None, size: int | None = None, replicates: int = 500,
                     seed: int = 0, dropout=None, registry=None) -> dict:
    """Change of the primary scale at the primary visit (default: last) per arm, responders, and the
    difference from the control arm with a Welch 95 % CI (`ecsim.intervals`).
    With ``dropout`` (the scenario's `trial.dropout`), a ``dropout`` block adds the same statistics
    for completers and for intention-to-treat with the last observation carried forward."""
    if any(r.sequence is not None for r in results):   # a crossover: `ecsim.designs`
        from .designs import crossover_statistics
        return crossover_statistics(results, scale, control, responder, size, replicates, seed) | \
            population_blocks(results)
    arms = {r.name: r for r in results if r.clinical}
    first = next(iter(arms.values()))
    k = len(first.visit_days) - 1 if day is None else visit_index(first.visit_days, day)
    change = {name: r.clinical[scale][:, k] - r.clinical[scale][:, 0] for name, r in arms.items()}
    base = {name: r.clinical[scale][:, 0] for name, r in arms.items()}
    doc = {"primary_scale": scale, "primary_day": float(first.visit_days[k]), "control_arm": control,
           "patients_per_arm": int(len(next(iter(change.values())))),
           "responder_definition":
           f"improvement of at least {responder:.0%} of baseline", "arms": {}}
    for name, c in change.items():
        rated = base[name] > 0   # a patient with nothing to improve is neither responder nor not (as in case files)
        improved = -c[rated] >= responder * base[name][rated]
        entry = {"change": _mean_ci(c), "responders": round(float(np.mean(improved)), 3) if rated.any() else None}
        if control is not None and name != control:
            paired = _paired_rows(c, change[control], arms[name].patients, arms[control].patients)
            entry |= _versus(c, change[control], size, replicates, seed, paired)
        doc["arms"][name] = entry
    if dropout is not None:
        doc["dropout"] = _dropout_block(arms, scale, control, k, responder, dropout, registry, seed)
    if "phenotype" in first.labels:
        doc["by_phenotype"] = _by_phenotype(arms, change, control)
    return doc | population_blocks(results)


def population_blocks(results: list[ArmResult]) -> dict:
    """Who is in the trial and what they took: titration (final levels), screening (criterion,
    screened, enrolled, screen-failure fraction) and the phenotype shares of a mixed population
    (enrolled patients of the first arm)."""
    from .designs import titration_statistics
    doc = {}
    first = next(r for r in results if r.clinical)
    titrated = titration_statistics(results)
    if titrated:
        doc["titration"] = titrated
    if first.screening is not None:
        doc["screening"] = first.screening.summary()
    if "phenotype" in first.labels:
        names, counts = np.unique(first.labels["phenotype"], return_counts=True)
        total = len(first.labels["phenotype"])
        doc["phenotype_shares"] = {str(k): round(int(c) / total, 4) for k, c in zip(names, counts)}
    return doc


def _by_phenotype(arms: dict[str, ArmResult], change: dict[str, np.ndarray], control: str | None) -> dict:
    """Per phenotype of a mix and arm: patients, change with 95 % CI, difference from control."""
    out = {}
    for phenotype in sorted(set(next(iter(arms.values())).labels["phenotype"].tolist())):
        rows = {name: r.labels["phenotype"] == phenotype for name, r in arms.items()}
        out[phenotype] = {}
        for name, c in change.items():
            mine = c[rows[name]]
            entry = {"n": int(len(mine)), "change": _mean_ci(mine) if len(mine) else None}
            if control is not None and name != control and len(mine):
                theirs = change[control][rows[control]]
                paired = _paired_rows(mine, theirs, _ids(arms[name], rows[name]), _ids(arms[control], rows[control]))
                entry |= _versus(mine, theirs, None, 0, 0, paired)
            out[phenotype][name] = entry
    return out


def _dropout_block(arms: dict[str, ArmResult], scale: str, control: str | None, k: int, responder: float,
                   dropout, registry, seed: int) -> dict:
    """Withdrawals per arm and the primary statistics for completers and ITT-LOCF (treatments.dropout)."""
    from .registry import default_registry
    from .treatments.dropout import DropoutModel, dropout_statistics, excess_adverse_risk, withdrawal_days
    registry = registry or default_registry()
    model = DropoutModel.from_registry(registry, dropout.weekly_hazard, dropout.adverse_effects)
    days = next(iter(arms.values())).visit_days
    weeks = float(days[-1]) / 7.0
    per_arm = {}
    for name, r in arms.items():
        excess = excess_adverse_risk(r.exposure, registry) if model.adverse else None
        per_arm[name] = {"values": r.clinical[scale].astype(float),
                         "leave": withdrawal_days(model, r.patients, seed, weeks, excess)}

    def summarise(c: np.ndarray, ref: np.ndarray | None) -> dict:
        out = {"n": int(len(c)), "change": _mean_ci(c)}
        if ref is not None and len(ref):
            out |= _versus(c, ref, None, 0, seed)
        return out

    doc = {"weekly_hazard": model.weekly_hazard, "adverse_effects_raise_hazard": model.adverse,
           "adverse_share": model.adverse_share if model.adverse else None}
    return doc | dropout_statistics(per_arm, control, k, days, summarise)


def _ids(arm: ArmResult, rows: np.ndarray) -> np.ndarray | None:
    """Patient numbers of an arm's ``rows`` (None where the arm does not record them)."""
    return None if arm.patients is None else arm.patients[rows]


def _paired_rows(d: np.ndarray, ref: np.ndarray, d_ids: np.ndarray | None, ref_ids: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows of ``d`` and ``ref`` of the patients both arms kept, matched patient by patient: an
    arm drops the patients whose circuit it could not solve, and two arms can drop different ones, so
    row i need not be one patient in both. Without patient numbers, rows are matched by position when
    the arms are equally long (None otherwise)."""
    if d_ids is None or ref_ids is None:
        return (d, ref) if len(d) == len(ref) else None
    _, i, j = np.intersect1d(d_ids, ref_ids, assume_unique=True, return_indices=True)
    return d[i], ref[j]


def _versus(d: np.ndarray, ref: np.ndarray, size: int | None, replicates: int, seed: int,
            paired: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Difference from the control arm and, if asked, replicate-trial power.

    ``ci95`` is Welch's interval from the arms' spreads: what a parallel trial with this many patients
    per arm would report. ``paired`` (the two arms' rows of the patients in both, matched: every
    parallel run gives each arm the same virtual patients) adds ``paired_ci95``, the interval of the
    mean of each patient's own difference: how precisely the run pins down the model's average
    effect, much narrower since the patients' baselines and rater draws cancel; replicate trials then
    randomise distinct patients between the arms."""
    diff = float(np.mean(d) - np.mean(ref))
    out = {"difference_vs_control": {"mean": round(diff, 3), "ci95": None}}
    if min(len(d), len(ref)) >= 2:
        _, lo, hi = welch_interval(d, ref)
        out["difference_vs_control"]["ci95"] = [round(lo, 3), round(hi, 3)]
        if paired is not None and len(paired[0]) >= 2:
            out["difference_vs_control"]["paired_ci95"] = _mean_ci(paired[0] - paired[1])["ci95"]
        out["sample_size_per_arm_80pct_power"] = planned_sample_size(diff, float(np.var(d, ddof=1)),
                                                                     float(np.var(ref, ddof=1)))
    treated, control = paired if paired is not None else (d, ref)
    usable = min(size or 0, len(treated) // 2, len(control) // 2)
    if size is not None and usable >= 2:
        out["replicate_trials"] = {"patients_per_arm": usable, "requested": size, "replicates": replicates,
                                   "share_significant": replicate_power(treated, control, usable, replicates, seed,
                                                                        paired is not None)}
    return out


def clinical_summary(results: list[ArmResult]) -> list[dict] | None:
    """Per arm: scales at each visit (mean, 5th-95th percentile), change from baseline at the last
    visit (mean and 95 % CI of the mean), symptom prevalence and mean severity per region."""
    arms = [r for r in results if r.clinical]
    if not arms:
        return None
    out = []
    for r in arms:
        scales = {}
        for k in SCALES:
            v = r.clinical[k]
            lo, hi = np.percentile(v, [5, 95], axis=0)
            scales[k] = {"mean": np.round(v.mean(axis=0), 3).tolist(), "p05": np.round(lo, 3).tolist(),
                         "p95": np.round(hi, 3).tolist(),
                         "change_at_last_visit": _mean_ci(v[:, -1] - v[:, 0])}
        symptoms = {k: {"baseline": round(float(np.mean(r.clinical[k][:, 0] > PRESENT)), 3),
                        "last_visit": round(float(np.mean(r.clinical[k][:, -1] > PRESENT)), 3)} for k in SYMPTOMS}
        severity = r.region_severity_sum / r.n
        regions = {reg: {"baseline": round(float(severity[0, i]), 3), "last_visit": round(float(severity[-1, i]), 3)}
                   for i, reg in enumerate(REGIONS)}
        out.append({"arm": r.name, "visit_days": r.visit_days.tolist(), "scales": scales,
                    "symptom_prevalence": symptoms, "region_severity_mean": regions,
                    "circuit_unconverged_patient_visits": r.unconverged})
    return out
