"""Calibration of a trained GaLNet's uncertainties on fresh simulations.

A network trained by its Gaussian negative log-likelihood learns sigmas that are close to
calibrated on its training distribution, but not exactly (early stopping, a finite
schedule). Here each target's sigma gets one factor, fitted on simulations the network
never saw (keys folded with 2, training uses 1): the factor that puts 68.27 % of the
pulls (truth - mean) / sigma within +-1 (the 68.27th percentile of |pull|), the coverage
the 1-sigma intervals of a Gaussian promise.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from jaxgal.networks.galnet import GaLNet
from jaxgal.networks.labels import TARGETS, to_targets
from jaxgal.simulate.generator import make_simulator

ONE_SIGMA_COVERAGE = 0.6826894921370859  # P(|z| < 1) for a unit normal


def fit_sigma_scale(model: GaLNet, seed: int, count: int = 16384, batch: int = 512):
    """Per-target sigma factors for `model`, from `count` fresh simulations of its preset."""
    preset = model.preset
    simulate = make_simulator(preset, batch)
    forward = nnx.jit(lambda m, images, psfs: m(images, psfs))
    key = jax.random.fold_in(jax.random.key(seed), 2)
    pulls = []
    for i in range(max(count // batch, 1)):
        data = simulate(jax.random.fold_in(key, i))
        mean, sigma = forward(model, data.images, data.psf_images)
        targets = to_targets(data.labels, preset)
        pulls.append(np.asarray((targets - mean) / sigma))
    pulls = np.concatenate(pulls)
    current = np.asarray(model.sigma_scale)
    return tuple(
        float(c * np.quantile(np.abs(pulls[:, j]), ONE_SIGMA_COVERAGE))
        for j, c in enumerate(current[: len(TARGETS)])
    )
