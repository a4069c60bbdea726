"""The claims file (claims.yaml): the article's claims, the rule that grades each from the model's
numbers, and the evidence that grades it from the literature. Validated on load; every reference
must be in the bibliography."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from ..scenario import parse_yaml_mapping, pydantic_to_input_error

Verdict = Literal["supported", "partly supported", "not supported", "unknown"]
VERDICTS: tuple[str, ...] = ("supported", "partly supported", "not supported", "unknown")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Evidence(_Strict):
    ref: str
    bearing: Literal["supports", "contradicts", "mixed"]
    quality: Literal["low", "moderate", "high"]
    finding: str
    doses_mg_per_day: tuple[float, float] | None = None


class Engagement(_Strict):
    kind: Literal["engagement"]
    quantities: list[str] = Field(min_length=1)
    scale: Literal["fraction", "fold"]
    direction: Literal["increase", "decrease"]
    relevant: float = Field(gt=0)
    reason: str
    note: str = ""


class TrialRule(_Strict):
    kind: Literal["trial"]
    reason: str


class Threshold(_Strict):
    kind: Literal["threshold"]
    quantity: Literal["thc_oral_equivalent_dose_mg"]
    threshold_param: str = Field(description="the registry parameter holding the threshold")
    claim_holds_when: Literal["below", "above"]
    arms: list[str] = Field(min_length=1)
    reason: str


class Estimate(_Strict):
    ref: str
    per_100k: float = Field(gt=0)
    low: float = Field(gt=0)
    high: float = Field(gt=0)
    what: str


class Prevalence(_Strict):
    kind: Literal["prevalence"]
    count: float = Field(gt=0)
    population_millions: float = Field(gt=0)
    population_source: str
    population_uncertainty: float = Field(default=0.0, ge=0, lt=1,
                                          description="relative half-width of the population's range")
    estimates: list[Estimate] = Field(min_length=1)
    reason: str


class Symptoms(_Strict):
    kind: Literal["symptoms"]
    symptoms: list[str] = Field(min_length=1)
    reason: str


class Causes(_Strict):
    kind: Literal["causes"]
    causes: dict[str, list[str]]
    reason: str


class Counterexample(_Strict):
    kind: Literal["counterexample"]
    phenotype: str
    levodopa_mg_per_day: float = Field(gt=0)
    scale: str
    near_complete: float = Field(gt=0, le=1)
    reason: str


class ValidationRule(_Strict):
    kind: Literal["validation"]
    metrics: list[str] = Field(min_length=1)
    reason: str


class AdverseRule(_Strict):
    kind: Literal["adverse"]
    common: float = Field(gt=0, lt=1, description="excess risk from which an adverse effect is not minimal")
    reason: str


class AddictionRule(_Strict):
    kind: Literal["addiction"]
    common: float = Field(gt=0, lt=1, description="risk from which a treatment 'causes' an adverse effect")
    course_days: float = Field(gt=0, le=3650, description="length of the course the risk is taken over")
    reason: str


class NoModel(_Strict):
    kind: Literal["none"]
    reason: str
    context: list[str] = Field(default_factory=list)


Rule = Annotated[Union[Engagement, TrialRule, Threshold, Prevalence, Symptoms, Causes, Counterexample,
                       ValidationRule, AdverseRule, AddictionRule, NoModel], Field(discriminator="kind")]


class Claim(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    category: Literal["mechanism", "efficacy", "safety", "product", "fact"]
    quote: str
    claim: str
    rule: Rule
    evidence: list[Evidence] = Field(min_length=1)


class DoseClass(_Strict):
    label: str
    arms: list[str] = Field(min_length=1)


class MinimalChange(_Strict):
    points: float = Field(gt=0)
    source: str
    reason: str


class ClaimsFile(_Strict):
    consumer_max_mg_per_day: float = Field(gt=0)
    dose_classes: dict[str, DoseClass]
    minimal_important_change: dict[str, MinimalChange]
    claims: list[Claim] = Field(min_length=1)


def load_claims(references: dict | None = None) -> ClaimsFile:
    """The packaged claims file, checked: unique ids and every reference in the bibliography."""
    text = resources.files("ecsim.claims").joinpath("claims.yaml").read_text()
    try:
        spec = ClaimsFile.model_validate(parse_yaml_mapping(text, "claims.yaml"))
    except ValidationError as exc:
        raise pydantic_to_input_error(exc) from None
    ids = [c.id for c in spec.claims]
    if len(set(ids)) != len(ids):
        raise InputError("claims.id", ids, "unique ids")
    if references is not None:
        for key in sorted(cited_keys(spec) - set(references)):
            raise InputError("claims.evidence.ref", key, "a key of registry/bibliography.yaml")
    return spec


def cited_keys(spec: ClaimsFile) -> set[str]:
    keys = {e.ref for c in spec.claims for e in c.evidence}
    keys |= {m.source for m in spec.minimal_important_change.values()}
    for c in spec.claims:
        if isinstance(c.rule, Prevalence):
            keys |= {e.ref for e in c.rule.estimates}
    return keys
