"""Fitting: refinement by least squares, and the `fit` entry point (HMC to come)."""

from jaxgal.fitting.api import METHODS, fit
from jaxgal.fitting.coordinates import (
    COORDINATES,
    PHYSICAL,
    from_unconstrained,
    physical,
    to_unconstrained,
)
from jaxgal.fitting.moments import moments_start
from jaxgal.fitting.noise_model import noise_sigma
from jaxgal.fitting.refine import Refined, refine, refine_one

__all__ = [
    "COORDINATES",
    "METHODS",
    "PHYSICAL",
    "Refined",
    "fit",
    "from_unconstrained",
    "moments_start",
    "noise_sigma",
    "physical",
    "refine",
    "refine_one",
    "to_unconstrained",
]
