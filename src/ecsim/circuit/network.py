"""Basal-ganglia–thalamo-cortical rate model (layer L4), vectorised over patients and channels.

The CBG model of Girard et al. 2008 (D1 and D2 MSNs, one shared FS interneuron, STN, GPe, GPi/SNr)
closed through the thalamus, the reticular nucleus and frontal cortex (the CBGTC loop of the same
authors). Units are locally projected dynamical systems: ``tau dx/dt = u(x) - x`` with ``x`` kept in
[0, 1], so a steady state satisfies ``x = clip(u(x), 0, 1)``.

Additions for this simulator, each a multiplier that is 1 (or an offset that is 0) in the
published model:

- relative tonic dopamine per channel scales the model's dopamine gain ``lambda``;
- CB1 release factors per synapse class (from layer L3) scale the projections they act on:
  corticostriatal glutamate (cortex to MSNs and FS), striatal GABA to GPe and to GPi/SNr, STN
  glutamate to GPe and GPi/SNr;
- MSN excitability (acetylcholine, phenotype), corticostriatal plasticity (D1 and D2 weights),
  loss of MSN outputs (Huntington's disease), GPi output (the lesion phenotype's loss of pallidal
  output) and the thalamo-cortical loop gain per channel. Pallidotomy is not modelled, and must
  not be modelled by lowering GPi output: the motor layer reads any fall of GPi output below
  normal as involuntary drive, so a lesion would then worsen dystonia, against Vitek 1999.
  GPi stimulation acts in the motor layer instead (`course.transmission`);
- sums over channels are scaled by 6/N, so a uniform state behaves as in the published six-channel
  model whatever the number of channels.

Arrays are (patients, channels); the FS and reticular units are shared, (patients, 1).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import ModelError
from ..registry import Registry

N_REFERENCE = 6
NUCLEI = ("d1", "d2", "fs", "stn", "gpe", "gpi", "thalamus", "trn", "cortex")
SHARED = ("fs", "trn")
FAST = ("fs", "stn", "thalamus", "trn")


@dataclass(frozen=True)
class CircuitParameters:
    """Weights, biases and time constants (registry names ``cbg_*``; times in ms)."""

    tau_slow: float
    tau_fast: float
    tau_cortex: float
    dopamine_lambda: float
    w_cortex_msn: float
    w_salience_msn: float
    w_gpe_msn: float
    w_fs_msn: float
    w_cortex_fs: float
    w_salience_fs: float
    w_gpe_fs: float
    w_cortex_stn: float
    w_gpe_stn: float
    w_stn_gpe: float
    w_stn_gpi: float
    w_msn_gpe: float
    d1_gpe_fraction: float   # the D1 collateral's share of w_msn_gpe: 1 in the CBG, 0 in the GPR model
    w_d1_gpi: float
    w_gpe_gpi: float
    bias_msn: float
    bias_stn: float
    bias_gp: float
    w_gpi_thalamus: float
    w_cortex_thalamus: float
    w_trn: float
    bias_thalamus: float
    tonic_drive: float
    action_command: float

    @classmethod
    def from_registry(cls, registry: Registry) -> "CircuitParameters":
        values = {}
        for f in fields(cls):
            if f.name.startswith("tau_"):
                values[f.name] = registry.value(f"cbg_{f.name}", "ms")
            elif f.name == "tonic_drive":
                values[f.name] = registry.value("cortex_tonic_drive", "dimensionless")
            elif f.name == "action_command":
                values[f.name] = registry.value("action_command", "dimensionless")
            else:
                values[f.name] = registry.value(f"cbg_{f.name}", "dimensionless")
        return cls(**values)


@dataclass(frozen=True)
class CircuitInputs:
    """Per-patient modulators, each broadcastable to (patients, channels).

    ``command`` is the cortical command on top of the tonic drive; ``dopamine`` is tonic dopamine
    relative to normal; ``release_*`` are CB1 release factors relative to the drug-free state.
    """

    command: np.ndarray
    dopamine: np.ndarray | float = 1.0
    msn_excitability: np.ndarray | float = 0.0
    loop_gain: np.ndarray | float = 1.0
    task_loop_gain: np.ndarray | float = 1.0   # multiplies loop_gain only while the full action is commanded
    corticostriatal_d1: np.ndarray | float = 1.0
    corticostriatal_d2: np.ndarray | float = 1.0
    d1_output: np.ndarray | float = 1.0
    d2_output: np.ndarray | float = 1.0
    gpi_output: np.ndarray | float = 1.0
    release_corticostriatal: np.ndarray | float = 1.0
    release_striatum_gpe: np.ndarray | float = 1.0
    release_striatum_gpi: np.ndarray | float = 1.0
    release_stn: np.ndarray | float = 1.0


State = dict[str, np.ndarray]


def rest_state(patients: int, channels: int) -> State:
    return {k: np.zeros((patients, 1 if k in SHARED else channels)) for k in NUCLEI}


def _sum(x: np.ndarray) -> np.ndarray:
    return x.sum(axis=-1, keepdims=True)


@dataclass
class _Terms:
    """The parts of the unit inputs that depend on the patients' inputs alone (each broadcastable
    to (patients, channels)), computed once per fixed point or simulation."""

    norm: float                        # N_REFERENCE / channels
    command: np.ndarray | float        # tonic drive + command
    salience_msn: np.ndarray | float
    salience_fs: np.ndarray | float
    glu: np.ndarray | float            # corticostriatal release factor
    d1_gain: np.ndarray | float        # 1 + lambda dopamine
    d2_gain: np.ndarray | float        # 1 - lambda dopamine
    excitability: np.ndarray | float
    corticostriatal_d1: np.ndarray | float
    corticostriatal_d2: np.ndarray | float
    d1_output: np.ndarray | float
    d2_output: np.ndarray | float
    stn_drive: np.ndarray | float      # norm x STN release factor
    stn_gpe_loop: np.ndarray | float   # gain of summed STN onto GPe in the loop solve
    striatum_gpe: np.ndarray | float
    striatum_gpi: np.ndarray | float
    gpi_thalamus: np.ndarray | float
    cortex_loop: np.ndarray | float
    d1_gpe_output: np.ndarray | float   # D1 output reaching GPe: d1_output x d1_gpe_fraction

    @classmethod
    def of(cls, inp: CircuitInputs, p: CircuitParameters, channels: int) -> "_Terms":
        for name in PER_PATIENT:
            _one_per_patient(getattr(inp, name), name)
        norm = N_REFERENCE / channels
        command = p.tonic_drive + inp.command
        lam = p.dopamine_lambda * inp.dopamine
        return cls(norm, command, p.w_salience_msn * command, p.w_salience_fs * _sum(command),
                   inp.release_corticostriatal, 1 + lam, 1 - lam, inp.msn_excitability,
                   inp.corticostriatal_d1, inp.corticostriatal_d2, inp.d1_output, inp.d2_output,
                   norm * inp.release_stn, p.w_stn_gpe * norm * inp.release_stn, p.w_msn_gpe * inp.release_striatum_gpe,
                   p.w_d1_gpi * inp.release_striatum_gpi, p.w_gpi_thalamus * inp.gpi_output,
                   inp.loop_gain * _task_gain(inp, p) * p.w_cortex_thalamus,
                   _times(p.d1_gpe_fraction, inp.d1_output))

    def rows(self, which, patients: int) -> "_Terms":
        """The terms of rows ``which`` (a slice or a mask) of a batch of ``patients``; shared values
        (scalars, one row broadcast to every patient) stay as they are."""
        def take(v):
            return v[which] if isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] == patients else v
        return _Terms(**{f.name: take(getattr(self, f.name)) for f in fields(self)})


def _task_gain(inp: CircuitInputs, p: CircuitParameters):
    """A task-specific dystonia's extra loop gain (``task_loop_gain``) acts while the patient performs
    the task: while some channel is commanded at the full action command (the "action" protocol).
    At rest and in light actions the loop is normal, so the dystonia shows only with that action."""
    if np.all(np.asarray(inp.task_loop_gain) == 1.0):
        return 1.0
    engaged = np.max(np.asarray(inp.command), axis=-1, keepdims=True) >= p.action_command
    return np.where(engaged, inp.task_loop_gain, 1.0)


PER_PATIENT = ("release_stn", "release_corticostriatal")
"""Inputs read once per patient: the STN release factor sets the gain of the STN-GPe loop, which
`_loop_solve` solves in the summed GPe (one unknown per patient), and the corticostriatal one
drives the shared FS unit. One value per channel would silently break both."""


def _one_per_patient(value, name: str) -> None:
    v = np.asarray(value)
    if v.ndim == 2 and v.shape[-1] > 1:
        raise ModelError(f"circuit input {name}: one value per patient (shape (patients, 1)), not one per "
                         f"channel: the STN-GPe loop solve and the shared FS unit read it once per patient")


def targets(x: State, inp: CircuitInputs, p: CircuitParameters) -> State:
    """The clipped input ``clip(u(x), 0, 1)`` of every unit: the steady state is its fixed point."""
    return _targets(x, _Terms.of(inp, p, x["d1"].shape[-1]), p)


def _targets(x: State, t: _Terms, p: CircuitParameters, known: State | None = None) -> State:
    """`targets` from precomputed terms; ``known``: units whose target is already at hand."""
    norm, known = t.norm, known or {}
    sum_gpe, sum_cortex = _sum(x["gpe"]), _sum(x["cortex"])
    cortical = t.glu * (p.w_cortex_msn * x["cortex"] + t.salience_msn)
    inhibition = p.w_fs_msn * x["fs"] - p.bias_msn - t.excitability
    gpe_msn = p.w_gpe_msn * x["gpe"]
    d1 = t.d1_gain * (t.corticostriatal_d1 * cortical - gpe_msn) - inhibition
    d2 = t.d2_gain * (t.corticostriatal_d2 * cortical - gpe_msn) - inhibition
    stn = p.w_cortex_stn * x["cortex"] - norm * p.w_gpe_stn * sum_gpe + p.bias_stn
    gpe = p.w_stn_gpe * _stn_drive(x, t) - _striatum_to_gpe(x, t) + p.bias_gp
    thalamus = p.w_cortex_thalamus * x["cortex"] - p.w_trn * x["trn"] - t.gpi_thalamus * x["gpi"] + p.bias_thalamus
    trn = norm * p.w_trn * (sum_cortex + _sum(x["thalamus"]))
    cortex = t.cortex_loop * x["thalamus"] + t.command
    raw = {"d1": d1, "d2": d2, "stn": stn, "gpe": gpe, "thalamus": thalamus, "trn": trn, "cortex": cortex}
    if "fs" not in known:
        raw["fs"] = _fs_input(t, p, sum_cortex, sum_gpe)
    if "gpi" not in known:
        raw["gpi"] = _gpi_input(x, t, p, sum_gpe)
    return {k: known[k] if k in known else _clipped(raw[k], x[k].shape) for k in NUCLEI}


def _clipped(v: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.clip(v if np.shape(v) == shape else np.broadcast_to(v, shape), 0.0, 1.0)


def _times(factor, x: np.ndarray):
    """``factor * x``; the product is skipped where the factor is the scalar 1 (bitwise the same)."""
    return x if isinstance(factor, float) and factor == 1.0 else factor * x


def _stn_drive(x: State, t: _Terms) -> np.ndarray:
    """Diffuse STN glutamate onto GPe and GPi/SNr, after CB1 release factors."""
    return t.stn_drive * _sum(x["stn"])


def _striatum_to_gpe(x: State, t: _Terms) -> np.ndarray:
    """Striatal GABA onto GPe, after CB1 release factors and loss of MSN outputs."""
    return t.striatum_gpe * (_times(t.d1_gpe_output, x["d1"]) + _times(t.d2_output, x["d2"]))


def _fs_input(t: _Terms, p: CircuitParameters, sum_cortex: np.ndarray, sum_gpe: np.ndarray) -> np.ndarray:
    return t.norm * (t.glu * (p.w_cortex_fs * sum_cortex + t.salience_fs) - p.w_gpe_fs * sum_gpe)


def _gpi_input(x: State, t: _Terms, p: CircuitParameters, sum_gpe: np.ndarray) -> np.ndarray:
    return (p.w_stn_gpi * _stn_drive(x, t) - t.norm * p.w_gpe_gpi * sum_gpe
            - t.striatum_gpi * _times(t.d1_output, x["d1"]) + p.bias_gp)


@dataclass(frozen=True)
class FixedPoint:
    state: State
    converged: np.ndarray   # per patient
    iterations: int


SLOW = ("d1", "d2", "thalamus", "trn", "cortex")
LOOP = ("stn", "gpe", "gpi", "fs")   # set at each step: the STN-GPe loop solved exactly, GPi and FS explicitly
ANDERSON_DEPTH = 5
COMPACT_BELOW = 0.85   # settled patients leave the batch once fewer than this share of it still iterates
BLOCK = 512            # patients iterated together, so the working set stays in cache
TOLERANCE = 1e-7       # activity units (0-1): rates within about 1e-5 Hz of a tight solve (see fixed_point)


def fixed_point(inp: CircuitInputs, p: CircuitParameters, patients: int, channels: int, *,
                start: State | None = None, tol: float = TOLERANCE, max_iter: int = 3000,
                relax: float = 0.5, accelerate: bool = True) -> FixedPoint:
    """Steady state: the STN-GPe loop solved exactly, the other units by damped iteration
    x <- x + relax (u(x) - x), Anderson-accelerated unless ``accelerate`` is False.

    Anderson mixing (depth ANDERSON_DEPTH; Walker & Ni 2011, doi:10.1137/10078356X) extrapolates
    from the last residuals of each patient alone, so a patient's result does not depend on its
    batch. It needs several times fewer iterations than plain damping (the default scenario's
    visits at 1e-9: at most 42 instead of 223; at TOLERANCE: at most 25 instead of 160) and lands
    within the stopping tolerance of the same state (tests/test_circuit.py compares both).

    Stopping rule: every unit within ``tol`` of its target. The default, TOLERANCE, is set by what
    the results can resolve: it leaves units up to about 8 ``tol`` from the exact fixed point and
    rates within about 1e-5 Hz of a 1e-12 solve (tests/test_circuit.py bounds it at 1e-3 Hz). On the
    default scenario (2048 patients, 5 arms, 13 visits, three protocols each) 1e-7 instead of 1e-9
    changed no BFMDRS movement score and 8 of 133,120 TWSTRS totals (a rater's category at its
    threshold) and took 1.5-1.7 times fewer iterations on the CBD arms; 1e-6 would move rates by
    1.5e-4 Hz and flip about ten times more scores. The fixed point does not depend on the time
    constants. A patient whose iteration has not settled after ``max_iter`` still counts as
    converged if its last change is below 10 ``tol`` (1e-6 at the default); otherwise it has no
    steady state the iteration can reach from the start: it is flagged, and `simulate` shows what
    it does instead.

    Patients are iterated in blocks of BLOCK; a patient who settles is written out, and settled
    patients leave the block (state, inputs and Anderson history) once fewer than COMPACT_BELOW
    of it still iterate. Every operation acts on each patient's own row, so none of this changes
    a bit of any patient's result (tests/test_circuit.py compares with the plain masked iteration).
    """
    x = {k: np.array(v, dtype=float) for k, v in (start or rest_state(patients, channels)).items()}
    change = np.full(patients, np.inf)
    terms = _Terms.of(inp, p, channels)
    iterations = 1
    for first in range(0, patients, BLOCK):
        block = slice(first, min(first + BLOCK, patients))
        state, change[block], used = _settle({k: x[k][block] for k in NUCLEI}, terms.rows(block, patients), p,
                                             tol, max_iter, relax, accelerate)
        for k in NUCLEI:
            x[k][block] = state[k]
        iterations = max(iterations, used)
    return FixedPoint(x, change < 10 * tol, iterations)


def _settle(x: State, terms: _Terms, p: CircuitParameters, tol: float, max_iter: int, relax: float,
            accelerate: bool) -> tuple[State, np.ndarray, int]:
    """`fixed_point` for one block of patients: final states, each patient's last change, iterations."""
    out = {k: v.copy() for k, v in x.items()}      # a patient's rows are final once they settle
    n = len(x["d1"])
    change, rows, live = np.full(n, np.inf), np.arange(n), np.ones(n, dtype=bool)   # rows: batch row -> patient
    history = _AndersonHistory(relax, ANDERSON_DEPTH) if accelerate else None
    x = dict(x)
    for it in range(1, max_iter + 1):
        u = _step(x, terms, p)
        xs = np.concatenate([x[k] for k in SLOW], axis=1)
        fs = np.concatenate([u[k] for k in SLOW], axis=1) - xs
        step_change = np.max([np.abs(fs).max(axis=1)] + [np.abs(u[k] - x[k]).max(axis=-1) for k in LOOP], axis=0)
        change[rows[live]] = step_change[live]
        settled = live & ~(step_change >= tol)
        if settled.any():
            for k in NUCLEI:
                out[k][rows[settled]] = x[k][settled]
            live &= ~settled
            if not live.any():
                break
            if live.sum() < COMPACT_BELOW * len(live):
                rows, x, xs, fs, terms = rows[live], _rows(x, live), xs[live], fs[live], terms.rows(live, len(live))
                if history is not None:
                    history.take(live)
                live = live[live]
        new = np.clip(history.next(xs, fs) if history is not None else xs + relax * fs, 0.0, 1.0)
        col = 0
        for k in SLOW:
            width = x[k].shape[1]
            x[k], col = new[:, col:col + width].copy(), col + width
    else:
        for k in NUCLEI:
            out[k][rows[live]] = x[k][live]
    return out, change, it


def _rows(state: State, keep: np.ndarray) -> State:
    return {k: v[keep] for k, v in state.items()}


def _step(x: State, t: _Terms, p: CircuitParameters) -> State:
    """One iteration (``x`` updated in place): the STN-GPe loop solved for the current striatum
    and cortex, GPi and FS set from it; returns every unit's target ``clip(u(x), 0, 1)``."""
    x["stn"], x["gpe"] = _loop_solve(p.w_cortex_stn * x["cortex"] + p.bias_stn, p.bias_gp - _striatum_to_gpe(x, t),
                                     t.stn_gpe_loop, _sum(x["gpe"]), t.norm, p)
    sum_gpe = _sum(x["gpe"])
    x["gpi"] = _clipped(_gpi_input(x, t, p, sum_gpe), x["gpi"].shape)
    x["fs"] = _clipped(_fs_input(t, p, _sum(x["cortex"]), sum_gpe), x["fs"].shape)
    return _targets(x, t, p, known={"gpi": x["gpi"], "fs": x["fs"]})


def _loop_solve(stn_in: np.ndarray, gpe_in: np.ndarray, gain: np.ndarray | float, g: np.ndarray, norm: float,
                p: CircuitParameters) -> tuple[np.ndarray, np.ndarray]:
    """STN and GPe with the STN-GPe loop solved exactly for the current striatum and cortex.

    ``stn_in`` and ``gpe_in`` are the units' inputs from outside the loop, ``gain`` the STN-to-GPe
    gain of the summed STN, ``g`` the starting guess of the summed GPe. The loop is strong (gain ~11
    through the diffuse sums), which makes plain fixed-point iteration diverge. With G = sum of
    GPe, STN is non-increasing in G and GPe non-decreasing in sum(STN), so h(G) = sum(GPe(G)) - G
    is strictly decreasing: one root, found by bracketed Newton steps (the function is piecewise
    linear, so Newton ends exactly).
    """
    lo, hi = np.zeros_like(g), np.full_like(g, float(stn_in.shape[-1]))
    for _ in range(60):
        stn_raw = stn_in - norm * p.w_gpe_stn * g
        stn = np.clip(stn_raw, 0.0, 1.0)
        gpe_raw = gain * _sum(stn) + gpe_in
        gpe = np.clip(gpe_raw, 0.0, 1.0)
        h = _sum(gpe) - g
        done = np.abs(h) < 1e-13   # per patient, so a patient's result does not depend on its batch
        if done.all():
            break
        lo, hi = np.where(h > 0, g, lo), np.where(h > 0, hi, g)
        d_stn = -norm * p.w_gpe_stn * _sum((stn_raw > 0) & (stn_raw < 1))
        slope = gain * d_stn * _sum((gpe_raw > 0) & (gpe_raw < 1)) - 1.0
        step = g - h / slope
        g = np.where(done, g, np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi)))
    return stn, gpe


class _AndersonHistory:
    """The last ANDERSON_DEPTH differences of iterates and residuals of each patient (batch row):
    dF and dX + relax dF, the two products the update needs, each difference computed once.

    Each is held packed, (patients, dims, m) oldest first: the layout BLAS gets in `_anderson_update`
    decides its rounding. Once the history is full, a step shifts the packed array by one element
    in place and writes the new column last (stacking the whole history anew at each step cost
    a third of the mixing)."""

    def __init__(self, relax: float, depth: int):
        self.relax, self.depth = relax, depth
        self.last: tuple[np.ndarray, np.ndarray] | None = None
        self.d_f: list[np.ndarray] | np.ndarray = []
        self.d_x_relaxed: list[np.ndarray] | np.ndarray = []

    def take(self, keep: np.ndarray) -> None:
        if self.last is not None:
            self.last = (self.last[0][keep], self.last[1][keep])
        self.d_f, self.d_x_relaxed = (h[keep] if isinstance(h, np.ndarray) else [a[keep] for a in h]
                                      for h in (self.d_f, self.d_x_relaxed))

    def next(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        """The next iterate after x with residual f, each (patients, dims)."""
        if self.last is not None:
            df = f - self.last[1]
            self.d_f = self._appended(self.d_f, df)
            self.d_x_relaxed = self._appended(self.d_x_relaxed, x - self.last[0] + self.relax * df)
        self.last = (x, f)
        if isinstance(self.d_f, list) and not self.d_f:
            return x + self.relax * f
        d_f, d_x_relaxed = (np.stack(h, axis=-1) if isinstance(h, list) else h for h in (self.d_f, self.d_x_relaxed))
        return _anderson_update(x, f, d_f, d_x_relaxed, self.relax)

    def _appended(self, history: list[np.ndarray] | np.ndarray, column: np.ndarray) -> list[np.ndarray] | np.ndarray:
        if isinstance(history, list):
            history = history + [column]
            return np.stack(history, axis=-1) if len(history) == self.depth else history
        history = np.ascontiguousarray(history)   # (already is: then no copy, and reshape gives a view)
        flat = history.reshape(-1)
        flat[:-1] = flat[1:]                # every row's columns one to the left (numpy copies overlaps safely)
        history[:, :, -1] = column
        return history


def _anderson_update(x: np.ndarray, f: np.ndarray, d_f: np.ndarray, d_x_relaxed: np.ndarray,
                     relax: float) -> np.ndarray:
    """Anderson mixing from the residual differences ``d_f`` (patients, dims, m), oldest first:
    least-squares weights on the differences, Tikhonov-regularised by 1e-10 of the Gram trace."""
    d_ft = d_f.transpose(0, 2, 1)
    gram = d_ft @ d_f
    scale = np.trace(gram, axis1=1, axis2=2)[:, None, None]
    gram = gram + (1e-10 * scale + 1e-300) * np.eye(d_f.shape[-1])
    gamma = np.linalg.solve(gram, d_ft @ f[..., None])
    return x + relax * f - (d_x_relaxed @ gamma)[..., 0]


@dataclass(frozen=True)
class Trajectory:
    times_ms: np.ndarray
    traces: dict[str, np.ndarray]   # nucleus -> (time, patients, channels)


def simulate(inp: CircuitInputs, p: CircuitParameters, patients: int, channels: int,
             duration_ms: float, *, dt_ms: float = 0.25, delays_ms: dict[str, float] | None = None,
             start: State | None = None, record: tuple[str, ...] = ("gpi",), every: int = 4
             ) -> Trajectory:
    """Short dynamics (milliseconds) by explicit Euler, with optional axonal delays per source nucleus.

    ``delays_ms[k]`` delays every projection leaving nucleus ``k``. Without delays and from a
    stable regime this settles on `fixed_point`'s state.
    """
    tau = {k: p.tau_fast if k in FAST else p.tau_cortex if k == "cortex" else p.tau_slow for k in NUCLEI}
    lags = {k: int(round((delays_ms or {}).get(k, 0.0) / dt_ms)) for k in NUCLEI}
    x = {k: v.copy() for k, v in (start or rest_state(patients, channels)).items()}
    history = {k: [x[k].copy()] * (lags[k] + 1) for k in NUCLEI}
    steps = int(round(duration_ms / dt_ms))
    traces = {k: [] for k in record}
    times = []
    terms = _Terms.of(inp, p, channels)
    for step in range(steps):
        seen = {k: history[k][-1 - lags[k]] for k in NUCLEI}
        u = _targets(seen, terms, p)
        for k in NUCLEI:
            x[k] = np.clip(x[k] + dt_ms / tau[k] * (u[k] - x[k]), 0.0, 1.0)
            history[k].append(x[k].copy())
            if len(history[k]) > lags[k] + 1:
                history[k].pop(0)
        if step % every == 0:
            times.append((step + 1) * dt_ms)
            for k in record:
                traces[k].append(x[k].copy())
    return Trajectory(np.array(times), {k: np.array(v) for k, v in traces.items()})
