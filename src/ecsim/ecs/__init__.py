"""Layers L2 (targets) and L3 (endocannabinoid tone, FAAH turnover, CB1 signalling per synapse class)."""

from .model import ecs_submodel, faah_turnover_submodel, synapse_submodel, tolerance_submodel

__all__ = ["ecs_submodel", "faah_turnover_submodel", "synapse_submodel", "tolerance_submodel"]
