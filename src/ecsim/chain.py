"""The model chain as far as it is built: L1 pharmacokinetics, then L2-L3 targets and tone."""

from __future__ import annotations

from functools import lru_cache

from .ecs import ecs_submodel, faah_turnover_submodel, synapse_submodel, tolerance_submodel
from .model.declaration import Model
from .registry import Registry
from .pk.model import cbd_submodel, clobazam_submodel, pf04457845_submodel, thc_submodel
from .pk.nabilone import nabilone_submodel


def typical_covariates(registry: Registry) -> dict[str, float]:
    """Covariates of the typical patient: 70 kg, normal CYP2C19 and liver, fasted, no intervention."""
    return {"body_weight_kg": 70.0, "cyp2c19_activity": 1.0, "hepatic_cbd_cl_factor": 1.0,
            "cbd_absorption_rate_factor": 1.0, "thc_absorption_rate_factor": 1.0,
            "faah_extra_inhibition": 0.0, "magl_extra_inhibition": 0.0, "d2_agonist_occupancy": 0.0,
            "cbd_fixed_free_nM": 0.0, "synthetic_cb1_agonist_occupancy": 0.0, "cbd_faah_ic50_uM": registry["cbd_faah_ic50_human"].value}


@lru_cache(maxsize=1)
def full_model() -> Model:
    """Every submodel, in dependency order: drug levels before the targets they drive; the FAAH
    protein (turnover, covalent inactivation by PF-04457845) before the tone it sets. Nabilone's
    block has constant coefficients, so CB1 tolerance (a Magnus block) may read it."""
    return Model((cbd_submodel(), thc_submodel(), clobazam_submodel(), pf04457845_submodel(),
                  nabilone_submodel(), faah_turnover_submodel(), ecs_submodel(), tolerance_submodel(),
                  synapse_submodel()))
