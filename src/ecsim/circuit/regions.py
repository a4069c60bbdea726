"""Body regions and the antagonist channel pair that represents each in the circuit.

Each region has an agonist and an antagonist channel (two competing motor programmes); channel
``2 r`` is region ``r``'s agonist and ``2 r + 1`` its antagonist. The regions are those of the
BFMDRS movement scale (Burke 1985), with eyes split out for the Jankovic scale and the larynx
standing for speech and swallowing.
"""

from __future__ import annotations

REGIONS = ("eyes", "mouth", "larynx", "neck", "trunk", "arm_right", "arm_left", "leg_right", "leg_left")
PAIRS = {  # region -> (agonist movement, antagonist movement)
    "eyes": ("eyelid closure", "eyelid opening"),
    "mouth": ("jaw closing", "jaw opening"),
    "larynx": ("adduction", "abduction"),
    "neck": ("rotation to the left", "rotation to the right"),
    "trunk": ("flexion", "extension"),
    "arm_right": ("flexion", "extension"),
    "arm_left": ("flexion", "extension"),
    "leg_right": ("plantar flexion and inversion", "dorsiflexion"),
    "leg_left": ("plantar flexion and inversion", "dorsiflexion"),
}
N_REGIONS = len(REGIONS)
N_CHANNELS = 2 * N_REGIONS
CRANIAL = ("eyes", "mouth", "larynx")
LIMBS = ("arm_right", "arm_left", "leg_right", "leg_left")


def region_index(name: str) -> int:
    return REGIONS.index(name)


def agonist(region: str) -> int:
    return 2 * region_index(region)


def antagonist(region: str) -> int:
    return 2 * region_index(region) + 1
