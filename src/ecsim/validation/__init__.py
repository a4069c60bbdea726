"""Study case files: published results the model is fitted to (calibration) or checked against
(validation). See docs/case-files.md for the format."""

from .cases import Case, load_case, load_cases
from .runner import evaluate_case, evaluate_cases

__all__ = ["Case", "load_case", "load_cases", "evaluate_case", "evaluate_cases"]
