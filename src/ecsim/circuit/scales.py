"""Symptoms and clinical scales (layer L6) from the motor output, with rater noise.

Scale structures (clinical.md B8): BFMDRS movement 0-120 = sum over regions of provoking factor
(0-4) x severity factor (0-4) x weight, and disability 0-30 (Burke et al. 1985, Neurology 35:73);
TWSTRS severity 0-35, disability 0-30, pain 0-20 (Consky & Lang 1994); Jankovic rating scale for
blepharospasm, severity 0-4 + frequency 0-4 (Jankovic & Orman 1987, PMID 3561773). Rater noise is
Gaussian on each item before rounding, larger for cranial items (Comella 2003).

The mapping from the motor model to items is this project's (assumptions in docs/circuit.md):
severity factor = 4 x severity index; provoking factor 4 when visible at rest most of the time, 3
when intermittent at rest, 2 with a light action, 1 only with a full action; patient-reported
subscales (TWSTRS disability and pain) follow the neck severity index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .motor import MotorOutput
from .regions import CRANIAL, REGIONS

BFMDRS_WEIGHTS = {"eyes": 0.5, "mouth": 0.5, "larynx": 1.0, "neck": 0.5, "trunk": 1.0,
                  "arm_right": 1.0, "arm_left": 1.0, "leg_right": 1.0, "leg_left": 1.0}
DISABILITY_ITEMS = {  # item -> (maximum, regions it depends on)
    "speech": (4, ("larynx", "mouth")), "handwriting": (4, ("arm_right",)),
    "feeding": (4, ("arm_right", "arm_left")), "eating_swallowing": (4, ("mouth", "larynx")),
    "hygiene": (4, ("arm_right", "arm_left")), "dressing": (4, ("arm_right", "arm_left", "trunk")),
    "walking": (6, ("leg_right", "leg_left", "trunk")),
}
SYMPTOMS = ("uncontrollable_blinking", "dragging_leg", "abnormal_twisting", "speech_difficulty",
            "spasms_and_cramps", "pain")
N_NOISE = len(REGIONS) + len(DISABILITY_ITEMS) + 12   # independent rater draws per visit
_R = {r: i for i, r in enumerate(REGIONS)}


@dataclass(frozen=True)
class Scores:
    """Scale totals (patients) and per-region items (patients x regions) at one visit."""

    bfmdrs_movement: np.ndarray
    bfmdrs_region: np.ndarray
    bfmdrs_disability: np.ndarray
    twstrs_severity: np.ndarray
    twstrs_disability: np.ndarray
    twstrs_pain: np.ndarray
    twstrs_total: np.ndarray
    jrs: np.ndarray
    symptoms: dict[str, np.ndarray]


def provoking_factor(m: MotorOutput, threshold: float) -> np.ndarray:
    """0-4 per region from the protocol at which dystonic activity becomes visible.

    The scale's anchors read as: 4 present at rest (visible most of the time: duty cycle at least
    0.5), 3 intermittently at rest (duty cycle at least 0.1), 2 with many actions (the light
    action), 1 only with a particular, full action. The 0.5 and 0.1 cuts are this project's reading.
    """
    return np.select([m.duty >= 0.5, m.duty >= 0.1, m.involuntary_light > threshold,
                      m.involuntary_action > threshold], [4, 3, 2, 1], 0)


class ExpectedRating:
    """Stands in for the rater noise in `score`: every item is scored at its expectation over
    raters instead of one rater's draw (a smooth read-out in scale points for the typical patient)."""

    def __getitem__(self, key) -> "ExpectedRating":
        return self


EXPECTED = ExpectedRating()


def _item(x: np.ndarray, top: float, noise, sd: float, visible: np.ndarray) -> np.ndarray:
    """An item scored 0..top from a 0-1 index; raters disagree only where there is something to see:
    where ``visible`` (one of the item's regions has a provoking factor above 0: involuntary activity
    at rest, or beyond the detection threshold in an action) and the index is above 0.
    Elsewhere the item is 0 for every rater: a region without visible dystonia keeps a small
    severity index (normal co-contraction), which rater noise would otherwise score as dystonia.
    With `EXPECTED` as ``noise``: the mean over raters, E[clip(rint(top·x + sd·Z), 0, top)] =
    sum over k = 1..top of Phi((top·x - k + 1/2) / sd), Z standard normal."""
    rated = visible & (x > 0)
    if isinstance(noise, ExpectedRating):
        return np.where(rated, expected_rounded(top * x, top, sd), 0.0)
    return np.where(rated, np.clip(np.rint(top * x + sd * noise), 0, top), 0.0)


def expected_rounded(mu: np.ndarray, top: float, sd) -> np.ndarray:
    """E[clip(rint(mu + sd·Z), 0, top)] for integer ``top`` (rint(mu) clipped where sd is 0)."""
    from scipy.special import ndtr
    mu = np.asarray(mu, dtype=float)
    sd = np.broadcast_to(np.asarray(sd, dtype=float), mu.shape)
    k = np.arange(1, int(top) + 1)
    safe = np.where(sd > 0, sd, 1.0)[..., None]
    smooth = ndtr((mu[..., None] - k + 0.5) / safe).sum(axis=-1)
    return np.where(sd > 0, smooth, np.clip(np.rint(mu), 0, top))


def rotation_score(degrees: np.ndarray) -> np.ndarray:
    """TWSTRS rotation 0-4: 0 none, then quarters of 0-90 degrees."""
    return np.select([degrees <= 0.5, degrees <= 22.5, degrees <= 45, degrees <= 67.5], [0, 1, 2, 3], 4)


def tilt_score(degrees: np.ndarray) -> np.ndarray:
    """TWSTRS laterocollis or antero/retrocollis 0-3: under 15, 15-35, over 35 degrees."""
    return np.select([degrees <= 0.5, degrees < 15, degrees <= 35], [0, 1, 2], 3)


def score(m: MotorOutput, noise: np.ndarray, rater_sd: float, rater_sd_cranial: float,
          threshold: float, neck_rotation_max_deg: float, tilt_share: float,
          pain_factor: np.ndarray | None = None) -> Scores:
    """All scales at one visit; ``noise`` is standard normal, (patients x N_NOISE).
    ``pain_factor`` (patients, from a painkiller) scales the pain items only: the TWSTRS pain
    subscale's index and the 'pain' symptom; None leaves them as they are."""
    sd = np.array([rater_sd_cranial if r in CRANIAL else rater_sd for r in REGIONS])
    n_regions = len(REGIONS)
    pf = provoking_factor(m, threshold)
    visible = pf > 0
    severity_factor = _item(m.severity, 4, noise[:, :n_regions], sd, visible)
    weights = np.array([BFMDRS_WEIGHTS[r] for r in REGIONS])
    region = pf * severity_factor * weights
    disability = sum(_item(np.max(m.severity[:, cols], axis=1), top, noise[:, n_regions + i], rater_sd,
                           visible[:, cols].any(axis=1))
                     for i, (top, regions) in enumerate(DISABILITY_ITEMS.values())
                     for cols in [[_R[r] for r in regions]])
    k = n_regions + len(DISABILITY_ITEMS)
    neck, eyes = _R["neck"], _R["eyes"]
    s_neck, duty_neck, v_neck, v_eyes = m.severity[:, neck], m.duty[:, neck], visible[:, neck], visible[:, eyes]
    rotation = np.abs(m.deviation[:, neck]) * neck_rotation_max_deg
    z = noise[:, k:]
    twstrs_sev = (rotation_score(rotation) + 2 * tilt_score(tilt_share * rotation)
                  + _item(s_neck, 1, z[:, 9], rater_sd, v_neck) + _item(s_neck, 1, z[:, 10], rater_sd, v_neck)
                  + 2 * _item(duty_neck, 5, z[:, 0], rater_sd, v_neck)
                  + _item(s_neck, 2, z[:, 1], rater_sd, v_neck) + _item(s_neck, 3, z[:, 2], rater_sd, v_neck)
                  + _item(s_neck, 4, z[:, 3], rater_sd, v_neck) + _item(duty_neck, 4, z[:, 4], rater_sd, v_neck))
    twstrs_dis = _item(s_neck, 30, z[:, 5], 2 * rater_sd, v_neck)
    pain_index = s_neck if pain_factor is None else s_neck * pain_factor
    twstrs_pain = _item(pain_index, 20, z[:, 6], 2 * rater_sd, v_neck)
    jrs = (_item(m.severity[:, eyes], 4, z[:, 7], rater_sd_cranial, v_eyes)
           + _item(m.duty[:, eyes], 4, z[:, 8], rater_sd_cranial, v_eyes))
    return Scores(region.sum(axis=1), region, disability, twstrs_sev, twstrs_dis, twstrs_pain,
                  twstrs_sev + twstrs_dis + twstrs_pain, jrs, symptoms(m, pain_factor))


def symptoms(m: MotorOutput, pain_factor: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The article's symptoms as 0-1 scores per patient (no rater noise); ``pain_factor`` scales 'pain'."""
    idx = lambda *names: [_R[n] for n in names]   # noqa: E731
    limbs = idx("arm_right", "arm_left", "leg_right", "leg_left")
    return {
        "uncontrollable_blinking": m.duty[:, _R["eyes"]],
        "dragging_leg": np.max(m.severity[:, idx("leg_right", "leg_left")], axis=1),
        "abnormal_twisting": np.max(np.abs(m.deviation[:, idx("neck", "trunk", "arm_right", "arm_left")]), axis=1),
        "speech_difficulty": np.max(m.severity[:, idx("larynx", "mouth")], axis=1),
        "spasms_and_cramps": np.max(m.cocontraction[:, limbs] * m.severity[:, limbs] ** 0.5, axis=1),
        "pain": _scaled(np.max(m.severity * (m.cocontraction + np.abs(m.deviation)) / 2, axis=1), pain_factor),
    }


def _scaled(x: np.ndarray, factor: np.ndarray | None) -> np.ndarray:
    return x if factor is None else x * factor
