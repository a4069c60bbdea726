"""Provenance: every parameter the model reads has a complete, cited registry entry."""

import pytest

from ecsim.calibration import STAGES
from ecsim.errors import InputError
from ecsim.registry import _load_parameters
from ecsim.validation import load_cases


def test_every_model_parameter_has_an_entry(model, registry):
    missing = sorted(set(model.parameters) - set(registry.parameters))
    assert not missing


def test_model_units_convert(model, registry):
    for name, unit in model.parameters.items():
        registry.value(name, unit)


def test_sources_resolve_to_bibliography_with_locator(registry):
    for p in registry.parameters.values():
        if p.source == "assumption":
            assert len(p.reason) >= 10, p.name
        else:
            ref = registry.references[p.source]
            assert ref.doi or ref.pmid or ref.url, p.name


def test_every_entry_has_uncertainty_and_species(registry):
    for p in registry.parameters.values():
        assert p.uncertainty is not None and p.species, p.name


def test_fitted_parameters_name_calibration_cases_only(registry):
    cases = {c.id: c for c in load_cases()}
    fitted = {p.name for p in registry.parameters.values() if p.kind == "fitted"}
    assert fitted == {p for s in STAGES for p in s.parameters}
    for name in fitted:
        for case_id in registry[name].fitted_to:
            assert cases[case_id].kind == "calibration", (name, case_id)


def test_entry_without_source_is_rejected():
    text = "parameters:\n  x: {value: 1, unit: L, species: human, source: assumption, kind: assumption, description: d, uncertainty: {distribution: lognormal, cv: 0.1}}\n"
    with pytest.raises(InputError, match="reason"):
        _load_parameters(text, "bad.yaml")


def test_entry_with_bad_unit_is_rejected():
    text = "parameters:\n  x: {value: 1, unit: furlongs/fortnightz, species: human, source: s, kind: measured, description: d, uncertainty: {distribution: lognormal, cv: 0.1}}\n"
    with pytest.raises(InputError, match="unit"):
        _load_parameters(text, "bad.yaml")


def test_override_checks_units(registry):
    assert registry.with_overrides({"cbd_cl": "1000 mL/min"})["cbd_cl"].value == pytest.approx(60.0)
    with pytest.raises(InputError, match="cbd_cl"):
        registry.with_overrides({"cbd_cl": "5 mg"})
    with pytest.raises(InputError, match="parameter"):
        registry.with_overrides({"no_such_parameter": 1.0})
