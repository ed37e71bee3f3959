"""The optimiser's (and the sampler's) coordinates for a Sersic: unconstrained, smooth.

    u = (magnitude, ln r_eff, logit((n - n_min) / (n_max - n_min)), w1, w2, x0, y0)

with the shape as w = -(ln q / 2) (cos 2pa, sin 2pa), so q = exp(-2 |w|) and
pa = atan2(w2, w1) / 2. The image is smooth in w through q = 1, where (q, pa) has a
wall at pa = 0/180 and a singular point (1 - q is 2 |w| to first order, and the image
depends on (1 - q) (cos 2pa, sin 2pa) ~ 2 w there); `safe_sqrt` keeps autodiff finite at
w = 0. Every coordinate is unbounded, so any u is a renderable galaxy.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxgal.light.sersic import N_MAX, N_MIN, Sersic, safe_sqrt
from jaxgal.magnitudes import flux_to_magnitude, magnitude_to_flux

COORDINATES = ("magnitude", "ln_r_eff", "n_logit", "w1", "w2", "x0", "y0")
PHYSICAL = ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0")


def to_unconstrained(galaxy: Sersic, zero_point):
    """u (..., 7) of a `Sersic` (a batch: leaves with a leading axis)."""
    magnitude = flux_to_magnitude(galaxy.flux, zero_point)
    fraction = (galaxy.n - N_MIN) / (N_MAX - N_MIN)
    n_logit = jnp.log(fraction) - jnp.log1p(-fraction)
    half_ln_q = -0.5 * jnp.log(galaxy.q)
    angle = jnp.deg2rad(2.0 * galaxy.pa)
    return jnp.stack(
        [
            magnitude,
            jnp.log(galaxy.r_eff),
            n_logit,
            half_ln_q * jnp.cos(angle),
            half_ln_q * jnp.sin(angle),
            galaxy.x0,
            galaxy.y0,
        ],
        axis=-1,
    )


def physical(u):
    """(magnitude, r_eff, n, q, pa, x0, y0) (..., 7) of coordinates u; pa in [0, 180)."""
    magnitude, ln_r, n_logit, w1, w2, x0, y0 = jnp.moveaxis(u, -1, 0)
    # far outside any galaxy (r_eff beyond e^+-15 arcsec, q below e^-40) the coordinates are
    # clipped so that a wandering solver step still renders, in float32 too
    ln_r = jnp.clip(ln_r, -15.0, 15.0)
    # likewise magnitudes: beyond these a flux overflows float32 for any usual zero point
    magnitude = jnp.clip(magnitude, -50.0, 100.0)
    length = jnp.minimum(safe_sqrt(w1 * w1 + w2 * w2), 20.0)
    n = N_MIN + (N_MAX - N_MIN) * jnp.reciprocal(1.0 + jnp.exp(-n_logit))
    # atan2 at w = 0 has no gradient to give: the image does not depend on pa at q = 1
    at_origin = length == 0.0
    pa = 0.5 * jnp.rad2deg(
        jnp.arctan2(jnp.where(at_origin, 0.0, w2), jnp.where(at_origin, 1.0, w1))
    )
    return jnp.stack(
        [magnitude, jnp.exp(ln_r), n, jnp.exp(-2.0 * length), jnp.mod(pa, 180.0), x0, y0],
        axis=-1,
    )


def from_unconstrained(u, zero_point) -> Sersic:
    """The `Sersic` of coordinates u (one galaxy, or a batch with leading axes)."""
    magnitude, r_eff, n, q, pa, x0, y0 = jnp.moveaxis(physical(u), -1, 0)
    return Sersic(magnitude_to_flux(magnitude, zero_point), r_eff, n, q, pa, x0, y0)
