"""Fitting: refinement by least squares, HMC posteriors, and the `fit` entry point."""

from jaxgal.fitting.api import METHODS, fit
from jaxgal.fitting.coordinates import (
    COORDINATES,
    PHYSICAL,
    from_unconstrained,
    physical,
    to_unconstrained,
)
from jaxgal.fitting.diagnostics import convergence, corner_plot, summary, to_inference_data
from jaxgal.fitting.hmc import SAMPLING, Posterior, posterior_intervals, sample_posterior
from jaxgal.fitting.models import BulgeDisc, SersicModel
from jaxgal.fitting.moments import moments_start
from jaxgal.fitting.noise_model import noise_sigma
from jaxgal.fitting.refine import Refined, refine, refine_one

__all__ = [
    "BulgeDisc",
    "COORDINATES",
    "METHODS",
    "PHYSICAL",
    "Posterior",
    "Refined",
    "SAMPLING",
    "SersicModel",
    "convergence",
    "corner_plot",
    "fit",
    "from_unconstrained",
    "moments_start",
    "noise_sigma",
    "physical",
    "posterior_intervals",
    "refine",
    "refine_one",
    "sample_posterior",
    "summary",
    "to_inference_data",
    "to_unconstrained",
]
