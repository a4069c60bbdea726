"""Verdicts from the model's numbers, one function per rule kind, and from the evidence.

Each model rule returns ``(verdict, reason, numbers)``; ``reason`` is one sentence built from the
numbers. The final verdict combines the model's and the literature's (`combine`). Thresholds live in
claims.yaml with their reasons; nothing here knows which claim it grades.
"""

from __future__ import annotations

import numpy as np

from ..circuit.phenotypes import PHENOTYPES
from ..clinical_summary import PRESENT
from ..products import THC_SYSTEMIC_PARAMETERS, Food, Route, thc_oral_equivalent
from . import spec
from .context import ClaimsContext, addiction_risks, levodopa_key, typical_patient

RANK = {"supported": 0, "partly supported": 1, "unknown": 2, "not supported": 3}


def _q(x: float) -> float:
    return float(f"{x:.3g}")


def _spread(values: np.ndarray) -> dict:
    lo, mid, hi = np.percentile(values, [5, 50, 95])
    return {"median": _q(mid), "p05": _q(lo), "p95": _q(hi)}


def _ends(values) -> tuple[float, float]:
    """The 5th and 95th percentiles (unrounded: verdicts compare them with thresholds)."""
    lo, hi = np.percentile(np.asarray(values, dtype=float), [5, 95])
    return float(lo), float(hi)


def within_uncertainty(verdict: str, reason: str, ends: tuple[str, str], what: str) -> tuple[str, str]:
    """A verdict stands only if the rule gives it at both ends of its numbers' 90 % parameter-
    uncertainty intervals (``ends``: the verdicts there); otherwise the model cannot decide: unknown.
    ``what`` says what was drawn."""
    other = [v for v in dict.fromkeys(ends) if v != verdict]
    if not other:
        return verdict, f"{reason}; holds within parameter uncertainty ({what})"
    return "unknown", f"{reason}; but within parameter uncertainty ({what}) it could be {' or '.join(other)}"


def _drawn(doc: dict, kept: int) -> str:
    return f"{kept} of {doc['draws']} draws of {len(doc['factors'])} parameters"


# --- engagement: a target or tone quantity at the article's dose classes -------------------------

def class_effects(rule: spec.Engagement, ctx: ClaimsContext, classes: dict[str, spec.DoseClass]) -> dict:
    """Per dose class, the arm and quantity with the largest median effect in the claimed direction
    (negative when every arm and quantity moves the other way). ``effect`` is unrounded: verdicts
    compare it with thresholds; only the displayed percentiles are rounded."""
    sign = 1.0 if rule.direction == "increase" else -1.0
    out = {}
    for key, dc in classes.items():
        best = worst = None
        for arm in dc.arms:
            for q in rule.quantities:
                values = ctx.doses[arm][q]
                effect = float(sign * (np.median(values) - (1.0 if rule.scale == "fold" else 0.0)))
                entry = {"arm": arm, "quantity": q, "effect": effect, **_spread(values)}
                best = entry if best is None or effect > best["effect"] else best
                worst = entry if worst is None or effect < worst["effect"] else worst
        out[key] = best | {"most_opposite": worst}
    return out


def parameter_effects(rule: spec.Engagement, ctx: ClaimsContext, classes: dict[str, spec.DoseClass]) -> dict:
    """Per dose class, at its highest-exposure arm (listed last): the largest effect in the claimed
    direction that parameter uncertainty allows, and the smallest one it guarantees (the best
    quantity's lower 90 % bound; typical patient)."""
    sign = 1.0 if rule.direction == "increase" else -1.0
    base = 1.0 if rule.scale == "fold" else 0.0
    out = {}
    for key, dc in classes.items():
        arm = dc.arms[-1]
        spread = ctx.parameter_spread.get(arm, {})
        ends = {q: sorted(sign * (spread[q][end] - base) for end in ("p05", "p95")) for q in rule.quantities if q in spread}
        if ends:
            out[key] = {"arm": arm, "largest_effect": _q(max(e[1] for e in ends.values())),
                        "smallest_effect": _q(max(e[0] for e in ends.values())),
                        **{q: spread[q] for q in rule.quantities if q in spread}}
    return out


def engagement(rule: spec.Engagement, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    verdict, reason, numbers = _engagement(rule, ctx, claims)
    spread = parameter_effects(rule, ctx, claims.dose_classes)
    if not spread:
        return verdict, reason, numbers
    numbers["parameter_uncertainty"] = spread
    could = [k for k, v in spread.items() if v["largest_effect"] >= rule.relevant]
    if verdict == "not supported" and could:
        return ("unknown", reason + "; but within parameter uncertainty it could reach the relevant change at "
                + " and ".join(f"{claims.dose_classes[k].label} ({spread[k]['arm']}: {spread[k]['largest_effect']:.2g})"
                               for k in could),
                numbers)
    if verdict == "not supported":
        nominal = max(e["effect"] for e in numbers["by_dose"].values())   # in the claimed direction
        top = max([v["largest_effect"] for v in spread.values()] + [nominal])
        return (verdict, reason + f"; holds within parameter uncertainty (largest change at the 90 % bounds "
                f"or at the nominal values: {top:.2g})", numbers)
    reached = [k for k, e in numbers["by_dose"].items() if e["effect"] >= rule.relevant and k in spread]
    if reached and all(spread[k]["smallest_effect"] < rule.relevant for k in reached):
        return ("unknown", reason + "; but within parameter uncertainty it could stay below the relevant change "
                "(lower 90 % bound " + ", ".join(f"{spread[k]['smallest_effect']:.2g} at {spread[k]['arm']}"
                                                  for k in reached) + ")", numbers)
    return verdict, reason, numbers


def _engagement(rule: spec.Engagement, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    effects = class_effects(rule, ctx, claims.dose_classes)
    labels = {k: dc.label for k, dc in claims.dose_classes.items()}
    numbers = {"relevant_change": rule.relevant, "scale": rule.scale, "by_dose": effects}
    reached = [k for k, e in effects.items() if e["effect"] >= rule.relevant]
    opposite = [k for k, e in effects.items() if e["effect"] <= -rule.relevant]
    against = [k for k, e in effects.items() if e["most_opposite"]["effect"] <= -rule.relevant]
    largest = max(effects.values(), key=lambda e: e["effect"])
    if "consumer" in reached:
        return "supported", f"reaches the relevant change ({rule.relevant:g}) already at {labels['consumer']}", numbers
    if reached:
        return ("partly supported", f"reaches the relevant change ({rule.relevant:g}) only at "
                + " and ".join(labels[k] for k in reached) + ", not at consumer doses", numbers)
    if opposite:
        k = opposite[-1]
        return ("not supported", f"the model moves it the other way: {_describe(effects[k], rule)} at "
                f"{labels[k]}", numbers)
    text = (f"largest change {_describe(largest, rule)} (at {largest['arm']}), below the relevant "
            f"{rule.relevant:g} at every dose tested")
    if against:
        k = against[-1]
        text += f"; it moves the other way at {labels[k]}: {_describe(effects[k]['most_opposite'], rule)}"
    return "not supported", text, numbers


def _describe(e: dict, rule: spec.Engagement) -> str:
    if rule.scale == "fold":
        return f"{e['quantity']} {e['median']:.3g}-fold"
    return f"{e['quantity']} {e['median']:.2g}"


# --- trial: CBD arms against control on the primary scale ----------------------------------------

def arm_verdict(diff: dict, mic: float | None) -> str:
    """Negative differences are improvements. Supported: the CI excludes 0 and the mean reaches the
    minimal important change (MIC). Not supported: significant harm, or even the CI's best end
    misses the MIC (a bigger trial can only narrow the CI, never promote a too-small effect).
    Partly: a significant benefit whose size is uncertain against the MIC, or with no MIC known."""
    mean, ci = diff.get("mean"), diff.get("ci95")
    if mean is None or ci is None or None in ci:
        return "unknown"
    low, high = ci
    if high < 0 and mic is not None and mean <= -mic:
        return "supported"
    if low > 0 or (mic is not None and low > -mic):
        return "not supported"
    if high < 0:
        return "partly supported"
    return "unknown"


def trial(rule: spec.TrialRule, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    if ctx.trial is None:
        return "unknown", "this run has no controlled trial with a CBD arm", {}
    stats = ctx.trial.statistics
    scale = stats["primary_scale"]
    mic = claims.minimal_important_change.get(scale)
    arms = {}
    for name in ctx.trial.cbd_arms:
        diff = stats["arms"][name]["difference_vs_control"]
        arms[name] = {"difference_vs_control": diff, "verdict": arm_verdict(diff, mic.points if mic else None),
                      "share_of_replicate_trials_significant":
                          stats["arms"][name].get("replicate_trials", {}).get("share_significant")}
    for name, dose in ctx.trial.mg_per_day.items():
        arms[name]["cbd_mg_per_day"] = _q(dose)
        if arms[name]["verdict"] == "supported" and dose > claims.consumer_max_mg_per_day:
            arms[name]["verdict"] = "partly supported"      # helps, but only above the article's doses
    if mic is not None:
        for name in arms:
            _trial_parameter_bound(arms[name], ctx, name, scale, mic.points)
    best = min(arms, key=lambda a: (RANK[arms[a]["verdict"]], arms[a]["difference_vs_control"]["mean"] or 0.0))
    numbers = {"scenario": ctx.trial.scenario, "phenotype": ctx.trial.phenotype, "scale": scale,
               "day": stats["primary_day"], "minimal_important_change": mic.points if mic else None, "arms": arms}
    listed = "; ".join(f"{a} {_diff_text(v['difference_vs_control'])}" for a, v in arms.items())
    trial_size = f" of a parallel trial of {stats['patients_per_arm']} per arm" if "patients_per_arm" in stats else ""
    text = f"{scale} change vs {stats['control_arm']} at day {stats['primary_day']:g} (95 % CI{trial_size}): {listed}"
    if mic is None:
        return arms[best]["verdict"], text + "; no minimal important change is known for this scale", numbers
    bounds = [v["parameter_best_case_points"] for v in arms.values() if "parameter_best_case_points" in v]
    tail = (f"; within the drug layers' parameter uncertainty the typical patient's largest benefit is about "
            f"{max(bounds):.2f} points"
            if bounds else "")
    return arms[best]["verdict"], text + f"; the smallest change that matters is {mic.points:g} points" + tail, numbers


def _trial_parameter_bound(arm: dict, ctx: ClaimsContext, name: str, scale: str, mic: float) -> None:
    """A "not supported" arm whose best case over parameter uncertainty (typical patient, the run's
    `uncertainty.json`) would reach the minimal important change becomes unknown. The best case is
    the primary scale's expected change against control in points where the run has it; else the
    affected regions' severity change (per cent) in points of the control arm's baseline score, as
    if the scale were proportional to severity (an approximation)."""
    points = ctx.answer_uncertainty.get(f"{name}.{scale}_vs_control_points")
    percent = ctx.answer_uncertainty.get(f"{name}.severity_vs_control_pct")
    baseline = ctx.trial.control_baseline
    if points is not None:
        best = -min(points["p05"], points["p95"])
    elif percent is not None and baseline is not None:
        best = -min(percent["p05"], percent["p95"]) / 100.0 * baseline
    else:
        return
    arm["parameter_best_case_points"] = _q(best)
    if arm["verdict"] == "not supported" and best >= mic:
        arm["verdict"] = "unknown"


def _diff_text(d: dict) -> str:
    from ..report_text import mean_ci
    return mean_ci(d)


# --- threshold: a per-patient exposure against a published threshold ----------------------------

def threshold(rule: spec.Threshold, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    """Share of patients, per arm, whose largest single THC dose, as a fasted oral dose of the same
    systemic THC (`ecsim.products.thc_oral_equivalent`), is below (or above) the threshold;
    the verdict from the worst and the best arm (`_threshold_verdict`), checked against the
    parameter uncertainty of the THC content, THC's absorption and the threshold
    (`ctx.threshold_spread`)."""
    limit = ctx.registry[rule.threshold_param].value
    ratio = ctx.registry["full_spectrum_thc_to_cbd"].value
    absorption = {name: ctx.registry[name].value for name in THC_SYSTEMIC_PARAMETERS}
    fed = float(thc_oral_equivalent(absorption, Route.oral, Food.high_fat))   # as the doses were converted
    by_arm = {}
    for arm in rule.arms:
        v = ctx.doses[arm][rule.quantity]
        holds = v < limit if rule.claim_holds_when == "below" else v > limit
        by_arm[arm] = {**_spread(v), "fraction_claim_holds": _q(float(np.mean(holds))), "patients": int(len(v))}
    worst = min(a["fraction_claim_holds"] for a in by_arm.values())
    best = max(a["fraction_claim_holds"] for a in by_arm.values())
    numbers = {"threshold": limit, "unit": "mg (fasted oral equivalent)", "by_arm": by_arm,
               "cbd_mg_per_dose_reaching_threshold_at_median_thc_ratio": _q(limit / ratio),
               "cbd_mg_per_dose_reaching_threshold_at_median_thc_ratio_with_a_meal": _q(limit / ratio / fed)}
    where = f"THC per dose (as a fasted oral dose) {rule.claim_holds_when} {limit:g} mg"
    tail = (f"; at the median THC:CBD ratio ({ratio:g}) a dose carries {limit:g} mg THC from about "
            f"{limit / ratio:.0f} mg CBD taken fasted, {limit / ratio / fed:.0f} mg with a meal ({fed:g} times "
            "the THC absorbed)")
    verdict = _threshold_verdict(worst, best)
    if verdict == "supported":
        reason = f"{where} in ≥95 % of patients in every arm tested" + tail
    elif verdict == "partly supported":
        reason = f"{where} in {worst:.0%}-{best:.0%} of patients" + tail
    else:
        reason = f"{where} in at most {best:.0%} of patients" + tail
    spread = ctx.threshold_spread.get(rule.threshold_param)
    if not spread or not spread["threshold_mg"]:
        return verdict, reason, numbers
    shares = np.array([spread["arms"][arm][rule.claim_holds_when] for arm in rule.arms])   # arms x draws
    (worst_lo, worst_hi), (best_lo, best_hi) = _ends(shares.min(axis=0)), _ends(shares.max(axis=0))
    numbers["parameter_uncertainty"] = {
        "draws": spread["draws"], "draws_refused": spread["draws_refused"], "factors": spread["factors"],
        "threshold_mg": _spread(spread["threshold_mg"]),
        "fraction_claim_holds_worst_arm": _spread(shares.min(axis=0)),
        "fraction_claim_holds_best_arm": _spread(shares.max(axis=0)),
        "fraction_claim_holds_by_arm": {arm: _spread(row) for arm, row in zip(rule.arms, shares)}}
    what = (f"{_drawn(spread, shares.shape[1])} of the products, THC absorption and the threshold: share of "
            f"patients {worst_lo:.0%}-{worst_hi:.0%} in the worst arm, {best_lo:.0%}-{best_hi:.0%} in the best")
    verdict, reason = within_uncertainty(verdict, reason, (_threshold_verdict(worst_lo, best_lo),
                                                           _threshold_verdict(worst_hi, best_hi)), what)
    return verdict, reason, numbers


def _threshold_verdict(worst: float, best: float) -> str:
    """By the share of patients for whom the claim holds: in every arm at least 95 %, supported;
    in some arm at least half, partly; else not supported."""
    if worst >= 0.95:
        return "supported"
    if best >= 0.5:
        return "partly supported"
    return "not supported"


# --- prevalence: a count against prevalence estimates --------------------------------------------

def prevalence(rule: spec.Prevalence, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    """The article's count against each estimate's interval times the population: inside every
    one, supported; some, partly; none, not supported. The population's own uncertainty
    (``population_uncertainty``, relative) widens or narrows each interval: an estimate the count
    is inside for some populations in that range and outside for others leaves the verdict open."""
    people = rule.population_millions * 1e6 / 1e5
    few, many = people * (1 - rule.population_uncertainty), people * (1 + rule.population_uncertainty)
    rows = []
    for e in rule.estimates:
        low, mid, high = e.low * people, e.per_100k * people, e.high * people
        rows.append({"source": e.ref, "what": e.what, "implied_count": round(mid), "low": round(low),
                     "high": round(high), "inside": low <= rule.count <= high,
                     "inside_for_every_population": e.low * many <= rule.count <= e.high * few,
                     "inside_for_some_population": e.low * few <= rule.count <= e.high * many,
                     "article_over_estimate": _q(rule.count / mid)})
    numbers = {"article_count": rule.count, "population_millions": rule.population_millions,
               "population_uncertainty": rule.population_uncertainty, "estimates": rows}
    ratios = ", ".join(f"{r['article_over_estimate']:g}x {r['source']}" for r in rows)
    verdict = _prevalence_verdict(sum(r["inside"] for r in rows), len(rows))
    reason = {"supported": f"inside every estimate's interval ({ratios})",
              "partly supported": f"inside only the widest interval; {ratios} the central estimates",
              "not supported": f"outside every estimate's interval ({ratios})"}[verdict]
    ends = tuple(_prevalence_verdict(sum(r[k] for r in rows), len(rows))
                 for k in ("inside_for_every_population", "inside_for_some_population"))
    what = f"the estimates' 95 % intervals and the population ±{rule.population_uncertainty:.0%}"
    verdict, reason = within_uncertainty(verdict, reason, ends, what)
    return verdict, reason, numbers


def _prevalence_verdict(inside: int, total: int) -> str:
    return "supported" if inside == total else ("partly supported" if inside else "not supported")


# --- phenotypes: symptoms and causes in the typical patient --------------------------------------

def symptoms(rule: spec.Symptoms, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    """Each listed symptom must appear (score above PRESENT) in the typical patient of at least one
    form of dystonia; within parameter uncertainty, a symptom is produced for sure if the largest
    score over the forms stays above PRESENT at the 5th percentile of the draws, possibly if at the 95th."""
    forms = [p for p in PHENOTYPES if p != "normal"]
    scores = {p: typical_patient(ctx.registry, p).symptoms for p in forms}
    found = {s: [p for p in forms if scores[p][s][0, 0] > PRESENT] for s in rule.symptoms}
    numbers = {"presence_threshold": PRESENT, "produced_by": found}
    missing = [s for s, ps in found.items() if not ps]
    verdict, reason = _coverage(missing, len(found), "every listed symptom appears in at least one form of dystonia "
                                "in the model", "no modelled form produces ")
    drawn = ctx.phenotype_spread.get("numbers")
    if not drawn:
        return verdict, reason, numbers
    largest = {s: [max(d["by_phenotype"][p]["symptoms"][s] for p in forms) for d in drawn] for s in rule.symptoms}
    ends = {s: _ends(v) for s, v in largest.items()}
    numbers["parameter_uncertainty"] = _phenotype_doc(ctx.phenotype_spread, drawn, {
        "largest_score_over_forms": {s: _spread(v) for s, v in largest.items()}})
    at_ends = tuple(_coverage([s for s, e in ends.items() if not e[i] > PRESENT], len(ends), "", "")[0] for i in (0, 1))
    unsure = [s for s, (lo, hi) in ends.items() if lo <= PRESENT < hi]
    what = _drawn(ctx.phenotype_spread, len(drawn)) + " of the phenotypes and motor signs" + \
        (f"; undecided: {', '.join(unsure)}" if unsure else "")
    verdict, reason = within_uncertainty(verdict, reason, at_ends, what)
    return verdict, reason, numbers


def causes(rule: spec.Causes, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    """Each listed cause must give dystonia: one of its phenotypes' typical patient scores more
    BFMDRS movement points than the normal brain's; within parameter uncertainty, for sure if that
    excess stays above zero at the 5th percentile of the draws, possibly if at the 95th."""
    normal = float(typical_patient(ctx.registry, "normal").totals["bfmdrs_movement"][0, 0])
    scores = {c: {p: float(typical_patient(ctx.registry, p).totals["bfmdrs_movement"][0, 0]) for p in ps}
              for c, ps in rule.causes.items()}
    produces = {c: any(v > normal for v in s.values()) for c, s in scores.items()}
    numbers = {"bfmdrs_movement_normal": normal, "bfmdrs_movement_typical_patient": scores}
    missing = [c for c, ok in produces.items() if not ok]
    verdict, reason = _coverage(missing, len(produces), "each cause's phenotype produces dystonia in the typical "
                                "patient", "no dystonia from ")
    drawn = ctx.phenotype_spread.get("numbers")
    if not drawn:
        return verdict, reason, numbers
    excess = {c: [max(d["by_phenotype"][p]["bfmdrs_movement"] for p in ps) - d["by_phenotype"]["normal"]["bfmdrs_movement"]
                  for d in drawn] for c, ps in rule.causes.items()}
    ends = {c: _ends(v) for c, v in excess.items()}
    numbers["parameter_uncertainty"] = _phenotype_doc(ctx.phenotype_spread, drawn, {
        "bfmdrs_movement_above_normal": {c: _spread(v) for c, v in excess.items()}})
    at_ends = tuple(_coverage([c for c, e in ends.items() if not e[i] > 0], len(ends), "", "")[0] for i in (0, 1))
    unsure = [c for c, (lo, hi) in ends.items() if lo <= 0 < hi]
    what = _drawn(ctx.phenotype_spread, len(drawn)) + " of the phenotypes and motor signs" + \
        (f"; undecided: {', '.join(unsure)}" if unsure else "")
    verdict, reason = within_uncertainty(verdict, reason, at_ends, what)
    return verdict, reason, numbers


def _phenotype_doc(doc: dict, drawn: list, numbers: dict) -> dict:
    return {"draws": doc["draws"], "draws_refused": doc["draws_refused"], "draws_faulted": doc["draws_faulted"],
            "kept": len(drawn), "factors": doc["factors"], **numbers}


def _coverage(missing: list[str], total: int, all_found: str, missing_prefix: str) -> tuple[str, str]:
    """Supported when nothing listed is missing, partly when some is, not supported when all is."""
    if not missing:
        return "supported", all_found
    return ("partly supported" if len(missing) < total else "not supported"), missing_prefix + ", ".join(missing)


def counterexample(rule: spec.Counterexample, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    """A universal claim is partly supported if one form responds almost completely to one
    treatment (``near_complete`` fewer points), checked at both ends of the reduction's 90 %
    parameter-uncertainty interval."""
    tr = typical_patient(ctx.registry, rule.phenotype, rule.levodopa_mg_per_day, days=(0.0, 28.0))
    before, after = (float(x) for x in tr.totals[rule.scale][0])
    reduction = _reduction(before, after)
    numbers = {"phenotype": rule.phenotype, "levodopa_mg_per_day": rule.levodopa_mg_per_day, "scale": rule.scale,
               "before": before, "after_4_weeks": after, "reduction": _q(reduction)}
    text = (f"{rule.phenotype} on levodopa {rule.levodopa_mg_per_day:g} mg/day: {rule.scale} {before:g} -> "
            f"{after:g} after 4 weeks ({reduction:.0%} fewer points)")
    verdict, reason = _counterexample_verdict(reduction, rule.near_complete)
    reason = text + reason
    drawn = ctx.phenotype_spread.get("numbers")
    key = levodopa_key(rule.phenotype, rule.levodopa_mg_per_day)
    if not drawn or key not in drawn[0]["levodopa"]:
        return verdict, reason, numbers
    reductions = [_reduction(**d["levodopa"][key][rule.scale]) for d in drawn]
    lo, hi = _ends(reductions)
    numbers["parameter_uncertainty"] = _phenotype_doc(ctx.phenotype_spread, drawn, {"reduction": _spread(reductions)})
    what = (_drawn(ctx.phenotype_spread, len(drawn)) + " of the phenotypes, motor signs and levodopa response: "
            f"{lo:.0%}-{hi:.0%} fewer points")
    verdict, reason = within_uncertainty(verdict, reason, tuple(_counterexample_verdict(x, rule.near_complete)[0]
                                                               for x in (lo, hi)), what)
    return verdict, reason, numbers


def _reduction(before: float, after: float) -> float:
    """Share of the scale's points a treatment removes (0 when there was nothing to remove)."""
    return 1.0 - after / before if before > 0 else 0.0


def _counterexample_verdict(reduction: float, near_complete: float) -> tuple[str, str]:
    if reduction >= near_complete:
        return "partly supported", ": one form responds almost completely"
    return "supported", ": this form does not respond almost completely"


# --- validation: how well the model reproduces the studies behind a claim -----------------------

def validation(rule: spec.ValidationRule, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    rows = [ctx.validation.get(m, {"id": m, "missing": True}) for m in rule.metrics]
    passed = sum(bool(r.get("passed")) for r in rows)
    independent = [r for r in rows if r.get("kind") == "validation"]
    numbers = {"metrics": rows}
    text = (f"the model reproduces {passed} of {len(rows)} of these published results "
            f"({len(independent)} of them independent validation); shown to judge the model, not the claim")
    return "unknown", text, numbers


# --- adverse: excess risk of each modelled adverse effect at the article's dose classes -------------

def adverse(rule: spec.AdverseRule, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    """Per dose class and adverse event, the largest mean excess risk (over the same patients
    without the drug) at any of the class's arms; minimal means every event below ``rule.common``
    in every class, or at least at consumer doses (partly)."""
    by_class = {}
    for key, dc in claims.dose_classes.items():
        events = sorted({q[len("adverse."):] for arm in dc.arms for q in ctx.doses[arm] if q.startswith("adverse.")})
        by_class[key] = {"label": dc.label, "events": {
            ev: max((_q(float(np.mean(ctx.doses[arm][f"adverse.{ev}"]))), arm) for arm in dc.arms)
            for ev in events}}
    common = {key: {ev: x for ev, (x, _) in c["events"].items() if x >= rule.common} for key, c in by_class.items()}
    numbers = {"common_from": rule.common, "excess_risk_by_class": {
        key: {ev: {"excess_risk": x, "arm": arm} | _adverse_bounds(ctx, arm, ev) for ev, (x, arm) in c["events"].items()}
        for key, c in by_class.items()}}
    text = "; ".join(f"{c['label']}{_at_arms(c, common[key])}: "
                     + (", ".join(f"{ev.replace('_', ' ')} +{x:.1%}" for ev, x in common[key].items()) or "none")
                     for key, c in by_class.items())
    consumer = common.get("consumer", next(iter(common.values())))
    if not any(common.values()):
        verdict, reason = "supported", f"every modelled adverse effect stays below +{rule.common:.0%} at every dose"
    elif not consumer:
        verdict, reason = "partly supported", (f"below +{rule.common:.0%} at consumer doses, not above them "
                                               f"(+{rule.common:.0%} or more: {text})")
    else:
        verdict, reason = "not supported", f"+{rule.common:.0%} or more already at consumer doses ({text})"
    return _adverse_uncertainty(verdict, reason, numbers, rule, ctx, claims, by_class)


def _at_arms(dose_class: dict, shown: dict) -> str:
    """Which of the class's arms the shown excess risks come from (each event's largest): a fed arm
    has several times the fasted exposure, so the reader needs to know (the clinical review)."""
    arms = sorted({dose_class["events"][ev][1] for ev in shown})
    return f" (at {', '.join(arms)})" if arms else ""


def _adverse_bounds(ctx: ClaimsContext, arm: str, event: str) -> dict:
    """The event's excess risk at ``arm``: 90 % interval over the adverse-parameter draws, if drawn."""
    row = ctx.adverse_spread.get("arms", {}).get(arm, {}).get(event)
    return {"parameter_90pct": [_q(row["p05"]), _q(row["p95"])]} if row else {}


def _adverse_uncertainty(verdict, reason, numbers, rule, ctx, claims, by_class) -> tuple[str, str, dict]:
    """At consumer doses, the largest excess risk that parameter uncertainty allows (upper 90 %
    bound over events at the deciding arms) and the smallest it guarantees: a verdict the bounds
    cross becomes unknown."""
    spread = ctx.adverse_spread.get("arms", {})
    key = "consumer" if "consumer" in by_class else next(iter(by_class))
    bounds = [spread[arm][ev] for ev, (_, arm) in by_class[key]["events"].items() if ev in spread.get(arm, {})]
    if not bounds:
        return verdict, reason, numbers
    low, high = max(b["p05"] for b in bounds), max(b["p95"] for b in bounds)
    numbers["consumer_largest_excess_90pct_parameter_bounds"] = [_q(low), _q(high)]
    numbers["parameter_draws"] = ctx.adverse_spread.get("draws")
    numbers["parameter_factors"] = len(ctx.adverse_spread.get("factors", []))
    if (verdict == "not supported" and low < rule.common) or (verdict != "not supported" and high >= rule.common):
        return ("unknown", f"{reason}; but within parameter uncertainty the largest excess at consumer doses "
                f"spans +{low:.1%} to +{high:.1%}, across the +{rule.common:.0%} line", numbers)
    return verdict, reason, numbers


# --- addiction: modelled addiction risk of each treatment the article lists ---------------------

def addiction(rule: spec.AddictionRule, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    """Risk of addiction or dependence over ``rule.course_days`` for each listed treatment: all at
    or above ``rule.common``, supported; some, partly; none, not supported. Checked at both ends of
    each risk's 90 % interval over the painkiller and oral-agent parameters (`ctx.addiction_spread`
    for the rule's course):
    the verdict with every risk at its 5th percentile and with every risk at its 95th (the verdict
    can only rise with a risk, so these are its extremes within the intervals)."""
    risks = {name: _q(r) for name, r in addiction_risks(ctx.registry, rule.course_days).items()}
    causes = [n for n, r in risks.items() if r >= rule.common]
    numbers = {"course_days": rule.course_days, "common_from": rule.common, "addiction_or_dependence_risk": risks}
    text = "; ".join(f"{n}: {r:.1%}" for n, r in risks.items())
    verdict = _addiction_verdict(len(causes), len(risks))
    if verdict == "supported":
        reason = f"every listed treatment carries an addiction risk ({text})"
    elif verdict == "partly supported":
        reason = (f"only {', '.join(causes)} carry an addiction or dependence risk of {rule.common:.0%} or more "
                  f"over {rule.course_days:g} days ({text})")
    else:
        reason = f"no listed treatment carries an addiction risk in the model ({text})"
    spread = ctx.addiction_spread.get(rule.course_days, {})
    kept = len(next(iter(spread.get("risks", {}).values()), []))
    if not kept:
        return verdict, reason, numbers
    ends = {name: _ends(v) for name, v in spread["risks"].items()}
    numbers["parameter_uncertainty"] = {"draws": spread["draws"], "draws_refused": spread["draws_refused"],
                                        "factors": spread["factors"],
                                        "risk": {name: _spread(v) for name, v in spread["risks"].items()}}
    at_ends = tuple(_addiction_verdict(sum(e[i] >= rule.common for e in ends.values()), len(ends)) for i in (0, 1))
    unsure = [n for n, (lo, hi) in ends.items() if lo < rule.common <= hi]
    what = (f"{_drawn(spread, kept)} of the painkiller and oral-agent models"
            + "".join(f"; {n} {lo:.1%}-{hi:.1%}" for n, (lo, hi) in ends.items() if hi > 0)
            + (f"; across the {rule.common:.0%} line: {', '.join(unsure)}" if unsure else ""))
    verdict, reason = within_uncertainty(verdict, reason, at_ends, what)
    return verdict, reason, numbers


def _addiction_verdict(causing: int, listed: int) -> str:
    """Every listed treatment causes addiction, supported; some, partly; none, not supported."""
    if causing == listed:
        return "supported"
    return "partly supported" if causing else "not supported"


def no_model(rule: spec.NoModel, ctx: ClaimsContext, claims: spec.ClaimsFile) -> tuple[str, str, dict]:
    numbers = {}
    if rule.context:
        numbers["context"] = {q: {k: _spread(ctx.doses[a][q]) for k, dc in claims.dose_classes.items()
                                  for a in dc.arms[-1:]} for q in rule.context}
    return "unknown", rule.reason, numbers


MODEL_RULES = {"engagement": engagement, "trial": trial, "threshold": threshold, "prevalence": prevalence,
               "symptoms": symptoms, "causes": causes, "counterexample": counterexample,
               "validation": validation, "adverse": adverse, "addiction": addiction,
               "none": no_model}


# --- evidence and the final verdict --------------------------------------------------------------

def evidence_verdict(items: list[spec.Evidence], consumer_max: float) -> tuple[str, str]:
    """Moderate or high-quality findings decide; low-quality ones alone leave the claim unknown.
    Support found only above consumer doses makes a claim at most partly supported."""
    strong = [e for e in items if e.quality != "low"]
    sup = [e for e in strong if e.bearing == "supports"]
    con = [e for e in strong if e.bearing == "contradicts"]
    mixed = [e for e in strong if e.bearing == "mixed"]
    if not strong:
        return "unknown", "only low-quality evidence"
    high_dose = [e for e in sup if e.doses_mg_per_day and e.doses_mg_per_day[0] > consumer_max]
    dosed = [e.doses_mg_per_day[0] for e in sup + mixed if e.doses_mg_per_day]
    dose_note = (f"benefit found only at {min(dosed):g} mg/day or more"
                 if sup and len(high_dose) == len(sup) and min(dosed) > consumer_max else "")
    if sup and not con and not mixed:
        if dose_note:
            return "partly supported", dose_note
        return "supported", "moderate or better evidence supports it and none contradicts it"
    if con and not sup and not mixed:
        return "not supported", "moderate or better evidence contradicts it and none supports it"
    parts = [dose_note] if dose_note else []
    if sup and con:
        parts.append("moderate or better findings point both ways")
    elif mixed:
        parts.append("some findings are mixed" + (" and others contradict it" if con else ""))
    return "partly supported", "; ".join(parts)


SUPPORT = {"not supported": 0, "partly supported": 1, "supported": 2}


def combine(model: str, evidence: str) -> tuple[str, str]:
    """The final verdict, monotone in both inputs: where one side cannot grade the claim (unknown)
    the other decides; where they agree, that; one step apart, the more cautious (less supportive);
    supported against not supported is unknown."""
    if model == "unknown" and evidence == "unknown":
        return "unknown", "neither the model nor the evidence can grade it"
    if model == "unknown":
        return evidence, "the evidence decides (the model cannot grade this claim)"
    if evidence == "unknown":
        return model, "the model decides (the evidence is too weak to grade it)"
    if model == evidence:
        return model, "model and evidence agree"
    if abs(SUPPORT[model] - SUPPORT[evidence]) == 2:
        return "unknown", "model and evidence disagree"
    cautious = min(model, evidence, key=SUPPORT.get)
    return cautious, "model and evidence differ by one step: the more cautious verdict"
