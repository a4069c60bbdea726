"""The study case-file format (YAML). Documented for outside authors in docs/case-files.md."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ..circuit.clinical import clinical_output_names
from ..errors import InputError
from ..scenario import Scenario, _Strict, parse_yaml_mapping, pydantic_to_input_error, read_text_file
from ..treatments.adverse import EVENTS

Statistic = Literal["geometric_mean", "arithmetic_mean", "median", "geometric_cv", "arithmetic_cv",
                    "arithmetic_sd", "fraction_positive", "fraction_at_most"]


class Quantity(_Strict):
    """A summary over simulated patients of one measure of one output in one arm.

    Drug and tone outputs take an NCA measure; clinical outputs (scale totals, firing rates,
    ``severity.<region>``, symptoms) take ``visit`` with ``at_day`` and need a phenotype.
    """

    arm: str
    output: str
    measure: Literal["cmax", "tmax", "cmin", "auc_last", "auc_inf", "t_half", "c_at", "visit"]
    statistic: Statistic = "geometric_mean"
    window_h: tuple[float, float] | None = None
    at_h: float | None = None
    at_day: float | None = None
    change_from_day: float | None = Field(default=None, description="visit: report the change since this visit")
    relative: bool = Field(default=False, description="with change_from_day: change as a fraction of that visit's value")
    at_most: float | None = Field(default=None, description="threshold of the fraction_at_most statistic")

    @model_validator(mode="after")
    def _at(self) -> "Quantity":
        if (self.measure == "c_at") != (self.at_h is not None):
            raise ValueError("measure c_at needs at_h, and only c_at takes at_h")
        if (self.measure == "visit") != (self.at_day is not None):
            raise ValueError("measure visit needs at_day, and only visit takes at_day")
        if self.change_from_day is not None and self.measure != "visit":
            raise ValueError("change_from_day goes with measure visit")
        if self.relative and self.change_from_day is None:
            raise ValueError("relative needs change_from_day")
        if (self.statistic == "fraction_at_most") != (self.at_most is not None):
            raise ValueError("statistic fraction_at_most needs at_most, and only it takes at_most")
        if self.change_from_day is not None and self.statistic in ("geometric_mean", "geometric_cv"):
            raise ValueError("a change can be negative: use an arithmetic statistic with change_from_day")
        return self


class AdverseQuantity(_Strict):
    """The share of an arm's patients with an adverse event: the mean over simulated patients of
    each one's risk from `ecsim.treatments.adverse.adverse_effects` (the expected proportion).

    The risks read the last 24 h of the run (steady-state exposure), so the scenario should last as
    long as the study's dosing. Clobazam and valproate enter the CBD events as flags: a patient
    whose arm doses clobazam is on it; ``clobazam_share`` and ``valproate_share`` add the share of
    patients the study reports on them (independently, as flags only, without their PK).
    """

    arm: str
    event: Literal[EVENTS]
    clobazam_share: float = Field(default=0.0, ge=0, le=1, description="share of patients also on clobazam")
    valproate_share: float = Field(default=0.0, ge=0, le=1, description="share of patients on valproate")


class Observed(_Strict):
    """The published value and its spread; give what the paper gives."""

    value: float
    sd: float | None = Field(default=None, ge=0)
    cv_pct: float | None = Field(default=None, ge=0)
    ci_low: float | None = None
    ci_high: float | None = None
    range_low: float | None = None
    range_high: float | None = None
    n: int | None = Field(default=None, ge=1)
    events: int | None = Field(default=None, ge=0, description="patients with the event (binomial rule)")
    source_detail: str = ""


class Rule(_Strict):
    """Tolerance rule (DESIGN §4): ``ci``, ``relative`` (±within as a fraction), ``absolute`` (±within
    in the quantity's own unit; must be given), ``range``, ``sd``, ``cv_sampling``, ``binomial``
    (observed events of n: the simulated proportion inside their 95 % Wilson interval) or ``null_result``
    (a `difference_of` that the study found null: replicate trials of the study's size, observed.n
    patients analysed, must come out null, P >= 0.05, in at least half of ``replicates``)."""

    type: Literal["ci", "relative", "absolute", "range", "sd", "cv_sampling", "binomial", "null_result"]
    within: float = Field(default=0.25, gt=0)
    replicates: int = Field(default=2000, ge=100, le=100_000, description="replicate trials of the null rule")

    @model_validator(mode="after")
    def _absolute_needs_within(self) -> "Rule":
        if self.type == "absolute" and "within" not in self.model_fields_set:
            raise ValueError("rule absolute needs within (the allowed distance, in the quantity's unit)")
        return self


KINDS = ("quantity", "ratio_of", "correlation_of", "difference_of", "adverse")


class Metric(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    quantity: Quantity | None = None
    ratio_of: tuple[Quantity, Quantity] | None = None
    correlation_of: tuple[Quantity, Quantity] | None = Field(
        default=None, description="Spearman correlation across patients of two per-patient values")
    difference_of: tuple[Quantity, Quantity] | None = Field(
        default=None, description="the first quantity's summary minus the second's (e.g. treatment - placebo)")
    adverse: AdverseQuantity | None = Field(default=None,
                                            description="share of an arm's patients with an adverse event")
    observed: Observed
    rule: Rule
    note: str = ""

    @model_validator(mode="after")
    def _one(self) -> "Metric":
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of " + ", ".join(KINDS))
        missing = [f for f in RULE_NEEDS[self.rule.type] if getattr(self.observed, f) is None]
        if missing:
            raise ValueError(f"rule {self.rule.type} needs observed.{' and observed.'.join(missing)}")
        return self

    def quantities(self) -> list[Quantity]:
        """The quantities summarised over patients (none for an adverse measure)."""
        if self.quantity:
            return [self.quantity]
        return list(self.ratio_of or self.correlation_of or self.difference_of or ())

    def arms(self) -> list[str]:
        return [q.arm for q in self.quantities()] + ([self.adverse.arm] if self.adverse else [])


def _check_binomial(metric: str, obs: "Observed") -> None:
    """Events at most n, and the observed value their proportion (to the 2 decimals papers print)."""
    if obs.events > obs.n:
        raise InputError(f"metrics.{metric}.observed.events", obs.events, f"at most observed.n ({obs.n})")
    if abs(obs.value - obs.events / obs.n) > 0.005 + 1e-12:
        raise InputError(f"metrics.{metric}.observed.value", obs.value, f"the proportion events/n = "
                         f"{obs.events}/{obs.n} = {obs.events / obs.n:.4g} (binomial rule)")


def _check_null(m: "Metric", scenario: Scenario) -> None:
    """A null rule compares two arms, with at least two patients in each replicate group; in a
    crossover, of two sequences (AB/BA, the Hills-Armitage test)."""
    if m.difference_of is None:
        raise InputError(f"metrics.{m.id}.rule.type", "null_result", "a rule of difference_of metrics (a null trial "
                         "compares two arms)")
    if m.observed.n < 4:
        raise InputError(f"metrics.{m.id}.observed.n", m.observed.n, "at least 4 patients analysed (two per group)")
    c = scenario.trial.crossover
    sequences = (c.sequences or [[a.name for a in scenario.arms]] * len(scenario.arms)) if c is not None else None
    if sequences is not None and (len(sequences) != 2 or any(len(q) != 2 for q in sequences)):
        raise InputError(f"metrics.{m.id}.rule.type", "null_result", "a rule for two-sequence (AB/BA) crossovers")


@lru_cache(maxsize=1)
def drug_output_names() -> frozenset[str]:
    """Outputs of the drug and endocannabinoid layers (what the NCA measures apply to)."""
    from ..chain import full_model
    return frozenset(full_model().outputs)


def case_span_days(scenario: Scenario) -> float:
    """Days a case's quantities read: the whole run, or in a crossover one period (an arm is read
    on the period it is taken in, day 0 = the period's first day; `runner.crossover_chunks`)."""
    c = scenario.trial.crossover
    return scenario.duration_days if c is None else float(c.period_days)


def case_visit_days(scenario: Scenario) -> list[float]:
    """Visit days a quantity may name: the scenario's, or in a crossover the days from a period's
    first day that are visits in every period (the first and last day always are)."""
    days = scenario.visit_days()
    if scenario.trial.crossover is None:
        return days
    from ..designs import period_bounds
    within = [{round(d - a, 6) for d in days if a - 1e-9 <= d <= b + 1e-9} for a, b in period_bounds(scenario)]
    return sorted(set.intersection(*within))


def _check_crossover_case(scenario: Scenario, metrics: list["Metric"]) -> None:
    """What a crossover case cannot read, refused by field: adverse events (their covariates, such
    as the largest single THC dose, belong to the whole sequence, not to one period) and a time
    grid that does not put every period's first day on it."""
    if scenario.trial.crossover is None:
        return
    for m in metrics:
        if m.adverse is not None:
            raise InputError(f"metrics.{m.id}.adverse", m.adverse.event, "nothing in a crossover case (the adverse "
                             "risks read covariates of the whole sequence); use a parallel case")
    if abs(24 / scenario.output_step_h - round(24 / scenario.output_step_h)) > 1e-9:
        raise InputError("scenario.output_step_h", scenario.output_step_h,
                         "a step that divides 24 h in a crossover case (every period must start on the grid)")


def _check_clinical(metric: str, q: Quantity, scenario: Scenario, sampling_h: list[float]) -> None:
    """Clinical outputs only at visits that exist, and only with a phenotype; NCA only on drug
    outputs, at times inside the simulated span, over windows that hold sampling times."""
    clinical = clinical_output_names()
    where = f"metrics.{metric}"
    if q.measure != "visit":
        if q.output in clinical:
            raise InputError(f"{where}.measure", q.measure, f"visit (with at_day): {q.output} is a clinical output")
        if q.output not in drug_output_names():
            raise InputError(f"{where}.output", q.output, "a drug or tone output of the model, e.g. "
                             "cbd_plasma_ng_per_ml or faah_inhibition (list in docs/case-files.md)")
        end = case_span_days(scenario) * 24
        if q.at_h is not None and not 0 <= q.at_h <= end:
            raise InputError(f"{where}.at_h", q.at_h, f"an hour from 0 to {end:g} (the scenario's duration, "
                                                        "or a crossover's period)")
        if q.measure != "c_at":
            lo, hi = q.window_h if q.window_h is not None else (0.0, end)
            if not 0 <= lo < hi:
                raise InputError(f"{where}.window_h", list(q.window_h), "[start, end] hours with 0 <= start < end")
            inside = [t for t in sampling_h if lo - 1e-9 <= t <= min(hi, end) + 1e-9]
            if len(inside) < 2:
                raise InputError(f"{where}.window_h", [lo, hi], "a window holding at least two of sampling_h "
                                 f"within the simulated {end:g} h")
        return
    if scenario.population.phenotype is None:
        raise InputError(f"{where}.measure", q.measure, "an NCA measure, or set scenario.population.phenotype")
    if q.output not in clinical:
        raise InputError(f"{where}.output", q.output, "a clinical output listed in docs/case-files.md")
    days = case_visit_days(scenario)
    period = " of every period, counted from its first day" if scenario.trial.crossover is not None else ""
    for name, day in (("at_day", q.at_day), ("change_from_day", q.change_from_day)):
        if day is not None and min(abs(day - d) for d in days) > 1e-9:
            raise InputError(f"{where}.{name}", day, f"a visit day{period}: " + ", ".join(f"{d:g}" for d in days))


RULE_NEEDS = {"ci": ("ci_low", "ci_high"), "relative": (), "absolute": (), "range": ("range_low", "range_high"),
              "sd": ("sd",), "cv_sampling": ("n",), "binomial": ("events", "n"), "null_result": ("n",)}


class Case(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    citation: str = Field(description="bibliography key or a full citation with DOI/PMID")
    kind: Literal["calibration", "validation"]
    description: str = ""
    assumptions: list[str] = Field(default_factory=list)
    n_simulated: int = Field(default=300, ge=1, le=20000)
    sampling_h: list[float] = Field(min_length=2, max_length=2000)
    scenario: Scenario
    metrics: list[Metric] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _arms(self) -> "Case":
        arms = {a.name for a in self.scenario.arms}
        for m in self.metrics:
            for arm in m.arms():
                if arm not in arms:
                    raise ValueError(f"metric {m.id}: arm {arm!r} is not one of {sorted(arms)}")
            for q in m.quantities():
                _check_clinical(m.id, q, self.scenario, self.sampling_h)
            if m.rule.type == "binomial":
                _check_binomial(m.id, m.observed)
            if m.rule.type == "null_result":
                _check_null(m, self.scenario)
        _check_crossover_case(self.scenario, self.metrics)
        return self

    @model_validator(mode="after")
    def _sampling(self) -> "Case":
        end = case_span_days(self.scenario) * 24
        for a, b in zip(self.sampling_h, self.sampling_h[1:]):
            if not b > a:
                raise InputError("sampling_h", b, f"hours in increasing order (after {a:g})")
        if not 0 <= self.sampling_h[0] or self.sampling_h[-1] > end + 1e-9:
            raise InputError("sampling_h", self.sampling_h, f"hours from 0 to {end:g} (the scenario's duration, "
                             "or a crossover's period)")
        return self


def load_case(path: Path) -> Case:
    data = parse_yaml_mapping(read_text_file(path, "case file"), str(path))
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        err = pydantic_to_input_error(exc, Case)
        raise InputError(f"{path.name}: {err.field}", err.value, err.allowed) from None


def load_cases(folder: Path | None = None) -> list[Case]:
    """Every ``*.yaml`` case in ``folder`` (default: the project's own cases), sorted by file name."""
    if folder is None:
        root = resources.files("ecsim.data.cases")
        files = sorted((p for p in root.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
        return [load_case(Path(str(p))) for p in files]
    try:
        is_dir = folder.is_dir()
    except (OSError, ValueError):   # a name too long, a NUL byte in it
        is_dir = False
    if not is_dir:
        raise InputError("--cases", str(folder), "an existing folder of *.yaml case files")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise InputError("--cases", str(folder), "a folder holding at least one *.yaml case file")
    return [load_case(p) for p in files]
