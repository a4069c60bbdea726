"""Scenario files: YAML validated with pydantic, units checked with pint at the boundary.

Doses are quantities: ``"25 mg"``, ``"10 mg/kg"`` or a bare number (mg). Schedules follow the
protocol rule: each dosing step is active on days [from_day, to_day); steps of one drug must not
overlap. See docs/scenarios.md for every field.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .circuit.phenotypes import PHENOTYPES
from .circuit.regions import REGIONS
from . import safe_yaml
from .errors import InputError
from .population import CYP2C19, Hepatic
from .products import Food, Formulation, Product, Route
from .units import convert, registry as unit_registry

MAX_PATIENTS = 10_000_000
MAX_FILE_BYTES = safe_yaml.MAX_BYTES
MAX_DOSE_MG = 100_000.0
"""Largest single dose, 100 g: 16 times the largest studied (6000 mg CBD, Taylor 2018)."""
MAX_DOSE_MG_PER_KG = 1_000.0
"""Largest weight-based single dose: 10 times the largest rodent doses in the case files."""
MAX_OUTPUT_TIMES = 100_000
"""Most output times per patient (duration / output_step_h): two years at 10-minute steps; the
engine keeps every state at each, so a 1e-6 h step would need terabytes."""
MAX_VISITS = 1_000
"""Most clinical visits (duration / visit_interval_days): daily visits for two years."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data):
        """pydantic reads true/false as 1/0 in number fields; a YAML 'yes' there is a mistake."""
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                given = data.get(name)
                items = given if isinstance(given, list) else [given]
                if any(isinstance(x, bool) for x in items) and not _mentions_bool(field.annotation):
                    raise InputError(name, given, f"{_describe_type(field.annotation)}, not true/false")
        return data


def _mentions_bool(tp) -> bool:
    return tp is bool or any(_mentions_bool(a) for a in get_args(tp))


DOSE_WORDS = "an amount with a unit, e.g. '25 mg' or '5 mg/kg'"
"""What a dose is, in error messages."""


def _mentions_dose(tp) -> bool:
    return tp is Dose or any(_mentions_dose(a) for a in get_args(tp))


def _describe_type(tp) -> str:
    text = str(tp)
    if _mentions_dose(tp):
        return f"a list of doses, each {DOSE_WORDS}" if "list" in text else f"a dose: {DOSE_WORDS}"
    if "list" in text:
        return "a list of numbers"
    if tp is str:
        return "text"
    if tp in (int, float) or "float" in text or "int" in text:
        return "a number"
    return "one of the values in docs/scenarios.md"


class Dose(_Strict):
    """A fixed amount (mg) or a weight-based amount (mg/kg)."""

    mg: float = Field(default=0.0, ge=0, le=MAX_DOSE_MG)
    mg_per_kg: float = Field(default=0.0, ge=0, le=MAX_DOSE_MG_PER_KG)

    @classmethod
    def parse(cls, given: object, field: str) -> "Dose":
        if isinstance(given, (int, float)) and not isinstance(given, bool):
            return cls(mg=_amount(float(given), given, field, MAX_DOSE_MG, "mg"))
        if not isinstance(given, str):
            raise InputError(field, given, "a dose like '25 mg', '10 mg/kg' or a number of mg")
        number, _, unit = given.strip().partition(" ")
        try:
            number = float(number)
        except ValueError:
            raise InputError(field, given, "a dose like '25 mg' or '10 mg/kg'") from None
        if not 0 <= number < float("inf"):   # the message says what is wrong with a negative dose
            raise InputError(field, given, "a dose of 0 or more, like '25 mg' or '10 mg/kg'")
        value = number
        unit = unit.strip() or "mg"
        dims = unit_registry().Unit(unit).dimensionality if _is_unit(unit) else None
        if dims == unit_registry().Unit("mg").dimensionality:
            return cls(mg=_amount(convert(value, unit, "mg", field=field), given, field, MAX_DOSE_MG, "mg"))
        if dims is not None and not dims:
            return cls(mg_per_kg=_amount(convert(value, unit, "mg/kg", field=field), given, field,
                                         MAX_DOSE_MG_PER_KG, "mg/kg"))
        raise InputError(field, given, "a mass ('mg', 'g', 'ug' or 'mcg') or a mass per body weight ('mg/kg')")


def _amount(value: float, given: object, field: str, limit: float, unit: str) -> float:
    if not 0 <= value <= limit:
        raise InputError(field, given, f"a dose from 0 to {limit:g} {unit}")
    return value


class DosingStep(_Strict):
    """Doses at ``times_h`` (hours after midnight) on days [from_day, to_day)."""

    dose: Dose
    times_h: list[Annotated[float, Field(ge=0, lt=24)]] = Field(min_length=1, max_length=24)
    from_day: int = Field(default=0, ge=0)
    to_day: int | None = Field(default=None, ge=1)

    @field_validator("dose", mode="before")
    @classmethod
    def _dose(cls, v):
        if isinstance(v, (Dose, dict)):   # {mg: ..., mg_per_kg: ...}: as written by model_dump
            return v
        return Dose.parse(v, "dose")

    @model_validator(mode="after")
    def _order(self) -> "DosingStep":
        if self.to_day is not None and self.to_day <= self.from_day:
            raise InputError("to_day", self.to_day,
                             f"a day after from_day ({self.from_day}), or no to_day (to the end)")
        return self


class CoMedication(_Strict):
    """Another drug on its own schedule: clobazam, PF-04457845 (oral irreversible FAAH inhibitor) or
    nabilone (oral synthetic CB1/CB2 agonist)."""

    drug: Literal["clobazam", "pf04457845", "nabilone"]
    steps: list[DosingStep] = Field(min_length=1, max_length=50)


class Interventions(_Strict):
    """Experimental manipulations of the endocannabinoid system (study cases, what-if questions)."""

    faah_inhibition: float = Field(default=0.0, ge=0, le=1, description="1 = FAAH knockout")
    magl_inhibition: float = Field(default=0.0, ge=0, le=1)
    d2_agonist_occupancy: float = Field(default=0.0, ge=0, le=1)
    cbd_fixed_free_nM: float = Field(default=0.0, ge=0, le=1e7, description="in-vitro CBD on top of PK")
    cb1_agonist_occupancy: float = Field(default=0.0, ge=0, le=0.99,
                                         description="a synthetic full CB1 agonist (WIN 55,212-2) at this occupancy")
    trihexyphenidyl_mg_per_day: float = Field(default=0.0, ge=0, le=120, description="from day 0")
    levodopa_mg_per_day: float = Field(default=0.0, ge=0, le=3000,
                                       description="levodopa (with a decarboxylase inhibitor) from day 0")
    clonazepam_mg_per_day: float = Field(default=0.0, ge=0, le=20,
                                         description="oral clonazepam from day 0 (label maximum 20 mg/day)")
    baclofen_mg_per_day: float = Field(default=0.0, ge=0, le=180,
                                       description="oral baclofen from day 0 (up to 180 mg/day, as in children with dystonia)")


class Botulinum(_Strict):
    """A course of botulinum toxin injections into one region's muscles."""

    product: Literal["abobotulinumtoxinA", "onabotulinumtoxinA", "incobotulinumtoxinA"] = "abobotulinumtoxinA"
    units: float = Field(gt=0, le=2000, description="units per session, in the product's own units")
    region: Literal[REGIONS] = "neck"
    first_day: float = Field(default=0.0, ge=0)
    every_days: float = Field(default=84.0, ge=28, le=730, description="reinjection interval (at least 4 weeks)")


class Stimulation(_Strict):
    """Bilateral GPi stimulation, switched on on ``from_day`` (and off on ``to_day``). ``sham``: the
    device is implanted but left off, patients and raters blinded (the arm's ratings carry the
    expectation response, and stimulation has no effect)."""

    from_day: float = Field(default=0.0, ge=0)
    to_day: float | None = Field(default=None, gt=0)
    sham: bool = Field(default=False, description="implanted, stimulation off, blinded (sham-controlled trials)")

    @model_validator(mode="after")
    def _order(self) -> "Stimulation":
        if self.to_day is not None and self.to_day <= self.from_day:
            raise InputError("to_day", self.to_day,
                             f"a day after from_day ({self.from_day:g}), or no to_day (on to the end)")
        return self


class Physiotherapy(_Strict):
    """Specialised physiotherapy of one region from ``from_day`` (e.g. the Bleton technique in
    cervical dystonia, Counsell 2016): a modest, slowly developing reduction of the region's net
    dystonic pull (docs/treatments.md)."""

    region: Literal[REGIONS] = "neck"
    from_day: float = Field(default=0.0, ge=0, le=730)


class Painkiller(_Strict):
    """A painkiller at a fixed daily dose from ``from_day``: it lowers the pain items only (TWSTRS pain,
    the 'pain' symptom), not the motor signs; opioids lose effect to tolerance and carry a risk of
    misuse and addiction (docs/treatments.md)."""

    drug: Literal["paracetamol", "ibuprofen", "tramadol", "morphine"]
    mg_per_day: float = Field(gt=0, le=4000, description="daily dose in mg of the drug (morphine: oral)")
    from_day: float = Field(default=0.0, ge=0, le=730)

    @model_validator(mode="after")
    def _dose_limit(self) -> "Painkiller":
        from .treatments.painkillers import MAX_MG_PER_DAY
        top = MAX_MG_PER_DAY[self.drug]
        if self.mg_per_day > top:
            raise InputError("mg_per_day", self.mg_per_day, f"at most {top:g} mg/day of {self.drug}")
        return self


TITRATION_EVENTS = ("somnolence", "diarrhoea", "decreased_appetite", "alt_over_3x_uln", "thc_psychoactive",
                    "parkinsonism_worse")
"""The modelled adverse events (`ecsim.treatments.adverse.EVENTS`) a titration may call dose-limiting."""


RISING_LEVELS = "rising doses of one kind (all mg or all mg/kg)"


def _rising_of_one_kind(levels: list[Dose]) -> bool:
    """Titration levels: each dose larger than the one before, all in mg or all in mg/kg."""
    kinds = {("mg" if d.mg > 0 else "mg/kg") for d in levels if d.mg > 0 or d.mg_per_kg > 0}
    amounts = [d.mg + d.mg_per_kg for d in levels]
    return len(kinds) <= 1 and not any(d.mg > 0 and d.mg_per_kg > 0 for d in levels) and \
        all(b > a for a, b in zip(amounts, amounts[1:]))


def _dose_text(dose: Dose) -> str:
    """A dose with its unit, as a scenario file would write it ('5 mg/kg', '10 mg')."""
    return f"{dose.mg_per_kg:g} mg/kg" if dose.mg_per_kg > 0 else f"{dose.mg:g} mg"


class Titration(_Strict):
    """Dose titration of one drug through ``levels`` (dose per administration at ``times_h``), one
    level every ``step_days``. ``forced``: up to the top level whatever happens. ``flexible``
    (response-guided): up one level at each step until the patient responds (the primary scale
    improved by ``trial.responder_fraction``) or has a dose-limiting adverse effect, then held
    (`ecsim.designs`, docs/scenarios.md)."""

    drug: Literal["cbd", "thc", "clobazam", "pf04457845", "nabilone"] = "cbd"
    levels: list[Dose] = Field(min_length=2, max_length=12)
    times_h: list[Annotated[float, Field(ge=0, lt=24)]] = Field(min_length=1, max_length=24)
    step_days: int = Field(gt=0, le=365, description="days between escalation visits")
    rule: Literal["forced", "flexible"] = "flexible"
    dose_limiting: list[Literal[TITRATION_EVENTS]] = Field(
        default=list(TITRATION_EVENTS), max_length=len(TITRATION_EVENTS),
        description="adverse events that stop escalation (flexible rule); [] escalates on response only")

    @field_validator("levels", mode="before")
    @classmethod
    def _levels(cls, v):
        if not isinstance(v, list):
            raise InputError("levels", v, "a list of doses like ['2.5 mg/kg', '5 mg/kg']")
        levels = [x if isinstance(x, (Dose, dict)) else Dose.parse(x, "levels") for x in v]
        if all(isinstance(x, Dose) for x in levels) and not _rising_of_one_kind(levels):
            raise InputError("levels", v, RISING_LEVELS)   # the doses as the user wrote them
        return levels

    @model_validator(mode="after")
    def _rising(self) -> "Titration":
        """Levels written as mappings ({mg: 5}) reach this check only after validation."""
        if not _rising_of_one_kind(self.levels):
            raise InputError("levels", [_dose_text(d) for d in self.levels], RISING_LEVELS)
        return self

    def step(self, level: int, last: int) -> DosingStep:
        """Level ``level`` (0-based) of a forced escalation that stops at level ``last``."""
        return DosingStep(dose=self.levels[level], times_h=self.times_h, from_day=level * self.step_days,
                          to_day=None if level == last else (level + 1) * self.step_days)


MEAL_ROUTES = (Route.oral, Route.oromucosal)
"""Routes whose absorption a meal changes (`ecsim.products`: bioavailability and oral absorption rate)."""
FORMULATION_ROUTES = (Route.oral,)
"""Routes a formulation other than oil applies to (SEDDS: oral bioavailability and absorption rate)."""


class Arm(_Strict):
    """One product at one regimen, given to the whole population."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")
    product: Product = Product.pharmaceutical
    route: Route = Route.oral
    food: Food = Food.fasted
    formulation: Formulation = Formulation.oil
    cbd: list[DosingStep] = Field(default_factory=list, max_length=50)
    thc: list[DosingStep] = Field(default_factory=list, max_length=50)
    comedication: list[CoMedication] = Field(default_factory=list, max_length=5)
    interventions: Interventions = Interventions()
    botulinum: Botulinum | None = None
    gpi_stimulation: Stimulation | None = None
    physiotherapy: Physiotherapy | None = None
    painkiller: Painkiller | None = None
    titration: Titration | None = None

    @model_validator(mode="after")
    def _meal_and_formulation_fit_the_route(self) -> "Arm":
        """A meal or a formulation the route ignores would be a silent no-op: refused. The neutral
        values (fasted, oil) suit every route, so their defaults never trigger this."""
        if self.food is not Food.fasted and self.route not in MEAL_ROUTES:
            raise InputError("food", self.food.value, f"fasted with route {self.route.value} (a meal changes only "
                             f"{' and '.join(r.value for r in MEAL_ROUTES)} absorption)")
        if self.formulation is not Formulation.oil and self.route not in FORMULATION_ROUTES:
            raise InputError("formulation", self.formulation.value, f"oil with route {self.route.value} (the "
                             f"{self.formulation.value} formulation changes only oral absorption)")
        return self

    @model_validator(mode="after")
    def _titrated_drug_has_no_steps(self) -> "Arm":
        t = self.titration
        if t is None:
            return self
        given = self.cbd if t.drug == "cbd" else self.thc if t.drug == "thc" else \
            [c for c in self.comedication if c.drug == t.drug]
        if given:
            field = t.drug if t.drug in ("cbd", "thc") else "comedication"
            raise InputError(field, "set", f"nothing for {t.drug}: titration gives its doses")
        return self

    def forced(self, top: int | None = None) -> "Arm":
        """This arm with its titration written out as dosing steps: one level every step, up to
        level ``top`` (0-based; default the last) and held there."""
        t = self.titration
        top = len(t.levels) - 1 if top is None else top
        steps = [t.step(k, top) for k in range(top + 1)]
        update = {"titration": None}
        if t.drug in ("cbd", "thc"):
            update[t.drug] = steps
        else:
            update["comedication"] = [*self.comedication, CoMedication(drug=t.drug, steps=steps)]
        return self.model_copy(update=update)


class Dropout(_Strict):
    """Per-patient withdrawal: a constant weekly hazard, raised by each patient's adverse-effect
    risk (docs/treatments.md). Trial statistics then report completers and intention-to-treat with
    the last observation carried forward."""

    weekly_hazard: float | None = Field(default=None, ge=0, le=0.5,
                                        description="withdrawals per patient-week (default: the registry's dropout_weekly_hazard)")
    adverse_effects: bool = Field(default=True, description="adverse-effect risk raises the hazard")


class Crossover(_Strict):
    """A crossover trial: each patient takes the arms in the order of one sequence, one period each,
    with a washout (no treatment) between periods; patients are randomised to sequences.
    docs/scenarios.md, `ecsim.designs`."""

    period_days: int = Field(gt=0, le=365, description="length of each treatment period (whole days)")
    washout_days: int = Field(default=0, ge=0, le=365, description="untreated days between periods")
    sequences: list[Annotated[list[Annotated[str, Field(min_length=1, max_length=60)]],
                              Field(min_length=2, max_length=6)]] | None = Field(
        default=None, min_length=2, max_length=12,
        description="orders of arm names; default: every rotation of the arms (AB/BA for two)")


class Trial(_Strict):
    """Trial conduct: expectation (placebo) response, control arm and primary scale for statistics."""

    placebo_response: bool = Field(default=False, description="every arm's ratings include a placebo response")
    control_arm: str | None = Field(default=None, description="arm the others are compared with")
    primary_scale: Literal["bfmdrs_movement", "twstrs_total", "jrs"] | None = None
    responder_fraction: float = Field(default=0.25, gt=0, lt=1,
                                      description="improvement of the primary scale that makes a responder")
    primary_day: float | None = Field(default=None, ge=0, description="visit of the primary end point (default: last)")
    sample_size_per_arm: int | None = Field(default=None, ge=2, le=100_000,
                                            description="replicate trials of this size are drawn from the virtual arms")
    replicates: int = Field(default=500, ge=10, le=100_000)
    dropout: Dropout | None = Field(default=None, description="withdrawal over the trial (off by default)")
    crossover: Crossover | None = Field(default=None, description="a crossover design (default: parallel arms)")


INCLUSION_SCALES = ("bfmdrs_movement", "bfmdrs_disability", "twstrs_severity", "twstrs_disability", "twstrs_pain",
                    "twstrs_total", "jrs")


class Inclusion(_Strict):
    """Who is enrolled: a baseline score of ``scale`` from ``at_least`` to ``at_most``, rated at
    screening (the baseline visit, untreated). Candidates are drawn in patient order until
    ``population.n`` meet it (`ecsim.designs.enrolment`)."""

    scale: Literal[INCLUSION_SCALES] | None = Field(default=None, description="default: the trial's primary scale")
    at_least: float | None = Field(default=None, ge=0, le=1000)
    at_most: float | None = Field(default=None, ge=0, le=1000)

    @model_validator(mode="after")
    def _bounds(self) -> "Inclusion":
        if self.at_least is None and self.at_most is None:
            raise InputError("at_least", None, "a lower (at_least) or upper (at_most) bound on the baseline score")
        if self.at_least is not None and self.at_most is not None and self.at_most < self.at_least:
            raise InputError("at_most", self.at_most, f"at least at_least ({self.at_least:g})")
        return self

    def describe(self, scale: str) -> str:
        parts = ([f">= {self.at_least:g}"] if self.at_least is not None else []) + \
            ([f"<= {self.at_most:g}"] if self.at_most is not None else [])
        return f"baseline {self.scale or scale} {' and '.join(parts)}"


class Population(_Strict):
    n: int = Field(default=200, ge=1, le=MAX_PATIENTS)
    seed: int = Field(default=20261126, ge=0, lt=2**32)   # one 32-bit word: streams are keyed [seed, block]
    weight_mean_kg: float = Field(default=80.0, gt=2, lt=300)
    weight_sd_kg: float = Field(default=16.0, ge=0, lt=100)
    weight_min_kg: float = Field(default=40.0, gt=1, lt=300)
    weight_max_kg: float = Field(default=160.0, gt=1, lt=400)
    hepatic: Hepatic = Hepatic.normal
    cyp2c19: CYP2C19 = CYP2C19.population
    typical: bool = Field(default=False, description="every patient is the typical patient (no spread)")
    phenotype: Literal[tuple(PHENOTYPES)] | None = Field(
        default=None, description="form and cause of dystonia; none: drug levels and tone only")
    phenotype_mix: dict[Literal[tuple(PHENOTYPES)], Annotated[float, Field(gt=0, le=1e6)]] | None = Field(
        default=None, min_length=2, max_length=len(PHENOTYPES),
        description="phenotype -> weight: each patient's phenotype is drawn with these weights")
    inclusion: Inclusion | None = Field(default=None, description="baseline-score inclusion criterion (screening)")

    @model_validator(mode="before")
    @classmethod
    def _main_phenotype(cls, data):
        """With a mix and no ``phenotype``, the mix's largest component names the population
        (labels, the default primary scale); ties go to the first in alphabetical order."""
        if isinstance(data, dict) and data.get("phenotype") is None and isinstance(data.get("phenotype_mix"), dict):
            mix = data["phenotype_mix"]
            if mix and all(k in PHENOTYPES and isinstance(v, (int, float)) and not isinstance(v, bool)
                           for k, v in mix.items()):   # else the mix's own error names what is wrong
                data = {**data, "phenotype": max(sorted(mix), key=lambda k: mix[k])}
        return data

    @model_validator(mode="after")
    def _weights_in_order(self) -> "Population":
        """Weights are drawn normal and clipped to [min, max]: min above max would give every patient
        the maximum, and a mean outside the bounds a pile at one of them."""
        if self.weight_min_kg >= self.weight_max_kg:
            raise InputError("weight_min_kg", self.weight_min_kg, f"below weight_max_kg ({self.weight_max_kg:g})")
        if not self.weight_min_kg <= self.weight_mean_kg <= self.weight_max_kg:
            raise InputError("weight_mean_kg", self.weight_mean_kg,
                             f"from weight_min_kg to weight_max_kg ({self.weight_min_kg:g} to {self.weight_max_kg:g})")
        return self

    @model_validator(mode="after")
    def _mix_names_the_phenotype(self) -> "Population":
        if self.phenotype_mix is not None and self.phenotype not in self.phenotype_mix:
            raise InputError("phenotype", self.phenotype,
                             f"one of the mix's phenotypes ({', '.join(self.phenotype_mix)})")
        return self


class Scenario(_Strict):
    """A population, one or more arms, a duration and optional parameter overrides."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    species: Literal["human", "rat", "mouse"] = "human"
    duration_days: float = Field(gt=0, le=730)
    output_step_h: float = Field(default=1.0, gt=0, le=24)
    visit_interval_days: float = Field(default=7.0, gt=0, le=365,
                                       description="days between clinical visits (circuit and scales)")
    population: Population = Population()
    arms: list[Arm] = Field(min_length=1, max_length=20)
    parameters: dict[str, float | str] = Field(default_factory=dict)
    trial: Trial = Trial()

    @field_validator("parameters", mode="before")
    @classmethod
    def _overrides(cls, given):
        """Names, units and ranges of parameter overrides are checked against the registry here,
        when the file is read, not when the simulation starts."""
        if not isinstance(given, dict):
            raise InputError("parameters", given, "a mapping of parameter name to value, e.g. {cbd_cl: '80 L/h'}")
        for name, value in given.items():
            if not isinstance(name, str):
                raise InputError("parameters", name, "parameter names listed by `ecsim params`")
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise InputError(f"parameters.{name}", value, "a number, or a number and unit like '80 L/h'")
        from .registry import default_registry
        default_registry().with_overrides(given)
        return given

    def visit_days(self) -> list[float]:
        """Clinical visits: day 0, then every ``visit_interval_days``, and the last day; in a
        crossover also the first and last day of every period (its baseline and end point)."""
        n = int(self.duration_days // self.visit_interval_days + 1e-9)
        days = [k * self.visit_interval_days for k in range(n + 1)]
        days = days if abs(days[-1] - self.duration_days) < 1e-9 else days + [self.duration_days]
        if self.trial.crossover is None:
            return days
        from .designs import period_bounds
        extra = [d for bounds in period_bounds(self) for d in bounds if min(abs(d - x) for x in days) > 1e-9]
        return sorted(days + extra)

    @model_validator(mode="after")
    def _clinical_needs_a_phenotype(self) -> "Scenario":
        if self.population.phenotype is not None:
            mix = self.population.phenotype_mix
            if mix is not None and self.trial.primary_scale is None:
                from .clinical_summary import primary_scale
                scales = sorted({primary_scale(k, None) for k in mix})
                if len(scales) > 1:
                    raise InputError("trial.primary_scale", None, f"a scale: the mix's phenotypes default to different "
                                     f"ones ({', '.join(scales)})")
            return self
        clinical = [(f"arms.{a.name}.{k}", given) for a in self.arms for k, given in (
            ("titration", a.titration is not None and a.titration.rule == "flexible"),
            ("botulinum", a.botulinum), ("gpi_stimulation", a.gpi_stimulation), ("physiotherapy", a.physiotherapy),
            ("painkiller", a.painkiller), ("interventions.levodopa_mg_per_day", a.interventions.levodopa_mg_per_day),
            ("interventions.trihexyphenidyl_mg_per_day", a.interventions.trihexyphenidyl_mg_per_day)) if given]
        default = Trial()
        clinical += [(f"trial.{k}", getattr(self.trial, k)) for k in Trial.model_fields
                     if k != "control_arm" and getattr(self.trial, k) != getattr(default, k)]   # control_arm: adverse excess
        if clinical:
            field, given = clinical[0]
            shown = given if isinstance(given, (int, float, str)) and (field.startswith("trial.")
                                                                   or not isinstance(given, bool)) else "set"
            raise InputError(field, shown, "only with population.phenotype (it acts on symptoms)")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        steps = self.duration_days * 24 / self.output_step_h
        if steps > MAX_OUTPUT_TIMES:
            raise InputError("output_step_h", self.output_step_h, f"at least {self.duration_days * 24 / MAX_OUTPUT_TIMES:.3g} "
                             f"h for {self.duration_days:g} days (at most {MAX_OUTPUT_TIMES} output times)")
        if self.duration_days / self.visit_interval_days > MAX_VISITS:
            raise InputError("visit_interval_days", self.visit_interval_days,
                             f"at least {self.duration_days / MAX_VISITS:.3g} days for {self.duration_days:g} days "
                             f"(at most {MAX_VISITS} visits)")
        _check_primary_day(self)   # after the visit count is bounded: it lists the visit days
        names = [a.name for a in self.arms]
        _check_unique_names(names)
        if self.trial.control_arm is not None and self.trial.control_arm not in names:
            raise InputError("trial.control_arm", self.trial.control_arm, f"one of the arm names: {', '.join(names)}")
        for arm in self.arms:
            for label, steps in _all_steps(arm):
                _check_steps(steps, self.output_step_h, self.duration_days, f"arms.{arm.name}.{label}")
            _check_treatments_start_inside_run(arm, self.duration_days)
            if arm.titration is not None:
                _check_dose_times(arm.titration.times_h, self.output_step_h, f"arms.{arm.name}.titration.times_h")
                _check_titration_reaches_the_top(arm, self.duration_days)
            if arm.titration is not None and arm.titration.rule == "flexible":
                _check_titration_visits(arm, self.visit_days())
        if self.trial.crossover is not None:
            from .designs import check_crossover
            check_crossover(self)
        return self


def _check_primary_day(scenario: Scenario) -> None:
    """The primary end point is read at a visit: a day that is not one is refused, not moved to the
    nearest visit. A crossover refuses primary_day altogether (`ecsim.designs.check_crossover`), and
    without a phenotype any trial setting is refused (`Scenario._clinical_needs_a_phenotype`)."""
    day = scenario.trial.primary_day
    if day is None or scenario.trial.crossover is not None:
        return
    visits = scenario.visit_days()
    if day > scenario.duration_days or min(abs(day - v) for v in visits) > 1e-9:
        raise InputError("trial.primary_day", day, f"a visit day up to duration_days ({scenario.duration_days:g}): "
                         f"{_describe_visits(visits, scenario.visit_interval_days)}")


def _describe_visits(visits: list[float], interval_days: float) -> str:
    """The visit days, listed when few (``0, 7 or 14``), else described (``0, 7, ..., 728 and 730``)."""
    days = [f"{v:g}" for v in visits]
    if len(days) <= 8:
        return ", ".join(days[:-1]) + f" or {days[-1]}"
    return f"{', '.join(days[:3])}, ... (every {interval_days:g} days), {days[-2]} or {days[-1]}"


def _check_unique_names(names: list[str]) -> None:
    for k, name in enumerate(names):
        if name in names[:k]:
            raise InputError(f"arms.{k}.name", name, f"a name no other arm has (arm {names.index(name)} is already "
                             f"called {name!r}): arm names must be unique")


def _all_steps(arm: Arm):
    yield "cbd", arm.cbd
    yield "thc", arm.thc
    for i, co in enumerate(arm.comedication):
        yield f"comedication.{i}.steps", co.steps


def _check_treatments_start_inside_run(arm: Arm, duration_days: float) -> None:
    """A treatment that starts on or after the last day is never given: refused, as titration
    levels are (`_check_titration_reaches_the_top`), instead of running an arm without it."""
    starts = [("botulinum.first_day", None if arm.botulinum is None else arm.botulinum.first_day),
              ("gpi_stimulation.from_day", None if arm.gpi_stimulation is None else arm.gpi_stimulation.from_day),
              ("physiotherapy.from_day", None if arm.physiotherapy is None else arm.physiotherapy.from_day),
              ("painkiller.from_day", None if arm.painkiller is None else arm.painkiller.from_day)]
    for field, day in starts:
        if day is not None and day >= duration_days:
            raise InputError(f"arms.{arm.name}.{field}", day,
                             f"a day before duration_days ({duration_days:g}), so that it starts inside the run")


def _check_titration_reaches_the_top(arm: Arm, duration_days: float) -> None:
    """Every level must start inside the run: a level that would start on or after the last day
    is never given, and the arm would silently stop short of the doses it lists."""
    t = arm.titration
    top_day = (len(t.levels) - 1) * t.step_days
    if top_day >= duration_days:
        raise InputError(f"arms.{arm.name}.titration.step_days", t.step_days,
                         f"less than {duration_days / (len(t.levels) - 1):g} days, so that all {len(t.levels)} "
                         f"levels start inside duration_days ({duration_days:g}; the top level would start on day "
                         f"{top_day})")


def _check_titration_visits(arm: Arm, visits: list[float]) -> None:
    """A flexible titration decides at visits: every step_days up to the top level."""
    t = arm.titration
    for k in range(1, len(t.levels)):
        if min(abs(k * t.step_days - v) for v in visits) > 1e-9:
            raise InputError(f"arms.{arm.name}.titration.step_days", t.step_days,
                             f"a multiple of visit_interval_days with {len(t.levels) - 1} steps inside duration_days "
                             f"(day {k * t.step_days} is not a visit)")


def _check_steps(steps: list[DosingStep], dt: float, duration_days: float, where: str) -> None:
    """One drug's dosing steps ``where`` (e.g. ``arms.a.cbd``): no overlap, dose times on the output
    grid (``dt``, h), each step's first dose inside the run."""
    _check_no_overlap(steps, where)
    for i, step in enumerate(steps):
        _check_dose_times(step.times_h, dt, f"{where}.{i}.times_h")
        _check_step_starts_inside_run(step, duration_days, f"{where}.{i}")


def _check_no_overlap(steps: list[DosingStep], where: str) -> None:
    """Steps are active on days [from_day, to_day); two of one drug must not share a day."""
    order = sorted(range(len(steps)), key=lambda i: (steps[i].from_day, i))
    for i, j in zip(order, order[1:]):
        earlier, later = steps[i], steps[j]
        if earlier.to_day is None:
            raise InputError(f"{where}.{j}.from_day", later.from_day,
                             f"a day after step {i} ends, but it runs from day {earlier.from_day} to the end of the "
                             f"run (no to_day); steps of one drug must not overlap: give step {i} a to_day")
        if later.from_day < earlier.to_day:
            raise InputError(f"{where}.{j}.from_day", later.from_day,
                             f"day {earlier.to_day} or later: step {i} runs on days [{earlier.from_day}, "
                             f"{earlier.to_day}) and steps of one drug must not overlap")


def _check_dose_times(times_h: list[float], dt: float, field: str) -> None:
    """Doses are given at output times: every time of day (h) a multiple of output_step_h ``dt``,
    each time once (``[8, 8]`` is more likely a typo for ``[8, 20]`` than a double dose)."""
    if len(set(times_h)) != len(times_h):
        repeated = sorted({t for t in times_h if times_h.count(t) > 1})
        raise InputError(field, times_h, f"each time of day once (repeated: {', '.join(f'{t:g}' for t in repeated)}; "
                                         "for a double dose give twice the dose)")
    for t in times_h:
        if abs(round(t / dt) * dt - t) > 1e-9:
            below = int(t // dt) * dt
            raise InputError(field, t, f"multiples of output_step_h ({dt:g} h), e.g. {below:g} or {below + dt:g}")


def _check_step_starts_inside_run(step: DosingStep, duration_days: float, where: str) -> None:
    """The step's first dose (day ``from_day`` at its earliest time) must come before the run ends."""
    first_h = 24 * step.from_day + min(step.times_h)
    if first_h < 24 * duration_days - 1e-9:
        return
    last_day = math.ceil(duration_days - min(step.times_h) / 24) - 1
    if last_day < 0:
        raise InputError(f"{where}.times_h", step.times_h, f"a time before the run ends ({24 * duration_days:g} h)")
    raise InputError(f"{where}.from_day", step.from_day,
                     f"a day from 0 to {last_day}, so that the step's first dose falls inside the run (duration_days "
                     f"{duration_days:g}; day {step.from_day} at {min(step.times_h):g} h is after its end)")


def _is_unit(text: str) -> bool:
    if not safe_yaml.plain_unit(text):
        return False
    try:
        unit_registry().Unit(text)
        return True
    except Exception:
        return False


def embedded_scenarios() -> list[str]:
    """Names of the scenarios shipped with ecsim (usable in place of a file path)."""
    root = resources.files("ecsim.data.scenarios")
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def load_scenario(path: str | Path | None) -> Scenario:
    """Read and validate a scenario file; ``None`` gives the embedded default, and the name of an
    embedded scenario (``claims-doses``) loads that one when no such file exists."""
    if path is None or (str(path) in embedded_scenarios() and not _exists(Path(path))):
        name = "default" if path is None else str(path)
        text = resources.files("ecsim.data.scenarios").joinpath(f"{name}.yaml").read_text()
        return parse_scenario(text, f"{name}.yaml")
    return parse_scenario(read_text_file(Path(path), "scenario"), str(path))


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):   # a name too long, a NUL byte in it
        return False


def read_text_file(path: Path, field: str) -> str:
    """A small UTF-8 text file (at most `MAX_FILE_BYTES`), or an InputError that says why not."""
    names = ", ".join(embedded_scenarios()) if field == "scenario" else ""
    return safe_yaml.read_text(Path(path), field, names)


def parse_scenario(text: str, origin: str = "scenario") -> Scenario:
    data = parse_yaml_mapping(text, origin)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise pydantic_to_input_error(exc, Scenario) from None


def parse_yaml_mapping(text: str, origin: str) -> dict:
    """A YAML mapping, read with the limits of `ecsim.safe_yaml` (size, depth, aliases, duplicate keys)."""
    return safe_yaml.load_mapping(text, origin)


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


def pydantic_to_input_error(exc: ValidationError, model: type[BaseModel] | None = None) -> InputError:
    """The first validation problem as an InputError naming the field path: a value that was given
    and is wrong before one that is missing (a misspelt key gives both; the misspelling says more).
    With ``model`` (the class validated), an unknown field's error lists the fields allowed there."""
    errors = exc.errors()   # also FastAPI's RequestValidationError, whose errors() takes no arguments
    err = next((e for e in errors if e["type"] != "missing"), errors[0])
    loc = _plain_loc(err["loc"], keep_last=err["type"] == "extra_forbidden")
    where = ".".join(str(x) for x in loc) or "scenario"
    if isinstance(err.get("ctx", {}).get("error"), InputError):
        inner = err["ctx"]["error"]
        return InputError(_field_path(loc, inner.field), inner.value, inner.allowed)
    message = err["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
    given = err.get("input")
    if err["type"] == "missing":
        return InputError(where, _Missing(), "a value: this field is required")
    if err["type"] == "extra_forbidden":
        known = _fields_at(model, loc[:-1]) if model is not None else None
        allowed = "one of the fields " + ", ".join(known) if known else "no such field (see docs/scenarios.md)"
        return InputError(where, given, allowed)
    if isinstance(given, dict) and err["type"] == "value_error":   # a check across fields: the message says which
        given = "this combination"
    return InputError(where, given, message)


def _plain_loc(loc: tuple, keep_last: bool) -> tuple:
    """``loc`` without pydantic's tags for union members ('float', 'function-after[...]')."""
    tags = {"float", "int", "str", "bool", "none", "[key]"}
    body, last = (loc[:-1], loc[-1:]) if keep_last and loc else (loc, ())
    kept = tuple(x for x in body if not (isinstance(x, str) and (x in tags or ("[" in x and x.endswith("]")))))
    return kept + tuple(last)


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """The field names of the model found at ``loc`` inside ``model`` (None if it cannot be told)."""
    current: object = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = _model_in(current.model_fields[part].annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _model_in(tp) -> object:
    """The pydantic model inside an annotation such as ``Arm``, ``list[Arm]`` or ``Botulinum | None``."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in get_args(tp):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field_path(loc: tuple, named: str) -> str:
    """Where an InputError raised inside validation points: a field validator's own location, or,
    for a check across a block's fields, the block's location followed by the field it names."""
    where = [str(x) for x in loc]
    parts = named.split(".")
    if where[-1:] == parts[-1:]:
        return ".".join(where)
    for k in range(min(len(where), len(parts)), 0, -1):   # 'scenario.parameters' + 'parameters.x'
        if where[-k:] == parts[:k]:
            return ".".join(where + parts[k:])
    return ".".join(where + parts)
