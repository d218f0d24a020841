"""Deterministic randomness: the same numbers for the same seed on every run and platform.

The models are functions of time, not of a stepped state, so every random number is drawn from
a hash of (seed, stream, index), e.g. the appliance events of one quarter hour. SplitMix64
(Steele, Lea, Flood: "Fast splittable pseudorandom number generators", OOPSLA 2014) mixes the
integers; ``random.Random`` seeded with the hash draws longer sequences.
"""

from __future__ import annotations

import random
from typing import Final

_MASK: Final = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def mix(*parts: int) -> int:
    """A 64-bit hash of the integers ``parts`` (order matters)."""
    state = 0
    for part in parts:
        state = _splitmix64(state ^ (part & _MASK))
    return state


def uniform(*parts: int) -> float:
    """A number in [0, 1) determined by ``parts``."""
    return (mix(*parts) >> 11) * (1.0 / (1 << 53))


def stream(*parts: int) -> random.Random:
    """A random number generator determined by ``parts``."""
    return random.Random(mix(*parts))


def smooth_noise(period_s: float, at_s: float, *parts: int) -> float:
    """Noise in [-1, 1] that changes smoothly: values at every ``period_s`` joined linearly.

    Its mean over time is 0 (each knot is uniform in [-1, 1]).
    """
    position = at_s / period_s
    knot = int(position // 1)
    fraction = position - knot
    left = 2.0 * uniform(*parts, knot) - 1.0
    right = 2.0 * uniform(*parts, knot + 1) - 1.0
    return left + (right - left) * fraction
