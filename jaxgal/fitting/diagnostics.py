"""Diagnostics of HMC posteriors through arviz: InferenceData, r-hat, ESS, divergences,
and corner plots.

r-hat (rank-normalised split r-hat) and the bulk effective sample size are computed on the
sampler's smooth coordinates (`jaxgal.fitting.hmc.SAMPLING`: magnitude, ln r_eff, logit n,
v1, v2, x0, y0), where a posterior straddling pa = 0/180 or pressing on q = 1 is not cut by
a wall; summaries of the physical parameters come from `posterior_intervals`.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from jaxgal.fitting.coordinates import PHYSICAL
from jaxgal.fitting.hmc import SAMPLING, Posterior


def to_inference_data(posterior: Posterior, coordinates: bool = False, model=None):
    """An arviz InferenceData whose posterior group holds one variable a parameter, dims
    (chain, draw, galaxy): the physical parameters (default; one Sersic's `PHYSICAL`, or
    the `model`'s names) or the sampler's coordinates (`SAMPLING`, or the model's);
    `sample_stats` holds the divergences per galaxy."""
    import arviz as az

    values = np.asarray(posterior.coordinates if coordinates else posterior.samples)
    if model is None:
        names = SAMPLING if coordinates else PHYSICAL
    else:
        names = model.sampling if coordinates else model.names
    if len(names) != values.shape[-1]:
        raise ValueError(
            f"the posterior has {values.shape[-1]} parameters, the names {len(names)}: "
            "give its model"
        )
    # (galaxy, chain, draw, parameter) -> {name: (chain, draw, galaxy)}
    variables = {name: np.moveaxis(values[..., index], 0, -1) for index, name in enumerate(names)}
    data = az.from_dict(posterior=variables, dims={name: ["galaxy"] for name in names})
    data.add_groups(
        {"sample_stats": {"divergences": np.asarray(posterior.divergences)[None, None, :]}},
        dims={"divergences": ["galaxy"]},
    )
    return data


def convergence(posterior: Posterior, model=None) -> dict[str, np.ndarray]:
    """Per galaxy: `rhat_max` (the largest rank-normalised split r-hat over the sampler's
    coordinates; NaN with one chain), `ess_min` (the smallest bulk effective sample size)
    and `divergences` (after warm-up), all from arviz. `model`: the posterior's, when it
    is not one free Sersic."""
    import arviz as az

    data = to_inference_data(posterior, coordinates=True, model=model)
    names = SAMPLING if model is None else model.sampling
    chains = np.asarray(posterior.coordinates).shape[1]
    ess = az.ess(data, method="bulk")
    ess_min = np.min([ess[name].values for name in names], axis=0)
    if chains > 1:
        rhat = az.rhat(data, method="rank")
        rhat_max = np.max([rhat[name].values for name in names], axis=0)
    else:
        rhat_max = np.full(ess_min.shape, np.nan)
    return {
        "rhat_max": rhat_max,
        "ess_min": ess_min,
        "divergences": np.asarray(posterior.divergences),
    }


def summary(posterior: Posterior, galaxy: int | None = None, model=None):
    """arviz's summary table (a pandas DataFrame: mean, sd, hdi, mcse, ess, r-hat) of the
    physical parameters, of one `galaxy` or of all (rows named like 'r_eff[3]')."""
    import arviz as az

    data = to_inference_data(posterior, model=model)
    if galaxy is not None:
        data = data.isel(galaxy=[galaxy])
    return az.summary(data, var_names=list(PHYSICAL if model is None else model.names))


def corner_plot(samples, truths=None, path=None, labels=PHYSICAL):
    """A corner plot of one galaxy's `samples` ((chains, draws, k) or (draws, k)) with
    histograms on the diagonal and `truths` (k,) marked, if given. Written to `path`
    (atomically: a temporary file renamed into place) when given; returns the figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    samples = np.asarray(samples, dtype=np.float64)
    samples = samples.reshape(-1, samples.shape[-1])
    count = samples.shape[-1]
    figure, axes = plt.subplots(count, count, figsize=(1.6 * count, 1.6 * count))
    axes = np.atleast_2d(axes)
    for row in range(count):
        for column in range(count):
            axis = axes[row, column]
            if column > row:
                axis.set_visible(False)
                continue
            if column == row:
                axis.hist(samples[:, row], bins=30, color="0.3", histtype="step")
                if truths is not None:
                    axis.axvline(truths[row], color="tab:red")
                axis.set_yticks([])
            else:
                axis.plot(samples[:, column], samples[:, row], ",", color="0.2", alpha=0.5)
                if truths is not None:
                    axis.plot(truths[column], truths[row], "+", color="tab:red", ms=8)
            if row == count - 1:
                axis.set_xlabel(labels[column])
            else:
                axis.set_xticklabels([])
            if column == 0 and row > 0:
                axis.set_ylabel(labels[row])
            elif column > 0:
                axis.set_yticklabels([])
    figure.tight_layout()
    if path is not None:
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        suffix = os.path.splitext(path)[1] or ".png"
        handle, temporary = tempfile.mkstemp(suffix=suffix, dir=directory)
        os.close(handle)
        try:
            figure.savefig(temporary, dpi=100)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        plt.close(figure)
    return figure
