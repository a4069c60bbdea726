"""The run's HTML report: one self-contained file (figures embedded, no scripts, no network) that
answers the question with numbers and uncertainty, shows the plots, the claims, the validation, the
parameters and citations, and a plain-language summary for patients.

    html = render_report(ReportInputs(...)); write_report(path, inputs)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..registry import Registry
from ..scenario import Scenario
from ..simulation import ArmResult
from . import figures
from .html import SECTIONS, page
from .references import published_changes

__all__ = ["ReportInputs", "render_report", "SECTIONS"]


@dataclass
class ReportInputs:
    scenario: Scenario
    results: list[ArmResult]
    summary: dict
    registry: Registry
    claims: list[dict]
    validation: dict                  # the validation snapshot, with "current" added
    manifest: dict = field(default_factory=dict)
    uncertainty: dict = field(default_factory=dict)   # ecsim.uncertainty.parameter_uncertainty


def mic_points(inp: ReportInputs) -> float | None:
    """The primary scale's minimal important change (points; claims.yaml), if one is known."""
    from ..claims import load_claims
    mic = load_claims().minimal_important_change.get((inp.summary.get("trial") or {}).get("primary_scale", ""))
    return mic.points if mic else None


def render_report(inp: ReportInputs) -> str:
    """The whole report as one HTML string."""
    scale = (inp.summary.get("trial") or {}).get("primary_scale")
    phenotype = inp.scenario.population.phenotype
    refs = published_changes(scale, phenotype) if scale else []
    plots = {
        "drug-levels": figures.drug_levels(inp.results),
        "target-engagement": figures.target_engagement(inp.results),
        "tone": figures.tone(inp.results),
        "circuit": figures.circuit_rates(inp.results),
        "symptoms": figures.symptoms_over_time(inp.results),
        "scales": figures.scale_changes(inp.results, scale, refs) if scale else None,
        "uncertainty": figures.uncertainty(inp.uncertainty, inp.results, inp.summary.get("trial"), mic_points(inp)),
    }
    return page(inp, plots, refs)
