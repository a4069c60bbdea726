"""Treatments that act outside the drug-level layers: botulinum toxin (muscle) and placebo (rating)."""

from .botulinum import BotulinumModel, botulinum_strength
from .course import Course, TreatmentModels
from .placebo import PlaceboModel, placebo_fraction

__all__ = ["BotulinumModel", "botulinum_strength", "Course", "PlaceboModel", "TreatmentModels", "placebo_fraction"]
