"""The claims checker: each claim of the article graded by the model's numbers and by the evidence.

    ctx = claims_context(registry, trial=trial_evidence(scenario, summary))
    rows = check_claims(ctx)

Each row: ``claim``, ``quote``, ``category``, ``verdict``, ``why`` (one sentence), ``model``
(rule, verdict, reason, numbers), ``evidence`` (each finding with its citation). docs/claims.md
explains the rules.
"""

from __future__ import annotations

from ..registry import Registry
from ..validation.snapshot import by_metric, load_snapshot
from .context import (DOSE_PATIENTS, PHENOTYPE_DRAWS, ClaimsContext, TrialEvidence, addiction_parameter_spread,
                      adverse_parameter_spread, dose_parameter_spread, doses_thc, phenotype_parameter_spread, run_doses,
                      threshold_parameter_spread, trial_evidence)
from .rules import MODEL_RULES, combine, evidence_verdict
from .spec import VERDICTS, Claim, ClaimsFile, load_claims

__all__ = ["check_claims", "claims_context", "trial_evidence", "TrialEvidence", "VERDICTS", "load_claims"]

CLAIMS_DRAWS = 256
"""Parameter sets behind each rule's 90 % interval (the phenotype rules take at most PHENOTYPE_DRAWS).
With 64 the 95th percentile of the CB1-signalling number ran from +4.7 % to +17 % between draw
designs, across the 10 % line; with 256 it stays near +8.5 %. The algebraic rules and the typical
patient's engagement cost about 6 s more than with 64 on the 2-core machine, the phenotype rules'
128 draws (16 before) about 7 s."""


def claims_context(registry: Registry, trial: TrialEvidence | None = None, patients: int = DOSE_PATIENTS,
                   seed: int | None = None, uncertainty_draws: int = CLAIMS_DRAWS, spec: ClaimsFile | None = None,
                   answer_uncertainty: dict | None = None) -> ClaimsContext:
    """Simulate the article's doses (``patients`` per dose) and gather the trial and validation
    numbers the rules need; ``answer_uncertainty`` is the run's `parameter_uncertainty` document.
    With ``uncertainty_draws`` (0 skips it), each rule's numbers also get their parameter
    uncertainty: that many parameter sets for the engagement (typical patient at each dose class's
    highest-exposure arm), adverse, threshold and addiction rules, at most PHENOTYPE_DRAWS for the
    symptoms, causes and counterexample rules (each draw re-solves the circuit for every phenotype)."""
    spec = spec or load_claims()
    ctx = ClaimsContext(registry, run_doses(registry, patients, seed), patients, trial, by_metric(load_snapshot()))
    ctx.answer_uncertainty = (answer_uncertainty or {}).get("intervals", {})
    if not uncertainty_draws:
        return ctx
    rules = [c.rule for c in spec.claims]
    draw_seed = 1 if seed is None else seed
    quantities = sorted({q for r in rules if r.kind == "engagement" for q in r.quantities})
    arms = [dc.arms[-1] for dc in spec.dose_classes.values()]
    ctx.parameter_spread = dose_parameter_spread(registry, arms, quantities, uncertainty_draws, draw_seed)
    if any(r.kind == "adverse" for r in rules):
        every = [a for dc in spec.dose_classes.values() for a in dc.arms]
        ctx.adverse_spread = adverse_parameter_spread(registry, ctx.doses, every, uncertainty_draws, draw_seed,
                                                      thc_dose=doses_thc(patients, seed))
    for param in sorted({r.threshold_param for r in rules if r.kind == "threshold"}):
        tested = sorted({a for r in rules if r.kind == "threshold" and r.threshold_param == param for a in r.arms})
        ctx.threshold_spread[param] = threshold_parameter_spread(registry, patients, seed, tested, param,
                                                                 uncertainty_draws, draw_seed)
    if any(r.kind in ("symptoms", "causes", "counterexample") for r in rules):
        levodopa = [(r.phenotype, r.levodopa_mg_per_day) for r in rules if r.kind == "counterexample"]
        ctx.phenotype_spread = phenotype_parameter_spread(registry, min(uncertainty_draws, PHENOTYPE_DRAWS),
                                                          draw_seed, levodopa)
    for days in sorted({r.course_days for r in rules if r.kind == "addiction"}):
        ctx.addiction_spread[days] = addiction_parameter_spread(registry, days, uncertainty_draws, draw_seed)
    return ctx


def check_claims(ctx: ClaimsContext, spec: ClaimsFile | None = None) -> list[dict]:
    """Every claim with its final verdict, the model's part and the evidence's part."""
    spec = spec or load_claims(ctx.registry.references)
    return [check_claim(c, ctx, spec) for c in spec.claims]


def check_claim(claim: Claim, ctx: ClaimsContext, spec: ClaimsFile) -> dict:
    model_verdict, model_reason, numbers = MODEL_RULES[claim.rule.kind](claim.rule, ctx, spec)
    ev_verdict, ev_reason = evidence_verdict(claim.evidence, spec.consumer_max_mg_per_day)
    verdict, how = combine(model_verdict, ev_verdict)
    return {
        "id": claim.id, "category": claim.category, "claim": claim.claim, "quote": claim.quote,
        "verdict": verdict,
        "why": f"{how}. Model: {model_reason}. Evidence: {ev_reason}.",
        "model": {"rule": claim.rule.kind, "verdict": model_verdict, "reason": model_reason,
                  "threshold_reason": claim.rule.reason, "note": getattr(claim.rule, "note", ""),
                  "numbers": numbers},
        "evidence": {"verdict": ev_verdict, "reason": ev_reason,
                     "items": [_evidence_item(e, ctx.registry) for e in claim.evidence]},
    }


def _evidence_item(e, registry: Registry) -> dict:
    ref = registry.references[e.ref]
    return {"ref": e.ref, "citation": ref.citation, "locator": ref.locator, "checked": ref.checked,
            "bearing": e.bearing, "quality": e.quality, "finding": e.finding,
            "doses_mg_per_day": list(e.doses_mg_per_day) if e.doses_mg_per_day else None}
