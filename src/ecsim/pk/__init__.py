"""Layer L1: pharmacokinetics of CBD, THC, their metabolites and co-medications."""

from .model import pk_model

__all__ = ["pk_model"]
