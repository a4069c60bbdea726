"""One typical patient's circuit: steady-state rates per nucleus, motor output per region, and the
short-dynamics mode (milliseconds, with axonal delays) that shows pallidal oscillations.

Used by ``ecsim circuit``; the population-level clinical layer is `clinical.assess`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..registry import Registry
from .clinical import ClinicalModel, assess, drug_free_drivers, typical_shared
from .network import CircuitInputs, CircuitParameters, fixed_point, simulate
from .regions import N_CHANNELS, REGIONS
from ..treatments.course import Course

BAND_HZ = (2.0, 10.0)


def steady_state_summary(registry: Registry, phenotype: str, levodopa_mg_per_day: float = 0.0) -> dict:
    """Rates (Hz) and per-region motor output of the typical patient (median severity), drug-free
    (with levodopa: after 4 weeks of it)."""
    cm = ClinicalModel.from_registry(registry)
    tr = assess(cm, registry, phenotype, np.array([0.0, 28.0]), drug_free_drivers(1, 2),
                Course(levodopa_mg_per_day=levodopa_mg_per_day), seed=0, start=0, stop=1, typical=True)
    k = 1 if levodopa_mg_per_day > 0 else 0   # levodopa is judged after 4 weeks
    rates = {name: round(float(tr.totals[name][0, k]), 2) for name in ("gpi_hz", "gpe_hz", "stn_hz")}
    regions = {r: {name: round(float(tr.regions[name][0, k, i]), 4) for name in tr.regions}
               for i, r in enumerate(REGIONS)}
    return {"phenotype": phenotype, "levodopa_mg_per_day": float(levodopa_mg_per_day), "rates_hz": rates,
            "regions": regions, "converged": bool(tr.converged.all())}


def dynamics_parameters(registry: Registry) -> tuple[CircuitParameters, dict[str, float]]:
    """Time constants and delays of the short-dynamics mode (steady states do not depend on them)."""
    p = CircuitParameters.from_registry(registry)
    p = replace(p, tau_fast=registry.value("cbg_tau_fast_dynamics", "ms"))
    delay = registry.value("cbg_delay_stn_gpe", "ms")
    return p, {"stn": delay, "gpe": delay}


def typical_inputs(cm: ClinicalModel, registry: Registry, phenotype: str) -> CircuitInputs:
    """The typical patient's resting circuit inputs, drug-free, built as `assess` builds them."""
    return CircuitInputs(command=np.zeros((1, N_CHANNELS)), **typical_shared(cm, registry, phenotype))


def oscillation(registry: Registry, phenotype: str, duration_ms: float = 3000.0, settle_ms: float = 1000.0,
                dt_ms: float = 0.25, delays: bool = True) -> dict:
    """Simulate the typical patient at rest for ``duration_ms``; spectrum of mean GPi activity.

    Returns the mean and SD of the GPi rate (Hz) after ``settle_ms``, the steady-state rate for
    comparison, the peak frequency and the fraction of power in the 2-10 Hz band.
    """
    cm = ClinicalModel.from_registry(registry)
    p, lags = dynamics_parameters(registry)
    inp = typical_inputs(cm, registry, phenotype)
    steady = fixed_point(inp, p, 1, N_CHANNELS).state["gpi"].mean()
    tr = simulate(inp, p, 1, N_CHANNELS, duration_ms, dt_ms=dt_ms, delays_ms=lags if delays else None)
    keep = tr.times_ms > settle_ms
    gpi_hz = cm.rates_hz["gpi_hz"] * tr.traces["gpi"][keep, 0, :].mean(axis=1)
    x = gpi_hz - gpi_hz.mean()
    freqs = np.fft.rfftfreq(len(x), (tr.times_ms[1] - tr.times_ms[0]) / 1000.0)
    power = np.abs(np.fft.rfft(x)) ** 2
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    total = power[1:].sum()
    return {"phenotype": phenotype, "delays": delays, "mean_gpi_hz": round(float(gpi_hz.mean()), 2),
            "steady_state_gpi_hz": round(float(cm.rates_hz["gpi_hz"] * steady), 2),
            "sd_gpi_hz": round(float(x.std()), 3),
            "peak_hz": round(float(freqs[1:][np.argmax(power[1:])]), 2) if total > 0 else 0.0,
            "band_2_10_fraction": round(float(power[band].sum() / total), 3) if total > 0 else 0.0}
