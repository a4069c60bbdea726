"""Nabilone, the oral synthetic CB1/CB2 agonist (Cesamet), as a co-medication.

One compartment with first-order oral absorption, on apparent (oral) clearance and volume, so the
whole labelled dose enters the gut depot. The numbers (registry/parameters/nabilone.yaml):

- parent half-life about 2 h (Rubin 1977; Canadian product monograph), apparent volume about
  12.5 L/kg (label summary), so CL/F = ln 2 x V/F / 2 h = 303 L/h at 70 kg;
- peak within 2 h (monograph): with that half-life, absorption at ka = ln 2 per hour puts tmax at
  exactly 2 h (ln(ka/k) / (ka - k) = 2 h for k = ln 2 / 2 h);
- exposure linear in the dose from 1 to 4 mg (McGilveray 2005), as in any linear model.

Metabolites are not modelled: the isomeric carbinol peaks with the parent within 2 h, so it is as
short-lived; the 35 h half-life belongs to the total radiocarbon, of which parent and carbinol are
10-20 % (monograph). Whether any metabolite acts at CB1 is not known ("may be active"), and no
binding data were found; see docs/treatments.md.

The unbound plasma concentration is taken as the brain's (free-drug hypothesis, as for CBD and
THC); it is one more agonist at CB1 (`ecsim.ecs.model._agonists`) at every synapse class.
"""

from __future__ import annotations

from ..engine import Bolus
from ..model.declaration import Submodel, symbols
from .compartments import scaled_clearance, scaled_volume

STATES = ("nabilone_gut", "nabilone_central", "nabilone_eliminated")
FREE_NM = "nabilone_free_nM"

PARAMETERS = {"nabilone_ka": "1/h", "nabilone_cl_f": "L/h", "nabilone_v_f": "L",
              "nabilone_fu_plasma": "dimensionless", "nabilone_mw": "g/mol",
              "nabilone_cb1_ki": "nmol/L", "nabilone_cb2_ki": "nmol/L"}


def nabilone_submodel() -> Submodel:
    """Gut depot -> plasma -> eliminated (amounts in µmol); plasma, free and receptor outputs."""
    gut, central, sink = symbols(" ".join(STATES))
    ka, cl, v, fu, mw, ki1, ki2 = symbols(" ".join(PARAMETERS))
    CL, V = scaled_clearance(cl), scaled_volume(v)
    conc_uM = central / V
    free_nM = 1000 * fu * conc_uM
    free, = symbols(FREE_NM)
    rates = {"nabilone_gut": -ka * gut, "nabilone_central": ka * gut - CL * conc_uM,
             "nabilone_eliminated": CL * conc_uM}
    return Submodel(
        name="nabilone", description=__doc__ or "",
        states={s: "umol" for s in STATES}, parameters=PARAMETERS, covariates={"body_weight_kg": "kg"},
        rates=rates, algebra={FREE_NM: free_nM},
        outputs={"nabilone_plasma_ng_per_ml": conc_uM * mw,
                 "nabilone_plasma_free_nM": free,
                 "nabilone_brain_free_nM": free,
                 "cb1_occupancy_nabilone": free / (free + ki1),
                 "cb2_occupancy_nabilone": free / (free + ki2)})


def nabilone_bolus(p: dict, time_h: float, mg) -> Bolus:
    """An oral dose (mg, per patient) as µmol in the gut depot: clearance and volume are apparent
    (CL/F, V/F), so the whole dose enters."""
    return Bolus(time_h, "nabilone_gut", 1000.0 * mg / p["nabilone_mw"])
