"""How much the D1 MSN collateral to GPe decides the circuit's misses (docs/circuit.md, 2026-11-27).

    .venv/bin/python docs/tools/d1_gpe_collateral.py 1 0.5 0

The CBG (Girard 2008) gives D1 and D2 MSNs the same weight onto GPe (`cbg_w_msn_gpe`); the GPR
model (Gurney 2001) gives D1 none. For each share K of that weight on the D1 collateral
(`cbg_d1_gpe_fraction`, 1 = the model as it is; set here as a registry override),
this prints the typical patient's mean GPi, GPe and STN rates (Hz) at rest, drug-free, per
phenotype; TOR1A's limb and cranial GPi; and the relative SNr/GPi and GPe rates when every CB1
release factor is set to a systemic WIN 55,212-2 occupancy of 0.5 (the release factors the model
gives at that occupancy). Nothing is refitted: the calibrated constants stay as they are.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import ecsim.circuit.network as network
from ecsim.circuit.clinical import ClinicalModel, commands, typical_shared
from ecsim.circuit.regions import N_CHANNELS
from ecsim.registry import default_registry

WIN_RELEASE = {"release_corticostriatal": 0.6061, "release_striatum_gpe": 0.5595, "release_striatum_gpi": 0.5595,
               "release_stn": 0.6866}   # the model's release factors at CB1 agonist occupancy 0.5
LIMB, CRANIAL = 10, 0                   # a limb agonist channel and the eyes' agonist channel


def rest_state(cm: ClinicalModel, registry, phenotype: str = "normal", **release) -> dict:
    shared = typical_shared(cm, registry, phenotype)
    shared.update({k: np.full((1, 1), v) if k in ("release_stn", "release_corticostriatal") else v
                   for k, v in release.items()})
    inputs = network.CircuitInputs(command=commands(1, 0.0, cm.circuit), **shared)
    return network.fixed_point(inputs, cm.circuit, 1, N_CHANNELS).state


def report(k: float) -> None:
    """One factor per process: the phenotypes' plasticity steady states are cached after first use."""
    registry = default_registry().with_overrides({"cbg_d1_gpe_fraction": k})
    cm = ClinicalModel.from_registry(registry)
    hz = cm.rates_hz
    normal = rest_state(cm, registry)
    print(f"K = {k:g}: normal D1 {normal['d1'][0, 0]:.3f}, D2 {normal['d2'][0, 0]:.4f}")
    for phenotype in ("tor1a", "parkinsons", "drd", "huntingtons"):
        s = rest_state(cm, registry, phenotype)
        print(f"  {phenotype:<12} GPi {hz['gpi_hz'] * s['gpi'].mean():6.1f}  GPe {hz['gpe_hz'] * s['gpe'].mean():5.1f}  "
              f"STN {hz['stn_hz'] * s['stn'].mean():5.1f}   limb GPi {hz['gpi_hz'] * s['gpi'][0, LIMB]:6.1f}  "
              f"cranial GPi {hz['gpi_hz'] * s['gpi'][0, CRANIAL]:6.1f}")
    win = rest_state(cm, registry, **WIN_RELEASE)
    print(f"  WIN 55,212-2 (occupancy 0.5): SNr/GPi x{win['gpi'].mean() / normal['gpi'].mean():.3f}, "
          f"GPe x{win['gpe'].mean() / normal['gpe'].mean():.3f}")


if __name__ == "__main__":
    factors = sys.argv[1:] or ["1", "0.5", "0"]
    if len(factors) == 1:
        report(float(factors[0]))
    else:
        for k in factors:
            subprocess.run([sys.executable, __file__, k], check=True)
