"""Simulated galaxy populations: priors, survey presets, noise, and the batch generator."""

from jaxgal.simulate.generator import Batch, batch_stream, make_simulator, simulate_batch
from jaxgal.simulate.noise import NoiseBank, PSFBank, add_noise
from jaxgal.simulate.presets import (
    CSST,
    EUCLID_VIS,
    HST_ACS,
    KIDS,
    LSST,
    PRESETS,
    MoffatPrior,
    SurveyPreset,
    get_preset,
)
from jaxgal.simulate.priors import SersicPrior

__all__ = [
    "CSST",
    "EUCLID_VIS",
    "HST_ACS",
    "KIDS",
    "LSST",
    "PRESETS",
    "Batch",
    "MoffatPrior",
    "NoiseBank",
    "PSFBank",
    "SersicPrior",
    "SurveyPreset",
    "add_noise",
    "batch_stream",
    "get_preset",
    "make_simulator",
    "simulate_batch",
]
