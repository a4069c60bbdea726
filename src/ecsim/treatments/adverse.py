"""Adverse-effect risk from exposure: per patient, the probability of each adverse event over a
regimen, from the patient's own steady-state exposure on top of a background (placebo) rate.

CBD events (somnolence, diarrhoea, decreased appetite, ALT > 3x ULN) follow a logistic
exposure-response on the last-day average plasma CBD concentration C (ng/mL)::

    logit P = logit p0 + S(C) * (Emax + Emax_clobazam * K + Emax_valproate * V)
    S(C)    = C^h / (C^h + EC50^h)

K = 1 when the patient takes clobazam (seen as N-desmethylclobazam in the exposure), V = 1 with
valproate (a flag: valproate has no PK model; its interaction is pharmacodynamic). Without CBD,
S = 0 and P = p0 whatever the co-medication: the model holds no excess for the co-medications
themselves, only for CBD and its interactions. p0, Emax and EC50 are fitted (`calibrate`) to the
Epidiolex label's pooled placebo / 10 / 20 mg/kg/day rates in Lennox-Gastaut and Dravet syndrome,
on the exposures this model simulates for that population.

THC psychoactivity: each person has a threshold single oral dose, lognormal across people; the
published LOAEL (2.5 mg, `thc_impairment_threshold_mg`) is taken as its 10th percentile. P is the
chance that the largest single THC dose of the regimen exceeds the patient's threshold.

Worsened parkinsonism: P = f * D^h / (D^h + D50^h) on the daily CBD dose D (mg/day), after Consroe
1986 (uncontrolled, n = 5: low quality): the 2 patients with parkinsonian features both worsened
above 300 mg/day, the 3 without did not, so f is taken per patient from their phenotype
(`circuit.phenotypes.PARKINSONIAN`: 2 of 2 with, 0 of 3 without, each with its Wilson interval).

Equations, numbers, sources, calibration and validation: docs/adverse.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit, ndtr, ndtri

from ..intervals import mean_interval, welch_interval
from ..registry import Registry, default_registry

EVENTS = ("somnolence", "diarrhoea", "decreased_appetite", "alt_over_3x_uln", "thc_psychoactive",
          "parkinsonism_worse")
CBD_EVENTS = {"somnolence": "adverse_somnolence", "diarrhoea": "adverse_diarrhoea",
              "decreased_appetite": "adverse_appetite", "alt_over_3x_uln": "adverse_alt"}
CBD_EXPOSURE = "cbd_plasma_ng_per_ml.cavg"
PARKINSONIAN = "parkinsonian_features"   # per patient, 1 or 0 (`simulation.patient_inputs`)
CLOBAZAM_EXPOSURE = "nclb_plasma_ng_per_ml.cavg"
THC_DOSE = "max_single_thc_oral_equivalent_mg"   # the LOAEL is a fasted oral dose


@dataclass(frozen=True)
class ExposureResponse:
    """Logistic Emax exposure-response of one CBD event (parameters ``<prefix>_<name>``)."""

    p0: float
    emax: float
    ec50_ng_per_ml: float
    hill: float
    clobazam_emax: float = 0.0
    valproate_emax: float = 0.0

    @classmethod
    def from_registry(cls, registry: Registry, prefix: str) -> "ExposureResponse":
        def get(name: str, unit: str = "dimensionless", default: float | None = None) -> float:
            key = f"{prefix}_{name}"
            if default is not None and key not in registry.parameters:
                return default
            return registry.value(key, unit)
        return cls(get("p0"), get("emax"), get("ec50", "ng/mL"), get("hill"),
                   get("clobazam_emax", default=0.0), get("valproate_emax", default=0.0))

    def fraction(self, c: np.ndarray) -> np.ndarray:
        """S(C) in [0, 1]; 0 without CBD."""
        return _hill(c, self.ec50_ng_per_ml, self.hill)

    def probability(self, c: np.ndarray, clobazam: np.ndarray | bool = False,
                    valproate: np.ndarray | bool = False) -> np.ndarray:
        effect = (self.emax + self.clobazam_emax * np.asarray(clobazam, dtype=float)
                  + self.valproate_emax * np.asarray(valproate, dtype=float))
        return expit(logit(self.p0) + self.fraction(c) * effect)


def _dose(x) -> np.ndarray:
    """Exposure or dose as floats, missing (NaN) and negative values read as none."""
    x = np.asarray(x, dtype=float)
    return np.where(np.isnan(x) | (x < 0), 0.0, x)


def _hill(x, x50: float, h: float) -> np.ndarray:
    """x^h / (x^h + x50^h), computed on the log scale: 0 at x = 0, 1 at x = inf, no overflow."""
    with np.errstate(divide="ignore"):
        return expit(h * (np.log(_dose(x)) - np.log(x50)))


def thc_psychoactive(oral_equivalent_mg: np.ndarray, registry: Registry) -> np.ndarray:
    """Chance that the largest single THC dose, as a fasted oral dose of the same systemic THC
    (`ecsim.products.thc_oral_equivalent`), exceeds the patient's own threshold (lognormal across
    people; the LOAEL, an oral dose, is its `adverse_thc_loael_quantile` quantile)."""
    loael = registry.value("thc_impairment_threshold_mg", "mg")
    sigma = registry.value("adverse_thc_threshold_log_sd", "dimensionless")
    q = registry.value("adverse_thc_loael_quantile", "dimensionless")
    median = loael * np.exp(-sigma * ndtri(q))
    with np.errstate(divide="ignore"):
        z = (np.log(_dose(oral_equivalent_mg)) - np.log(median)) / sigma
    return ndtr(z)   # log(0) = -inf gives exactly 0


def parkinsonism_worse(daily_mg: np.ndarray, parkinsonian: np.ndarray, registry: Registry) -> np.ndarray:
    """Chance of worsened parkinsonism at a daily CBD dose (Consroe 1986; low quality), for patients
    with (``parkinsonian`` 1) or without (0) parkinsonian features."""
    with_features = registry.value("adverse_parkinsonism_fraction", "dimensionless")
    without = registry.value("adverse_parkinsonism_fraction_without_features", "dimensionless")
    d50 = registry.value("adverse_parkinsonism_d50", "mg/d")
    h = registry.value("adverse_parkinsonism_hill", "dimensionless")
    return np.where(np.asarray(parkinsonian) > 0, with_features, without) * _hill(daily_mg, d50, h)


def adverse_effects(exposure: dict[str, np.ndarray], arm_doses_mg_per_day: np.ndarray,
                    registry: Registry | None = None, *, valproate: bool | np.ndarray = False
                    ) -> dict[str, np.ndarray]:
    """Per patient, the probability of each event of `EVENTS` over the regimen, each in [0, 1].

    ``exposure``: per-patient metrics of `ecsim.exposure.exposure_metrics` (reads
    ``cbd_plasma_ng_per_ml.cavg``, ``max_single_thc_oral_equivalent_mg``, ``nclb_plasma_ng_per_ml.cavg`` if present,
    and ``parkinsonian_features`` if present: 0, no parkinsonian features, where absent);
    ``arm_doses_mg_per_day``: CBD taken per day, per patient (`daily_cbd_mg`); ``valproate``: the
    patients take valproate (one flag, or one per patient).
    """
    registry = registry or default_registry()
    c = np.asarray(exposure[CBD_EXPOSURE], dtype=float)
    n = c.shape[0]
    clobazam = np.asarray(exposure.get(CLOBAZAM_EXPOSURE, np.zeros(n)), dtype=float) > 0
    vpa = np.broadcast_to(np.asarray(valproate, dtype=bool), (n,))
    out = {event: ExposureResponse.from_registry(registry, prefix).probability(c, clobazam, vpa)
           for event, prefix in CBD_EVENTS.items()}
    out["thc_psychoactive"] = thc_psychoactive(exposure[THC_DOSE], registry)   # required: no silent 0 for a renamed key
    out["parkinsonism_worse"] = parkinsonism_worse(np.broadcast_to(arm_doses_mg_per_day, (n,)),
                                                   exposure.get(PARKINSONIAN, np.zeros(n)), registry)
    return {event: np.clip(out[event], 0.0, 1.0) for event in EVENTS}


def adverse_summary(per_arm: dict[str, dict[str, np.ndarray]], control: str | None = None) -> dict:
    """Per arm and event: mean risk over patients with the 95 % interval of patients' risks
    (2.5th-97.5th percentile) and the 95 % CI of the mean; with ``control``, the excess mean risk
    over that arm with its Welch 95 % CI (`ecsim.intervals`; none with fewer than 2 patients in an arm)."""
    if control is not None and control not in per_arm:
        raise KeyError(f"control arm {control!r} is not one of {sorted(per_arm)}")
    out: dict = {}
    for arm, risks in per_arm.items():
        out[arm] = {}
        for event, p in risks.items():
            p = np.asarray(p, dtype=float)
            p = p[np.isfinite(p)]
            row = _describe(p)
            if control is not None and arm != control and event in per_arm[control]:
                q = np.asarray(per_arm[control][event], dtype=float)
                q = q[np.isfinite(q)]
                nan = float("nan")
                diff, lo, hi = (welch_interval(p, q) if min(p.size, q.size) > 1 else   # no spread: no interval
                                (float(p.mean() - q.mean()) if p.size and q.size else nan, nan, nan))
                row["excess_vs_control"] = diff
                row["excess_ci95"] = [lo, hi]
            out[arm][event] = row
    return out


def _describe(p: np.ndarray) -> dict:
    if p.size == 0:
        nan = float("nan")
        return {"mean": nan, "interval95": [nan, nan], "mean_ci95": [nan, nan], "n": 0}
    m, low, high = mean_interval(p)
    lo, hi = (float(x) for x in np.percentile(p, [2.5, 97.5]))
    return {"mean": m, "interval95": [lo, hi], "mean_ci95": [low, high], "n": int(p.size)}


def daily_cbd_mg(arm, values: dict[str, np.ndarray], grid) -> np.ndarray:
    """CBD taken per day at the end of the run (the last 24 h of doses), per patient: labelled dose
    (mg, or mg/kg x body weight) x the product's actual content (``label_content_factor``).

    ``arm``: a scenario `Arm`; ``values``: per-patient values with ``body_weight_kg`` and
    ``label_content_factor`` (`Chunk.values`); ``grid``: the run's `Grid` (`simulation.grid_for`).
    """
    from ..regimen import dose_times, step_mg
    weight = np.asarray(values["body_weight_kg"], dtype=float)
    content = np.asarray(values.get("label_content_factor", np.ones_like(weight)), dtype=float)
    start = grid.t_end_h - 24.0
    total = np.zeros_like(weight)
    for step in arm.cbd:
        count = sum(1 for t in dose_times(step, grid) if start - 1e-9 <= t < grid.t_end_h - 1e-9)
        total = total + count * step_mg(step, weight)
    return total * content


# ---------------------------------------------------------------------------------------------
# Calibration: the Epidiolex label's pooled controlled trials in LGS and DS (calibration data).

LABEL_N = {"placebo": 227, "mgkg10": 75, "mgkg20": 238}
"""Safety population per arm of the label's pooled table (from memory of the 2018 label; not read)."""

LABEL_COMED = {"clobazam": 0.5, "valproate": 0.4}
"""Share of trial patients on clobazam and on valproate (assumption: about half and 40 % in GWPCARE1,
3 and 4; drawn independently)."""

LABEL_RATES = {
    # event: {group: observed fraction}; groups are arms, or co-medication subgroups of all CBD patients
    "somnolence": {"placebo": 0.11, "mgkg10": 0.27, "mgkg20": 0.34, "cbd_clobazam": 0.46, "cbd_no_clobazam": 0.16},
    "diarrhoea": {"placebo": 0.09, "mgkg10": 0.09, "mgkg20": 0.20},
    "decreased_appetite": {"placebo": 0.05, "mgkg10": 0.16, "mgkg20": 0.22},
    "alt_over_3x_uln": {"placebo": 0.01, "mgkg10": 0.01, "mgkg20": 0.17, "cbd_both": 0.30,
                        "cbd_valproate_only": 0.21, "cbd_clobazam_only": 0.04, "cbd_neither": 0.03},
}
"""Epidiolex US label (2018): section 5.2 (somnolence and sedation including lethargy; by dose and
by clobazam), table 3 rows (diarrhoea, decreased appetite), section 5.1 (ALT > 3x ULN by dose and by
concomitant valproate and clobazam). See docs/adverse.md for what was read where."""

FITTED = {"somnolence": ("p0", "emax", "ec50", "clobazam_emax"),
          "diarrhoea": ("p0", "emax", "ec50"),
          "decreased_appetite": ("p0", "emax", "ec50"),
          "alt_over_3x_uln": ("emax", "ec50", "clobazam_emax", "valproate_emax")}
"""Fitted per event; the ALT background is the label's placebo rate (measured), the Hill coefficients are fixed (registry assumptions): two dose levels cannot
identify them."""

EMAX_MAX = 5.0
"""Upper bound of every fitted Emax on the log-odds scale (an odds ratio of about 150): beyond it
the label's two dose levels cannot tell a larger Emax from a larger EC50 (assumption)."""


def label_population(registry: Registry | None = None, n: int = 400, seed: int = 2018) -> dict[str, np.ndarray]:
    """Simulated steady-state CBD Cavg (ng/mL) of the label's trial population at 10 and 20
    mg/kg/day, and co-medication flags per patient. Population as in the DEV18 case (low-fat meal,
    titration ignored), widened to the LGS ages: weight 35 +/- 15 kg (13-90 kg, assumption)."""
    from ..exposure import exposure_metrics
    from ..scenario import Scenario
    from ..simulation import simulate_chunk
    registry = registry or default_registry()
    arms = [{"name": name, "product": "pharmaceutical", "route": "oral", "food": "low_fat",
             "cbd": [{"dose": f"{dose} mg/kg", "times_h": [8, 20]}]} for name, dose in (("mgkg10", 5), ("mgkg20", 10))]
    sc = Scenario.model_validate({"name": "label-population", "duration_days": 14, "output_step_h": 1,
                                  "population": {"n": n, "seed": seed, "weight_mean_kg": 35.0, "weight_sd_kg": 15.0,
                                                 "weight_min_kg": 13.0, "weight_max_kg": 90.0},
                                  "arms": arms})
    out = {}
    for arm in sc.arms:
        chunk = simulate_chunk(sc, arm, 0, n, registry=registry)
        out[arm.name] = exposure_metrics(chunk.times_h, chunk.outputs, chunk.values)[CBD_EXPOSURE]
    rng = np.random.default_rng(seed)
    out["clobazam"] = rng.random(n) < LABEL_COMED["clobazam"]
    out["valproate"] = rng.random(n) < LABEL_COMED["valproate"]
    return out


def label_group_rates(model: ExposureResponse, pop: dict[str, np.ndarray]) -> dict[str, float]:
    """Model rates of the label's groups (arms and co-medication subgroups of CBD patients)."""
    k, v = pop["clobazam"], pop["valproate"]
    p = {arm: model.probability(pop[arm], k, v) for arm in ("mgkg10", "mgkg20")}
    w10 = LABEL_N["mgkg10"] / (LABEL_N["mgkg10"] + LABEL_N["mgkg20"])
    pooled = lambda mask: float(w10 * p["mgkg10"][mask].mean() + (1 - w10) * p["mgkg20"][mask].mean())  # noqa: E731
    return {"placebo": model.p0, "mgkg10": float(p["mgkg10"].mean()), "mgkg20": float(p["mgkg20"].mean()),
            "cbd_clobazam": pooled(k), "cbd_no_clobazam": pooled(~k), "cbd_both": pooled(k & v),
            "cbd_valproate_only": pooled(v & ~k), "cbd_clobazam_only": pooled(k & ~v), "cbd_neither": pooled(~k & ~v)}


def _group_n(group: str) -> float:
    cbd = LABEL_N["mgkg10"] + LABEL_N["mgkg20"]
    fc, fv = LABEL_COMED["clobazam"], LABEL_COMED["valproate"]
    share = {"cbd_clobazam": fc, "cbd_no_clobazam": 1 - fc, "cbd_both": fc * fv, "cbd_valproate_only": fv * (1 - fc),
             "cbd_clobazam_only": fc * (1 - fv), "cbd_neither": (1 - fc) * (1 - fv)}
    return LABEL_N[group] if group in LABEL_N else cbd * share[group]


def calibrate(registry: Registry | None = None, n: int = 400) -> dict[str, dict[str, tuple[float, float]]]:
    """Fit each CBD event's parameters to `LABEL_RATES` (binomial least squares on the simulated
    label population). Returns {event: {parameter: (value, approximate log-scale SE)}}."""
    from scipy.optimize import least_squares
    registry = registry or default_registry()
    pop = label_population(registry, n)
    result = {}
    for event, names in FITTED.items():
        prefix = CBD_EVENTS[event]
        base = ExposureResponse.from_registry(registry, prefix)
        observed = LABEL_RATES[event]

        def model_of(x: np.ndarray) -> ExposureResponse:
            vals = dict(zip(names, np.exp(x)))
            fields = {"p0": "p0", "emax": "emax", "ec50": "ec50_ng_per_ml", "hill": "hill",
                      "clobazam_emax": "clobazam_emax", "valproate_emax": "valproate_emax"}
            return ExposureResponse(**{**base.__dict__, **{fields[k]: v for k, v in vals.items()}})

        def residuals(x: np.ndarray) -> np.ndarray:
            sim = label_group_rates(model_of(x), pop)
            return np.array([(sim[g] - obs) / np.sqrt(max(obs * (1 - obs), 0.01 * 0.99) / _group_n(g))
                             for g, obs in observed.items()])

        start = {"p0": base.p0, "emax": max(base.emax, 0.1), "ec50": base.ec50_ng_per_ml, "hill": base.hill,
                 "clobazam_emax": max(base.clobazam_emax, 0.1), "valproate_emax": max(base.valproate_emax, 0.1)}
        x0 = np.log([start[k] for k in names])
        lower = np.log([{"p0": 1e-3}.get(k, 1e-3) for k in names])
        upper = np.log([{"p0": 0.5, "ec50": 5000.0}.get(k, EMAX_MAX) for k in names])
        fit = least_squares(residuals, np.clip(x0, lower + 1e-6, upper - 1e-6), bounds=(lower, upper))
        j = fit.jac
        try:
            se = np.sqrt(np.diag(np.linalg.pinv(j.T @ j)))
        except np.linalg.LinAlgError:
            se = np.full(len(names), np.inf)
        result[event] = {k: (float(np.exp(v)), float(s)) for k, v, s in zip(names, fit.x, se)}
    return result


def main() -> None:
    """`python -m ecsim.treatments.adverse`: refit and print the values with the model's label rates."""
    registry = default_registry()
    fits = calibrate(registry)
    pop = label_population(registry)
    for event, params in fits.items():
        print(event)
        for k, (v, se) in params.items():
            print(f"  {CBD_EVENTS[event]}_{k}: {v:.4g}  (log-scale SE {se:.2f})")
        model = ExposureResponse.from_registry(registry, CBD_EVENTS[event])
        sim = label_group_rates(model, pop)
        for g, obs in LABEL_RATES[event].items():
            print(f"    registry model {g}: {sim[g]:.3f} vs label {obs:.2f}")


if __name__ == "__main__":
    main()
