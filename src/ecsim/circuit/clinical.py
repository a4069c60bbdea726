"""Layers L4-L6 over a course of treatment: circuit, motor output, symptoms and scales at visits.

The circuit is fast (milliseconds) and solved as a steady state at each visit, for three protocols
(rest, light action, full action). Its drivers come from the slower layers: CB1 release factors
per synapse class (mean over the 24 h before the visit), tonic dopamine (phenotype, levodopa),
and corticostriatal weights, which relax towards a target set by dopamine and corticostriatal CB1
signalling with time constant ``plasticity_tau`` (exact for drivers constant between visits).

Patients differ in phenotype severity (one draw each) and get fresh rater noise at every visit;
both come from their own random stream, in blocks of patients, so results do not depend on
chunking.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ..registry import Registry
from ..treatments import course as treatment
from ..treatments.course import Course, TreatmentModels
from ..population import block_normals
from .motor import PROTOCOLS, MotorOutput, MotorParameters, Reference, motor_output
from ..errors import InputError
from ..faults import ParameterSetFault
from .network import CircuitInputs, CircuitParameters, State, fixed_point
from .phenotypes import PHENOTYPES, phenotype_modulators
from .regions import N_CHANNELS, REGIONS
from .scales import EXPECTED, N_NOISE, SYMPTOMS, score

STREAM = 7919          # separates these draws from the PK population's
RELEASE = {"release_corticostriatal": "release_glu_corticostriatal_rel",
           "release_striatum_gpe": "release_gaba_striatum_to_gpe_rel",
           "release_striatum_gpi": "release_gaba_striatum_to_gpi_snr_rel",
           "release_stn": "release_glu_stn_rel"}
PLASTICITY_SIGNAL = "cb1_signal_glu_corticostriatal_rel"
TOTALS = ("bfmdrs_movement", "bfmdrs_disability", "twstrs_severity", "twstrs_disability", "twstrs_pain",
          "twstrs_total", "jrs")
RATES = ("gpi_hz", "gpe_hz", "stn_hz")


@dataclass(frozen=True)
class ClinicalModel:
    circuit: CircuitParameters
    motor: MotorParameters
    reference: Reference
    rates_hz: dict[str, float]
    values: dict[str, float]

    @classmethod
    def from_registry(cls, registry: Registry) -> "ClinicalModel":
        key = registry.digest()
        if key not in _CACHE:
            _CACHE.clear()
            _CACHE[key] = _clinical_model(registry)
        return _CACHE[key]


_CACHE: dict[str, "ClinicalModel"] = {}


def _clinical_model(registry: Registry) -> ClinicalModel:
    circuit = CircuitParameters.from_registry(registry)
    states = {k: with_output(solve(circuit, CircuitInputs(command=commands(1, level, circuit)), 1), 1.0)
              for k, level in PROTOCOLS.items()}
    rest, action = states["rest"], states["action"]
    silent = [k.upper() for k in ("gpi", "gpe", "stn") if not float(rest[k].mean()) > 0]
    if silent:
        raise ParameterSetFault(f"under these parameter values the normal basal-ganglia circuit has no resting "
                                f"activity in {', '.join(silent)}, so its rates cannot be scaled to Hz; check the "
                                "circuit parameters overridden in the scenario")
    reference = Reference(states, float(rest["gpi"].mean()),
                          float(action["cortex"][0, 0] - rest["cortex"][0, 0]))
    names = ("plasticity_d2_ltd_gain", "plasticity_d1_ltp_gain", "rater_sd", "rater_sd_cranial",
             "motor_detection_threshold", "twstrs_tilt_share")
    values = {n: registry.value(n, "dimensionless") for n in names}
    values |= {"plasticity_tau_d": registry.value("plasticity_tau", "d"),
               "neck_rotation_max": registry.value("neck_rotation_max", "deg")}
    rates = {"gpi_hz": registry.value("gpi_rate_normal", "Hz") / reference.gpi_rest,
             "gpe_hz": registry.value("gpe_rate_normal", "Hz") / float(rest["gpe"].mean()),
             "stn_hz": registry.value("stn_rate_normal", "Hz") / float(rest["stn"].mean())}
    return ClinicalModel(circuit, MotorParameters.from_registry(registry), reference, rates, values)


def commands(patients: int, level: float, p: CircuitParameters) -> np.ndarray:
    """Cortical command: ``level`` x the action command on every region's agonist channel."""
    c = np.zeros((patients, N_CHANNELS))
    c[:, 0::2] = level * p.action_command
    return c


def with_output(state: State, gpi_output) -> State:
    """Add ``gpi_out``: the GPi output that reaches the thalamus (activity x surviving output)."""
    return state | {"gpi_out": state["gpi"] * gpi_output}


def solve(p: CircuitParameters, inp: CircuitInputs, patients: int, start: State | None = None) -> State:
    return fixed_point(inp, p, patients, N_CHANNELS, start=start).state


class PatientDraws:
    """A patient's standard normals, each from its own stream so that none depends on the others,
    on the visit schedule or on the chunking: phenotype severity, treatment responses (toxin,
    placebo) and the rater noise of each visit (by visit number)."""

    def __init__(self, seed: int, start: int, stop: int, typical: bool = False):
        self.key, self.start, self.stop, self.typical = (seed, STREAM), start, stop, typical
        # stream numbers start at 1: numpy pads short keys with zeros, so (seed, STREAM, 0, ...) could
        # equal the PK population's key (seed, block) for block STREAM
        self.phenotype = self._normals(1, 1)[:, 0]
        self.treatment = self._normals(2, 2)

    def rater(self, visit: int) -> np.ndarray:
        return self._normals(3, N_NOISE, visit)

    def physio(self) -> np.ndarray:
        """Physiotherapy responsiveness: its own stream (4), so arms without it draw nothing new."""
        return self._normals(4, 1)[:, 0]

    def pain(self) -> np.ndarray:
        """Painkiller responsiveness: its own stream (5), so arms without one draw nothing new."""
        return self._normals(5, 1)[:, 0]

    def oral(self) -> np.ndarray:
        """Clonazepam and baclofen responsiveness (columns 0, 1): their own stream (6), so arms
        without either draw nothing new."""
        return self._normals(6, 2)

    def _normals(self, stream: int, width: int, *extra: int) -> np.ndarray:
        if self.typical:
            return np.zeros((self.stop - self.start, width))
        return block_normals((*self.key, stream, *extra), self.start, self.stop, width)


def clinical_output_names() -> set[str]:
    """Every name a case file may read at a visit: totals, rates, symptoms and ``<item>.<region>``."""
    items = ("severity", "bfmdrs_region", "deviation", "cocontraction", "duty")
    return {*TOTALS, *RATES, *SYMPTOMS} | {f"{i}.{r}" for i in items for r in REGIONS}


@dataclass
class ClinicalTrajectory:
    """Per patient and visit: scale totals, firing rates, symptoms; per region: severity items."""

    visit_days: np.ndarray
    totals: dict[str, np.ndarray]      # (patients, visits)
    regions: dict[str, np.ndarray]     # (patients, visits, regions)
    symptoms: dict[str, np.ndarray]    # (patients, visits)
    converged: np.ndarray              # (patients, visits)


def plastic_targets(base: dict[str, np.ndarray], dopamine: np.ndarray, cb1_ctx: np.ndarray,
                    values: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Corticostriatal D1 and D2 weights that current dopamine and CB1 signalling drive towards.

    D1-LTP needs D1 activation: less dopamine, weaker D1 synapses. iMSN LTD needs D2 activation
    and CB1 (Kreitzer & Malenka 2007): less dopamine or less CB1 signal, stronger D2 synapses.
    """
    d1 = base["corticostriatal_d1"] * (1 + values["plasticity_d1_ltp_gain"] * (dopamine - 1))
    d2 = base["corticostriatal_d2"] * (1 - values["plasticity_d2_ltd_gain"] * (dopamine * cb1_ctx - 1))
    return np.maximum(d1, 0.0), np.maximum(d2, 0.0)


def assess(cm: ClinicalModel, registry: Registry, phenotype: str | np.ndarray, visit_days: np.ndarray,
           drivers: dict[str, np.ndarray], course: Course, seed: int, start: int, stop: int,
           typical: bool = False, expected_scores: bool = False) -> ClinicalTrajectory:
    """Circuit, motor output and scales at each visit for patients [start, stop).

    ``phenotype``: one name for every patient, or one per patient (an array of names, length
    stop - start): each patient's results are bitwise those of their phenotype assessed alone
    (`baseline_modulators`, `first_states`). ``drivers`` maps RELEASE names and PLASTICITY_SIGNAL
    to (patients, visits) arrays, relative to the drug-free state (all ones without drugs);
    ``course`` holds the arm's other treatments. ``typical``: median severity and responses, no
    rater noise. ``expected_scores``: each scale item at its mean over raters (`scales.EXPECTED`)
    instead of one rater's draw.
    """
    n = stop - start
    phenotype = patient_phenotypes(phenotype, n)
    z = PatientDraws(seed, start, stop, typical)
    tm = TreatmentModels.from_registry(registry)
    base = baseline_modulators(registry, phenotype, z.phenotype)
    fixed = {k: v for k, v in base.items() if k not in PLASTIC}
    # the untreated chronic state sets the plastic weights patients arrive with
    w1, w2 = plastic_targets(base, base["dopamine"], np.ones((n, 1)), cm.values)
    out = _Collector(n, len(visit_days))
    states: dict[str, State] | None = None
    z_physio = z.physio() if course.physiotherapy is not None else None
    z_pain = z.pain() if course.painkiller is not None else None
    z_oral = z.oral() if course.oral_agents else None
    for v, day in enumerate(visit_days):
        da = treatment.dopamine(tm, course, base["dopamine"], day)
        t1, t2 = plastic_targets(_shifted(base, treatment.shift_scale(tm, course, day)), da,
                                 drivers[PLASTICITY_SIGNAL][:, v:v + 1], cm.values)
        if v > 0:
            decay = np.exp(-(day - visit_days[v - 1]) / cm.values["plasticity_tau_d"])
            w1, w2 = t1 + (w1 - t1) * decay, t2 + (w2 - t2) * decay
        release = {k: drivers[k][:, v:v + 1] for k in RELEASE}
        shared = dict(dopamine=da, corticostriatal_d1=w1, corticostriatal_d2=w2, **fixed, **release)
        states, converged = _protocols(cm, shared, n, states or first_states(cm, registry, phenotype, n))
        through = treatment.transmission(tm, course, day)
        if (gaba := treatment.drive_scale(tm, course, day, z_oral, n)) is not None:
            through = through * gaba          # clonazepam, baclofen: per patient (patients x 1)
        m = motor_output(states, cm.reference, cm.motor,
                         treatment.strength(tm, course, day, z.treatment[:, 0], z_physio), through)
        m = rated(m, treatment.rating_scale(tm, course, day, z.treatment[:, 1]))
        s = score(m, EXPECTED if expected_scores else z.rater(v), cm.values["rater_sd"], cm.values["rater_sd_cranial"],
                  cm.values["motor_detection_threshold"], cm.values["neck_rotation_max"], cm.values["twstrs_tilt_share"],
                  treatment.pain_factor(tm, course, day, z_pain))
        out.add(v, states["rest"], cm, m, s, converged)
    return out.result(np.asarray(visit_days, dtype=float))


PLASTIC = ("dopamine", "corticostriatal_d1", "corticostriatal_d2")


def patient_phenotypes(phenotype: str | np.ndarray, n: int) -> str | np.ndarray:
    """``phenotype`` as `assess` uses it: a name, or one name per patient when they differ."""
    if isinstance(phenotype, str):
        return phenotype
    labels = np.asarray(phenotype)
    if labels.shape != (n,):
        raise InputError("phenotype", f"labels of shape {labels.shape}",
                         f"one phenotype name, or an array of one name per patient, shape ({n},)")
    unknown = sorted(set(labels.tolist()) - set(PHENOTYPES))
    if unknown:
        raise InputError("phenotype", unknown[0], ", ".join(PHENOTYPES))
    if n == 0 or (labels == labels[0]).all():
        return str(labels[0]) if n else "normal"   # no patients: every name gives the same empty results
    return labels


INPUT_DEFAULTS = {f.name: f.default for f in fields(CircuitInputs) if f.name != "command"}


def baseline_modulators(registry: Registry, phenotype: str | np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """The phenotype's circuit modulators on top of a normal brain (ones) for each patient; with a
    phenotype per patient, each row is its own phenotype's and a modulator its phenotype does not
    set holds `CircuitInputs`' default (1.0 or 0.0: no change to any bit of the result)."""
    n = len(z)
    if isinstance(phenotype, str):
        return {k: np.ones((n, N_CHANNELS)) for k in PLASTIC} | phenotype_modulators(phenotype, registry, z)
    parts = {name: baseline_modulators(registry, name, z[phenotype == name]) for name in _names(phenotype)}
    keys = sorted({k for modulators in parts.values() for k in modulators})
    out = {k: np.full((n, N_CHANNELS), INPUT_DEFAULTS[k]) for k in keys}
    for name, modulators in parts.items():
        for k, v in modulators.items():
            out[k][phenotype == name] = v
    return out


def _names(labels: np.ndarray) -> list[str]:
    return sorted(set(labels.tolist()))


def rated(m: MotorOutput, factor) -> MotorOutput:
    """What raters and patients see: every rated read-out shrinks by the expectation factor."""
    if np.all(np.asarray(factor) == 1.0):
        return m
    f = np.reshape(factor, (-1, 1))
    return replace(m, **{k: getattr(m, k) * f for k in ("involuntary_rest", "involuntary_light", "involuntary_action",
                                                        "cocontraction", "deviation", "duty", "severity")})


def _shifted(base: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
    """The phenotype's corticostriatal weights with their deviation from 1 scaled (trihexyphenidyl)."""
    return base | {k: 1.0 + scale * (base[k] - 1.0) for k in ("corticostriatal_d1", "corticostriatal_d2")}


def _protocols(cm: ClinicalModel, shared: dict, n: int, previous: dict[str, State]):
    """Every protocol's steady state, each iteration starting from ``previous`` (the last visit's)."""
    states, ok = {}, np.ones(n, dtype=bool)
    for k, level in PROTOCOLS.items():
        inp = CircuitInputs(command=commands(n, level, cm.circuit), **shared)
        start = {u: previous[k][u] for u in previous[k] if u != "gpi_out"}
        fp = fixed_point(inp, cm.circuit, n, N_CHANNELS, start=start)
        states[k], ok = with_output(fp.state, shared.get("gpi_output", 1.0)), ok & fp.converged
    return states, ok


_GUESSES: dict[tuple[str, str], dict[str, State]] = {}


def first_guess(cm: ClinicalModel, registry: Registry, phenotype: str) -> dict[str, State]:
    """Where each protocol's iteration starts at the first visit: the phenotype's typical patient
    (median severity), drug- and treatment-free. Later visits start from the last. Patients lie
    closer to it than to the silent rest state, so they settle sooner (on the default scenario's
    first visit, 25, 8 and 7 iterations instead of 33, 28 and 19 for the slowest patient of a
    chunk); the guess depends on the parameters and phenotype alone, never on the other patients
    of a chunk, so results stay independent of chunking. Kept per (parameter set, phenotype)."""
    return first_guesses(cm, registry, [phenotype])[0]


def first_guesses(cm: ClinicalModel, registry: Registry, names: list[str]) -> list[dict[str, State]]:
    """`first_guess` of each name; those not yet kept are solved together, one row each (bitwise
    as if alone: `fixed_point` acts on each row by itself), so a batch of phenotypes pays for
    three fixed points rather than three per phenotype."""
    digest = registry.digest()
    missing = sorted({name for name in names if (digest, name) not in _GUESSES})
    if missing and len(_GUESSES) + len(missing) > 64:
        _GUESSES.clear()
        missing = sorted(set(names))
    if missing:
        _GUESSES.update(zip([(digest, name) for name in missing], _typical_states(cm, registry, missing)))
    return [_GUESSES[digest, name] for name in names]


def _typical_states(cm: ClinicalModel, registry: Registry, names: list[str]) -> list[dict[str, State]]:
    """Each protocol's drug-free steady state, solved from rest, of each named phenotype's typical patient."""
    n = len(names)
    shared = typical_shared(cm, registry, names[0] if n == 1 else np.array(names))
    states = {k: fixed_point(CircuitInputs(command=commands(n, level, cm.circuit), **shared), cm.circuit, n,
                             N_CHANNELS).state for k, level in PROTOCOLS.items()}
    return [{k: {u: v[i:i + 1].copy() for u, v in state.items()} for k, state in states.items()} for i in range(n)]


def first_states(cm: ClinicalModel, registry: Registry, phenotype: str | np.ndarray, n: int) -> dict[str, State]:
    """Each protocol's starting state for ``n`` patients at the first visit: every patient at
    their own phenotype's `first_guess`."""
    if isinstance(phenotype, str):
        return {k: _tiled(g, n) for k, g in first_guess(cm, registry, phenotype).items()}
    names = _names(phenotype)
    guesses = first_guesses(cm, registry, names)
    which = np.searchsorted(names, phenotype)        # each patient's row among the guesses
    return {k: {u: np.concatenate([g[k][u] for g in guesses])[which] for u in guesses[0][k]} for k in PROTOCOLS}


def typical_shared(cm: ClinicalModel, registry: Registry, phenotype: str | np.ndarray) -> dict[str, np.ndarray]:
    """The circuit inputs other than the command of the phenotype's typical patient, drug-free: its
    modulators at median severity and the plastic weights it arrives with; with an array of
    names, one row per name."""
    n = 1 if isinstance(phenotype, str) else len(phenotype)
    base = baseline_modulators(registry, phenotype, np.zeros(n))
    w1, w2 = plastic_targets(base, base["dopamine"], np.ones((n, 1)), cm.values)
    fixed = {k: v for k, v in base.items() if k not in PLASTIC}
    return dict(dopamine=base["dopamine"], corticostriatal_d1=w1, corticostriatal_d2=w2, **fixed)


def _tiled(state: State, n: int) -> State:
    return {u: np.repeat(v, n, axis=0) for u, v in state.items()}


class _Collector:
    def __init__(self, n: int, visits: int):
        self.totals = {k: np.zeros((n, visits)) for k in (*TOTALS, *RATES)}
        self.regions = {k: np.zeros((n, visits, len(REGIONS)))
                        for k in ("severity", "bfmdrs_region", "deviation", "cocontraction", "duty")}
        self.symptoms = {k: np.zeros((n, visits)) for k in SYMPTOMS}
        self.converged = np.zeros((n, visits), dtype=bool)

    def add(self, v, rest, cm, m, s, converged):
        for k in TOTALS:
            self.totals[k][:, v] = getattr(s, k)
        for k in RATES:
            self.totals[k][:, v] = cm.rates_hz[k] * rest[k.split("_")[0]].mean(axis=1)
        self.regions["bfmdrs_region"][:, v] = s.bfmdrs_region
        for k in ("severity", "deviation", "cocontraction", "duty"):
            self.regions[k][:, v] = getattr(m, k)
        for k in SYMPTOMS:
            self.symptoms[k][:, v] = s.symptoms[k]
        self.converged[:, v] = converged

    def result(self, days):
        return ClinicalTrajectory(days, self.totals, self.regions, self.symptoms, self.converged)


def drug_free_drivers(n: int, visits: int) -> dict[str, np.ndarray]:
    return {k: np.ones((n, visits)) for k in (*RELEASE, PLASTICITY_SIGNAL)}
