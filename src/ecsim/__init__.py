"""ecsim: a mechanistic, evidence-calibrated simulator of cannabinoids, the endocannabinoid system
and dystonia. See README.md; the public API is re-exported here."""

__version__ = "0.1.0"

from .errors import InputError  # noqa: E402
from .registry import Registry, default_registry  # noqa: E402
from .scenario import Scenario, load_scenario, parse_scenario  # noqa: E402
from .simulation import Simulation  # noqa: E402

__all__ = ["InputError", "Registry", "Scenario", "Simulation", "__version__", "default_registry",
           "load_scenario", "parse_scenario"]
