"""Rat and mouse parameter sets: human by default, the rodent value where the data are rodent.

A registry entry ``<name>_rat`` or ``<name>_mouse`` is the rodent value of parameter ``<name>``
(its own unit, species, source and uncertainty). `species_registry` returns the registry a
simulation of that species should use: each parameter with an entry for the species takes that
entry. Parameters without one keep the default value, whose ``species`` field says where it comes
from (several default values are themselves rodent-derived and used for humans for want of human
data). The CBD IC50 at FAAH has no default and is chosen per species by the simulation
(``cbd_faah_ic50_<species>``).
"""

from __future__ import annotations

from ..registry import Registry

SPECIES = ("human", "rat", "mouse")


def species_overrides(registry: Registry, species: str) -> dict[str, str]:
    """Parameter -> the registry entry that replaces it for ``species`` (empty for human)."""
    if species == "human":
        return {}
    suffix = f"_{species}"
    return {name[:-len(suffix)]: name for name in registry.parameters
            if name.endswith(suffix) and name[:-len(suffix)] in registry.parameters}


def species_registry(registry: Registry, species: str) -> Registry:
    """``registry`` with the ``species`` set in place of the defaults (the same object for human)."""
    chosen = species_overrides(registry, species)
    if not chosen:
        return registry
    params = dict(registry.parameters)
    for base, entry in chosen.items():
        params[base] = registry.parameters[entry].model_copy(update={"name": base})
    return Registry(params, registry.references)
