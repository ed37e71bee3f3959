"""The networks' label space: Sersic parameters <-> well-behaved, scaled network targets.

Targets are (magnitude, ln r_eff, ln n, q, cos 2pa, sin 2pa, x0, y0), each mapped by the
galaxy prior's range to about [-1, 1]: t = (value - centre) / half_width. The angle enters as
(cos 2pa, sin 2pa), which has no wall at 0/180 degrees; the centre in units of the prior's
half-range. A network predicts a mean and a standard deviation per target (Gaussian);
`to_parameters` takes them back to Sersic parameters with propagated uncertainties.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxgal.simulate.presets import SurveyPreset

TARGETS = ("magnitude", "ln_r_eff", "ln_n", "q", "cos_2pa", "sin_2pa", "x0", "y0")


def target_scaling(preset: SurveyPreset) -> tuple[np.ndarray, np.ndarray]:
    """(centre, half_width) of each target, from the preset's galaxy prior."""
    prior = preset.galaxy
    ranges = [
        prior.magnitude,
        tuple(np.log(prior.r_eff)),
        tuple(np.log(prior.n)),
        prior.q,
        (-1.0, 1.0),
        (-1.0, 1.0),
        (-prior.centre * preset.pixel_scale, prior.centre * preset.pixel_scale),
        (-prior.centre * preset.pixel_scale, prior.centre * preset.pixel_scale),
    ]
    ranges = np.asarray(ranges, dtype=np.float64)
    return 0.5 * (ranges[:, 0] + ranges[:, 1]), 0.5 * (ranges[:, 1] - ranges[:, 0])


def to_targets(labels: dict, preset: SurveyPreset):
    """(batch, 8) scaled targets from a dict of parameters (magnitude, r_eff, n, q, pa in
    degrees, x0, y0 in arcsec)."""
    angle = jnp.deg2rad(2.0 * labels["pa"])
    raw = jnp.stack(
        [
            labels["magnitude"],
            jnp.log(labels["r_eff"]),
            jnp.log(labels["n"]),
            labels["q"],
            jnp.cos(angle),
            jnp.sin(angle),
            labels["x0"],
            labels["y0"],
        ],
        axis=-1,
    )
    centre, half_width = target_scaling(preset)
    return (raw - centre) / half_width


def to_parameters(mean, sigma, preset: SurveyPreset) -> dict:
    """Sersic parameters and their 1-sigma uncertainties (`*_err`) from predicted scaled
    targets: r_eff and n are exp of a Gaussian in ln (errors r_eff * sigma_ln); q is clipped
    to [0.05, 1] (what `Sersic` renders well); pa = atan2(sin 2pa, cos 2pa) / 2 in [0, 180) with
    the error propagated to first order."""
    centre, half_width = target_scaling(preset)
    mean = mean * half_width + centre
    sigma = sigma * half_width
    cos, sin = mean[..., 4], mean[..., 5]
    length2 = cos * cos + sin * sin
    pa = jnp.mod(jnp.rad2deg(0.5 * jnp.arctan2(sin, cos)), 180.0)
    pa_err = 0.5 * jnp.sqrt((sin * sigma[..., 4]) ** 2 + (cos * sigma[..., 5]) ** 2) / length2
    r_eff, n = jnp.exp(mean[..., 1]), jnp.exp(mean[..., 2])
    return {
        "magnitude": mean[..., 0],
        "magnitude_err": sigma[..., 0],
        "r_eff": r_eff,
        "r_eff_err": r_eff * sigma[..., 1],
        "n": n,
        "n_err": n * sigma[..., 2],
        "q": jnp.clip(mean[..., 3], 0.05, 1.0),
        "q_err": sigma[..., 3],
        "pa": pa,
        "pa_err": jnp.rad2deg(pa_err),
        "x0": mean[..., 6],
        "x0_err": sigma[..., 6],
        "y0": mean[..., 7],
        "y0_err": sigma[..., 7],
    }
