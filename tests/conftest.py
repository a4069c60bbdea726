import numpy as np
import pytest

from ecsim.engine import Grid
from ecsim.chain import full_model
from ecsim.pk import pk_model
from ecsim.registry import default_registry
from ecsim.scenario import parse_scenario


@pytest.fixture(scope="session")
def registry():
    return default_registry()


@pytest.fixture(scope="session")
def model():
    return pk_model()


@pytest.fixture(scope="session")
def chain():
    return full_model()


def scenario_text(arms: str, days: float = 3, step: float = 0.5, n: int = 20, extra: str = "") -> str:
    return f"""
name: test
duration_days: {days}
output_step_h: {step}
population: {{n: {n}, seed: 7}}
arms:
{arms}
{extra}
"""


@pytest.fixture
def make_scenario():
    def make(arms: str, **kw):
        return parse_scenario(scenario_text(arms, **kw))
    return make


def typical_values(registry, n=1, **covariates):
    """Registry values for n identical typical 70 kg patients."""
    from ecsim.chain import typical_covariates
    values = {k: np.full(n, p.value) for k, p in registry.parameters.items()}
    values |= {k: np.full(n, v) for k, v in typical_covariates(registry).items()}
    values |= {k: np.full(n, float(v)) for k, v in covariates.items()}
    return values


@pytest.fixture(scope="session")
def default_report_run(tmp_path_factory):
    """The default scenario, small (30 patients per arm), with its report: (folder, summary, html)."""
    from ecsim.runjob import run_job
    out = tmp_path_factory.mktemp("report") / "run"
    summary = run_job(None, out, patients=30, quiet=True, claims_patients=20, uncertainty_draws=24)
    return out, summary, (out / "report.html").read_text()
