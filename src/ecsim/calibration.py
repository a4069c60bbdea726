"""Fit the registry's `fitted` parameters to the calibration cases, and only to them.

Run ``python -m ecsim.calibration`` to see the fit, ``--write`` to store it in
``registry/parameters/fitted.yaml``. Stages run in order, each fitting a few parameters on the
log scale by weighted least squares (residual = log(simulated/observed) / tolerance). Structural
stages use the typical patient (geometric means of lognormal populations equal typical values for
exposure), the variability stage uses the virtual population. The Jacobian gives each stage's
log-scale covariance (`_covariance`, with a weak prior): each value's uncertainty (a lognormal,
stored as its CV) and the correlations of the values fitted together, which the uncertainty draws
keep (`uncertainty.problem`). ``--uncertainty-only`` recomputes those at the stored values without
refitting. Validation cases are never read.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import least_squares

from .registry import Registry, default_registry
from .validation.cases import Case, Metric, load_cases
from .validation.runner import simulate_case, simulated_value


@dataclass(frozen=True)
class Stage:
    name: str
    parameters: tuple[str, ...]
    targets: dict[str, tuple[str, ...]]     # case id -> metric ids
    typical: bool = True
    priors: tuple[tuple[str, float, float], ...] = ()   # (expression name, value, log-SD)
    diff_step: float = 1e-3   # clinical scores are rounded: they need wider finite differences
    upper: tuple[float, ...] | None = None   # absolute upper bounds (fractions that must stay below 1)


SE_CAP = 2.0   # log-SD of the weak prior around each fitted log-value: the spread of what the data do not identify

STAGES = (
    Stage("disposition and absorption",
          ("cbd_v1", "cbd_q2", "cbd_v2", "cbd_q3", "cbd_v3", "cbd_ktr", "cbd_f_oral_max", "cbd_f_oral_d50_mg",
           "cbd_food_factor_high_fat", "cbd_fed_rate_factor"),
          {"TAY18_SAD_1500": ("cbd_cmax", "cbd_auc_inf", "cbd_tmax", "cbd_t_half"),
           "TAY18_SAD_6000": ("cbd_cmax", "cbd_auc_inf", "cbd_tmax", "cbd_t_half"),
           "TAY18_FE": ("cmax_ratio", "auc_ratio"),
           "LABEL_MD_THALF": ("t_half_bid750",),
           "OHL86_IV": ("iv_t_half", "iv_auc_inf")},
          priors=(("vss", 2520.0, 0.19),)),
    Stage("metabolites", ("cbd_fm_7oh", "cbd7oh_cl", "cbd7oh_v", "cbd7cooh_cl", "cbd7cooh_v"),
          {"TAY18_SAD_1500": ("cbd7oh_cmax", "cbd7oh_auc_inf", "cbd7cooh_cmax", "cbd7cooh_auc_inf"),
           "TAY18_SAD_6000": ("cbd7oh_cmax", "cbd7oh_auc_inf", "cbd7cooh_cmax", "cbd7cooh_auc_inf")}),
    Stage("formulation", ("cbd_sedds_f_factor", "cbd_sedds_rate_factor"),
          {"KNAUB19": ("cmax_ratio", "auc0_24_ratio", "auc0_8_ratio")}),
    Stage("CYP inhibition", ("cbd_ki_cyp3a4_invivo_scale", "cbd_ki_cyp2c19_invivo_scale"),
          {"MORR19_CLB": ("nclb_auc_ratio", "clb_auc_ratio")}),
    Stage("variability", ("cbd_bsv_f_fasted", "cbd_bsv_f_fed"),
          {"TAY18_FE": ("fasted_cmax_cv", "fasted_auc_cv", "fed_cmax_cv", "fed_auc_cv")}, typical=False),
    Stage("striatal plasticity", ("plasticity_d2_ltd_gain",), {"STARR05_PD": ("gpi_rate",)},
          typical=False, diff_step=0.05),
    Stage("focal dystonia", ("pheno_focal_loop_gain", "pheno_focal_loop_gain_cv"),
          {"TRUONG05_BASELINE": ("twstrs_total_mean", "twstrs_total_sd")}, typical=False, diff_step=0.03),
    Stage("generalised dystonia", ("pheno_tor1a_corticostriatal_shift",),
          {"VIDAILHET05_BASELINE": ("bfmdrs_movement_mean",)}, typical=False, diff_step=0.03),
    Stage("toxin and placebo", ("bont_ed50_dysport_units", "placebo_max_fraction"),
          {"TRUONG05_WEEK4": ("active_change_week4", "placebo_change_week4")}, typical=False, diff_step=0.05),
    Stage("pallidal stimulation", ("dbs_fast_block", "dbs_slow_block", "dbs_slow_time"),
          {"VIDAILHET05_DBS": ("on_month3", "off_month3", "on_month12")}, typical=False, diff_step=0.05,
          upper=(0.95, 0.95, 3650.0)),
    Stage("levodopa", ("levodopa_ed50",), {"DRD_LEVODOPA": ("bfmdrs_week4_over_baseline",)}, typical=False,
          diff_step=0.05),
    Stage("trihexyphenidyl", ("thp_max_normalisation",), {"BURKE86_THP": ("responders",)}, typical=False,
          diff_step=0.05, upper=(1.0,)),
)


def tolerance_scale(metric: Metric) -> float:
    """How wide a residual the tolerance rule allows, on the log scale."""
    obs, rule = metric.observed, metric.rule
    if rule.type in ("range", "ci"):
        lo, hi = (obs.range_low, obs.range_high) if rule.type == "range" else (obs.ci_low, obs.ci_high)
        if lo <= 0 or hi <= 0:   # a range touching zero: its half-width relative to the value
            return max((hi - lo) / (2 * max(abs(obs.value), 1e-12)), 0.05)
        return max(np.log(hi / lo) / 2, 0.05)
    if rule.type == "sd":
        return max(obs.sd / obs.value, 0.05)
    if rule.type == "cv_sampling":
        return 0.25
    return rule.within


def stage_residuals(stage: Stage, cases: dict[str, Case], registry: Registry) -> np.ndarray:
    return np.array([r for r, _ in _residual_rows(stage, cases, registry)])


def smooth_rows(stage: Stage, cases: dict[str, Case], registry: Registry) -> np.ndarray:
    """Rows whose metric varies smoothly with the parameters (tmax jumps between sampling times)."""
    return np.array([smooth for _, smooth in _residual_rows(stage, cases, registry)])


def _residual_rows(stage: Stage, cases: dict[str, Case], registry: Registry) -> list[tuple[float, bool]]:
    out = []
    for case_id, metric_ids in stage.targets.items():
        case = cases[case_id]
        chunks = simulate_case(case, registry, n=None if not stage.typical else 1, typical=stage.typical)
        for metric in (m for m in case.metrics if m.id in metric_ids):
            ratio = simulated_value(metric, chunks, case.sampling_h) / metric.observed.value
            ratio = ratio if np.isfinite(ratio) and ratio > 0 else 1e-6   # changes may be negative
            smooth = metric.quantity is None or metric.quantity.measure != "tmax"
            out.append((np.log(ratio) / tolerance_scale(metric), smooth))
    for name, value, sd in stage.priors:
        out.append((np.log(_derived(name, registry) / value) / sd, True))
    return out


def _derived(name: str, registry: Registry) -> float:
    if name == "vss":
        return sum(registry[p].value for p in ("cbd_v1", "cbd_v2", "cbd_v3"))
    raise KeyError(name)


def fit_stage(stage: Stage, cases: dict[str, Case], registry: Registry, max_nfev: int | None = None,
              ftol: float = 1e-8) -> tuple[Registry, dict]:
    """Least-squares fit of one stage; returns the updated registry and a report. ``max_nfev`` and
    ``ftol`` (scipy's) allow a quicker, looser refit (joint uncertainty refits every draw)."""
    for case_id in stage.targets:
        if cases[case_id].kind != "calibration":
            raise ValueError(f"{case_id} is a validation case and must not be fitted")
    x0 = np.log([registry[p].value for p in stage.parameters])

    def with_x(x):
        return registry.with_overrides(dict(zip(stage.parameters, np.exp(x).tolist())))

    hi = x0 + 4 if stage.upper is None else np.minimum(x0 + 4, np.log(stage.upper))
    x0 = np.minimum(x0, hi - 1e-9)
    fit = least_squares(lambda x: stage_residuals(stage, cases, with_x(x)), x0, diff_step=stage.diff_step,
                        bounds=(x0 - 4, hi), x_scale=1.0, max_nfev=max_nfev, ftol=ftol)
    values = dict(zip(stage.parameters, np.exp(fit.x).tolist()))
    report = {"stage": stage.name, "cost": float(fit.cost), "values": values}
    return _refit(registry, values), report | _uncertainty_report(stage, fit.jac[smooth_rows(stage, cases, with_x(fit.x))])


def _uncertainty_report(stage: Stage, jac: np.ndarray) -> dict:
    """Each value's log-scale standard error and the stage's correlation matrix, from the Jacobian."""
    cov = _covariance(jac)
    se = np.sqrt(np.diag(cov))
    return {"se_log": dict(zip(stage.parameters, se.tolist())),
            "correlation": {"parameters": list(stage.parameters), "matrix": (cov / np.outer(se, se)).tolist()}}


def _covariance(jac: np.ndarray) -> np.ndarray:
    """Covariance of the log-parameters (residuals in tolerance units): the Laplace approximation
    inv(J'J + I / SE_CAP^2), i.e. with a weak normal prior of log-SD SE_CAP around the fit. A
    direction the data do not identify gets the prior's spread, one they do keeps theirs, and the
    correlations say which combinations are identified (Taylor 2018's metabolite data fix the
    ratio of formation to clearance, not each). Until 2026-11-26 each variance was clipped at
    SE_CAP^2 and the correlations were dropped."""
    return np.linalg.inv(jac.T @ jac + np.eye(jac.shape[1]) / SE_CAP**2)


def stage_uncertainty(stage: Stage, cases: dict[str, Case], registry: Registry) -> dict:
    """`_uncertainty_report` at the registry's current values, without refitting: the Jacobian by
    forward differences of the log-parameters with the stage's relative step (as least_squares)."""
    x0 = np.log([registry[p].value for p in stage.parameters])

    def residuals(x):
        return stage_residuals(stage, cases, registry.with_overrides(dict(zip(stage.parameters, np.exp(x).tolist()))))

    r0 = residuals(x0)
    columns = []
    for j in range(len(x0)):
        x = x0.copy()
        h = stage.diff_step * max(1.0, abs(x0[j]))
        x[j] += h
        columns.append((residuals(x) - r0) / h)
    jac = np.column_stack(columns)
    return {"stage": stage.name, "values": {p: registry[p].value for p in stage.parameters}} | \
        _uncertainty_report(stage, jac[smooth_rows(stage, cases, registry)])


def _refit(registry: Registry, values: dict[str, float]) -> Registry:
    params = dict(registry.parameters)
    for name, value in values.items():
        params[name] = params[name].model_copy(update={"value": value})
    return Registry(params, registry.references)


def calibrate(registry: Registry | None = None, only: str | None = None) -> tuple[Registry, list[dict]]:
    registry = registry or default_registry()
    cases = {c.id: c for c in load_cases()}
    reports = []
    for stage in STAGES:
        if only and only not in stage.name:
            continue
        registry, report = fit_stage(stage, cases, registry)
        reports.append(report)
        print(f"{stage.name}: cost {report['cost']:.3f}")
        for k, v in report["values"].items():
            print(f"  {k} = {v:.6g} (se log {report['se_log'][k]:.2f})")
    return registry, reports


def fitted_uncertainty(se_log: float) -> dict:
    """The registry's uncertainty entry for a fitted value with log-scale standard error ``se_log``:
    a lognormal whose log-SD is that error, stored as its CV, sqrt(exp(se^2) - 1), since the registry
    reads a lognormal's CV back as sigma = sqrt(ln(1 + cv^2)). (Until 2026-11-26 the error itself was
    stored as the CV, so se 2 was drawn with sigma 1.27.)"""
    se = float(se_log)
    cv = math.sqrt(math.expm1(se * se))
    return {"distribution": "lognormal", "cv": float(f"{cv:.3g}"),
            "basis": f"approximate standard error of the fit, {se:.3g} on the log scale (the CV is sqrt(exp(se^2) - 1)), "
                     f"with a log-SD {SE_CAP:g} prior where the data do not identify it; correlated with its stage's "
                     "other fitted values (correlations at the end of this file)"}


def write_fitted(reports: list[dict], path: Path | None = None) -> None:
    """Store fitted values and their standard errors, keeping every other field of each entry."""
    path = path or Path(str(resources.files("ecsim.registry").joinpath("parameters/fitted.yaml")))
    data = yaml.safe_load(path.read_text())
    fitted_to = {p: sorted(s.targets) for s in STAGES for p in s.parameters}
    for report in reports:
        for name, value in report["values"].items():
            entry = data["parameters"][name]
            entry["value"] = float(f"{value:.5g}")
            entry["fitted_to"] = fitted_to[name]
            entry["uncertainty"] = fitted_uncertainty(report["se_log"][name])
        if "correlation" in report:
            corr = report["correlation"]
            data.setdefault("correlations", {})[report["stage"]] = {
                "parameters": corr["parameters"], "matrix": [[round(float(x), 4) for x in row] for row in corr["matrix"]]}
    header = "".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("#"))
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=120))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="store the fit in fitted.yaml")
    parser.add_argument("--only", help="run only the stages whose name contains this text")
    parser.add_argument("--uncertainty-only", action="store_true",
                        help="recompute the standard errors and correlations at the current values, without refitting")
    args = parser.parse_args()
    if args.uncertainty_only:
        cases = {c.id: c for c in load_cases()}
        reports = [stage_uncertainty(s, cases, default_registry()) for s in STAGES
                   if not args.only or args.only in s.name]
    else:
        _, reports = calibrate(only=args.only)
    if args.write:
        write_fitted(reports)


if __name__ == "__main__":
    main()
