"""Fitting: refinement by least squares (and, to come, HMC and the `fit` entry point)."""

from jaxgal.fitting.coordinates import (
    COORDINATES,
    PHYSICAL,
    from_unconstrained,
    physical,
    to_unconstrained,
)
from jaxgal.fitting.refine import Refined, refine, refine_one

__all__ = [
    "COORDINATES",
    "PHYSICAL",
    "Refined",
    "from_unconstrained",
    "physical",
    "refine",
    "refine_one",
    "to_unconstrained",
]
