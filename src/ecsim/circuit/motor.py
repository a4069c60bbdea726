"""Motor output per body region (layer L5), read from circuit steady states.

Everything is measured against a normal brain in the same protocol, so a normal phenotype without
drugs gives exactly zero involuntary activity. Three protocols: rest, a light action and a full
action (every region's agonist channel commanded). Drives are in units of one voluntary command.

- involuntary drive of a channel: pathological release of its GPi gate beyond normal
  (``(GPi_normal - GPi) / GPi_ref``, with GPi the output that reaches the thalamus) plus cortical activity beyond normal, per normal voluntary
  cortical increment;
- surround loss: the antagonist's GPi rises when the agonist acts (surround inhibition, Mink 2003);
  the fraction of that rise that is lost lets the antagonist follow the command (co-contraction);
- activation = command + involuntary drive (agonist); cocontraction gain x surround loss x command
  + involuntary drive (antagonist); minus reciprocal inhibition; times the muscle's strength
  (below 1 where botulinum toxin acts);
- co-contraction index 2 min / sum (Falconer & Winter 1985); posture deviation tanh of the net
  resting force; duty cycle: probability that resting involuntary drive, fluctuating with a set SD,
  exceeds the detection threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ..registry import Registry
from .network import TOLERANCE, State

PROTOCOLS = {"rest": 0.0, "light": 0.5, "action": 1.0}   # fraction of the action command
# Differences from normal below FLOOR are solver error, not disease: fixed points stop within TOLERANCE
# of their targets, which leaves units up to about 8 TOLERANCE off (measured), about 100 TOLERANCE
# once divided by GPi's resting activity; FLOOR keeps ten times that (tests/test_circuit.py).
FLOOR = 1e3 * TOLERANCE


def _above_floor(x: np.ndarray) -> np.ndarray:
    return np.where(x > FLOOR, x, 0.0)


@dataclass(frozen=True)
class MotorParameters:
    cocontraction_gain: float
    reciprocal_inhibition: float
    detection_threshold: float
    fluctuation_sd: float
    deviation_half: float
    severity_gain: float

    @classmethod
    def from_registry(cls, registry: Registry) -> "MotorParameters":
        names = {"cocontraction_gain": "motor_cocontraction_gain",
                 "reciprocal_inhibition": "motor_reciprocal_inhibition",
                 "detection_threshold": "motor_detection_threshold",
                 "fluctuation_sd": "motor_fluctuation_sd", "deviation_half": "motor_deviation_half",
                 "severity_gain": "severity_gain"}
        return cls(**{k: registry.value(v, "dimensionless") for k, v in names.items()})


@dataclass(frozen=True)
class Reference:
    """The normal brain, drug-free, in each protocol (one patient, broadcast)."""

    states: dict[str, State]
    gpi_rest: float          # mean resting GPi activity (the Hz read-out's anchor)
    cortex_increment: float  # cortical rise of a commanded channel in the full action


@dataclass(frozen=True)
class MotorOutput:
    """Per patient and region (patients x regions)."""

    involuntary_rest: np.ndarray
    involuntary_light: np.ndarray
    involuntary_action: np.ndarray
    cocontraction: np.ndarray    # CCI in the full action, 0-1
    deviation: np.ndarray        # resting posture, fraction of the range, signed (+ agonist)
    duty: np.ndarray             # fraction of rest with visible involuntary activity
    severity: np.ndarray         # 0-1 index that the scales read


def involuntary_drive(state: State, normal: State, ref: Reference) -> np.ndarray:
    """Drive not asked for by the command (patients x channels), in voluntary-command units."""
    gate = (normal["gpi_out"] - state["gpi_out"]) / ref.gpi_rest
    cortex = (state["cortex"] - normal["cortex"]) / ref.cortex_increment
    return _above_floor(gate) + _above_floor(cortex)


def surround_loss(rest: State, action: State, ref: Reference) -> np.ndarray:
    """Fraction of normal surround inhibition lost by each region's antagonist (patients x regions)."""
    def rise(r, a):
        return a["gpi_out"][:, 1::2] / np.maximum(r["gpi_out"][:, 1::2], 1e-12) - 1.0
    normal = rise(ref.states["rest"], ref.states["action"])
    return np.clip(_above_floor(1.0 - rise(rest, action) / normal), 0.0, 1.0)


def _activations(level: float, loss: np.ndarray, inv: np.ndarray, mp: MotorParameters, strength: np.ndarray):
    """Muscle activation of agonist and antagonist (patients x regions); toxin scales the muscle's part."""
    ag = level + inv[:, 0::2]
    ant = mp.cocontraction_gain * loss * level + inv[:, 1::2]
    ag, ant = (np.maximum(ag - mp.reciprocal_inhibition * ant, 0.0),
               np.maximum(ant - mp.reciprocal_inhibition * ag, 0.0))
    return strength[:, 0::2] * ag, strength[:, 1::2] * ant


def _cci(ag: np.ndarray, ant: np.ndarray) -> np.ndarray:
    total = ag + ant
    return np.where(total > 0, 2 * np.minimum(ag, ant) / np.where(total > 0, total, 1.0), 0.0)


def _duty(drive: np.ndarray, mp: MotorParameters) -> np.ndarray:
    """P(drive + fluctuation > threshold), shifted and scaled so that zero drive gives zero."""
    floor = ndtr(-mp.detection_threshold / mp.fluctuation_sd)
    above = ndtr((drive - mp.detection_threshold) / mp.fluctuation_sd)
    return np.clip((above - floor) / (1.0 - floor), 0.0, 1.0)


def motor_output(states: dict[str, State], ref: Reference, mp: MotorParameters,
                 strength: np.ndarray | float = 1.0, transmission: float = 1.0) -> MotorOutput:
    """L5 for every region from the protocol steady states.

    ``strength`` (patients x channels) is the muscles' remaining strength (botulinum toxin);
    ``transmission`` the fraction of pathological pallidal signal that reaches thalamus (GPi
    stimulation), applied to involuntary drive and lost surround inhibition alike.
    """
    inv = {k: transmission * involuntary_drive(states[k], ref.states[k], ref) for k in PROTOCOLS}
    loss_full = transmission * surround_loss(states["rest"], states["action"], ref)
    strength = np.broadcast_to(np.asarray(strength, dtype=float), inv["rest"].shape)
    act = {k: _activations(level, loss_full, inv[k], mp, strength) for k, level in PROTOCOLS.items()}
    # unwanted activity in each protocol: the antagonist's, and the agonist's beyond its command
    unwanted = {k: np.maximum(np.maximum(ag - level * strength[:, 0::2], 0.0), ant)
                for k, level in PROTOCOLS.items() for ag, ant in [act[k]]}
    ag_rest, ant_rest = act["rest"]
    deviation = np.tanh((ag_rest - ant_rest) / mp.deviation_half)
    duty = _duty(unwanted["rest"], mp)
    cci = _cci(*act["action"])
    severity = np.clip(mp.severity_gain * (cci + np.abs(deviation) + duty) / 3.0, 0.0, 1.0)
    return MotorOutput(unwanted["rest"], unwanted["light"], unwanted["action"], cci, deviation, duty, severity)
