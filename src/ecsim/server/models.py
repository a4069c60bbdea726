"""The JSON API's request and response bodies (pydantic), so /openapi.json describes them exactly.

The request is the web form: one product arm against placebo, with an optional botulinum-toxin
reference arm. Every bound here is a bound on the work one request can ask for.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, create_model, model_validator

from ..circuit.phenotypes import PHENOTYPES
from ..errors import InputError
from ..products import Food, Product
from ..scenario import MEAL_ROUTES

CHOSEN_PHENOTYPES = tuple(name for name in PHENOTYPES if name != "normal")
ROUTES = ("oral", "oromucosal", "inhaled")
MAX_WEEKS = 12
MIN_PATIENTS = 10
MAX_DOSE = {"mg": 2000.0, "mg/kg": 50.0}   # per single dose; far above any studied CBD dose
MAX_CLOBAZAM_MG_PER_DAY = 80.0              # twice the highest labelled daily dose (40 mg)
TOXIN_PHENOTYPES = ("cervical",)            # toxin dose-response calibrated on neck injections only
MEAL_ROUTE_NAMES = tuple(r.value for r in MEAL_ROUTES)

RunStatusName = Literal["queued", "running", "done", "failed"]
# JSON types as the schema says: no "25" for 25, no true for 1 (pydantic would coerce them).
Number = Annotated[float, Strict()]
Integer = Annotated[int, Strict()]
Boolean = Annotated[bool, Strict()]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRequestBase(_Body):
    """One product arm against placebo (and optionally botulinum toxin) in one form of dystonia."""

    phenotype: Literal[CHOSEN_PHENOTYPES] = Field("cervical", description="form and cause of dystonia")
    product: Product = Field(Product.full_spectrum, description="what kind of CBD product")
    dose: Number = Field(25.0, gt=0, le=MAX_DOSE["mg"], description="CBD per dose, in dose_unit")
    dose_unit: Literal["mg", "mg/kg"] = Field("mg", description="mg, or mg per kg of body weight")
    doses_per_day: Integer = Field(2, ge=1, le=4)
    route: Literal[ROUTES] = "oral"
    food: Food = Field(Food.fasted, description="meal taken with each oral or oromucosal dose")
    comedication: Literal["none", "clobazam"] = "none"
    clobazam_mg_per_day: Number = Field(10.0, gt=0, le=MAX_CLOBAZAM_MG_PER_DAY,
                                       description="used only with comedication clobazam; two doses a day")
    botulinum_reference: Boolean = Field(False, description="add a botulinum-toxin arm (cervical dystonia only)")
    weeks: Integer = Field(4, ge=1, le=MAX_WEEKS, description="trial length; the primary end point is the last week")
    seed: Integer = Field(20261126, ge=0, le=2**31 - 1, description="random seed of the virtual population")

    @model_validator(mode="after")
    def _within_limits(self):
        if self.dose > MAX_DOSE[self.dose_unit]:
            raise InputError("dose", self.dose, f"0 < dose <= {MAX_DOSE[self.dose_unit]:g} {self.dose_unit}")
        if self.food is not Food.fasted and self.route not in MEAL_ROUTE_NAMES:
            # the scenario refuses this too, but would name its own path (arms.1.food), not the request's field
            raise InputError("food", self.food.value, f"fasted with route {self.route} (a meal changes only "
                             f"{' and '.join(MEAL_ROUTE_NAMES)} absorption)")
        if self.botulinum_reference and self.phenotype not in TOXIN_PHENOTYPES:
            raise InputError("botulinum_reference", True, "only with phenotype cervical (the toxin model is "
                             "calibrated on neck injections, Truong 2005)")
        return self


def request_model(max_patients: int) -> type[RunRequestBase]:
    """The request model of one server: ``patients`` is bounded by its ``max_patients``."""
    default = max(MIN_PATIENTS, min(50, max_patients))
    return create_model("RunRequest", __base__=RunRequestBase,
                        patients=(Integer, Field(default, ge=MIN_PATIENTS, le=max_patients,
                                             description="virtual patients per arm")))


class ErrorOut(BaseModel):
    """Every error: one line naming the field, the value given and what is allowed."""

    detail: str
    field: str | None = None


class RunCreated(BaseModel):
    id: str = Field(description="server-made run id (32 hex digits)")
    status: RunStatusName
    status_url: str
    report_url: str


class RunStatus(BaseModel):
    id: str
    status: RunStatusName
    progress: float = Field(ge=0, le=1, description="share of patients x arms simulated")
    created: str = Field(description="UTC time the run was accepted (ISO 8601)")
    error: str | None = Field(None, description="one line, when the run failed")
    files: list[str] = Field(default_factory=list, description="files in the run folder, when done")
    report_url: str | None = None
    summary: dict[str, Any] | None = Field(None, description="the run's summary.json, when done")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    active_runs: int
    max_jobs: int
    max_patients: int
    max_run_seconds: float = Field(description="a run still going after this long is stopped and fails")


class PhenotypeOut(BaseModel):
    name: str
    label: str
    cause: str
    primary_scale: str
    botulinum_reference: Boolean = Field(description="whether the toxin reference arm is offered")


class Choice(BaseModel):
    value: str
    label: str


class Options(BaseModel):
    """What the form offers, with its limits and defaults."""

    products: list[Choice]
    routes: list[Choice]
    foods: list[Choice]
    max_patients: int
    min_patients: int
    max_weeks: Integer
    max_dose: dict[str, float]
    max_clobazam_mg_per_day: Number
    max_run_seconds: float = Field(description="a run still going after this long is stopped and fails")
    defaults: dict[str, Any]
