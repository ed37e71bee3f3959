"""The Cramer-Rao bound of Sersic parameters: the best precision any unbiased estimator
can reach on an image, from the Fisher matrix of the forward model.

For Gaussian pixel noise the Fisher matrix in coordinates u is J^T J, J the Jacobian of the
model image divided by sigma (forward-mode autodiff through `render`); the bound on the
physical parameters (magnitude, r_eff, n, q, pa, x0, y0) is the diagonal of
P (J^T J)^-1 P^T, P the Jacobian of `physical` (as refinement's Laplace errors, but at the
true parameters rather than at the fit).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgal.fitting.coordinates import from_unconstrained, to_unconstrained
from jaxgal.fitting.models import SERSIC
from jaxgal.grid import PixelGrid
from jaxgal.light.sersic import Sersic
from jaxgal.render import render


def physical_covariance(jacobian, u, model=SERSIC):
    """P (J^T J)^-1 P^T: the covariance of the `model`'s physical parameters (one Sersic:
    magnitude, r_eff, n, q, pa, x0, y0) from the Jacobian J (pixels, D) of the noise-scaled
    model (or residuals) in its coordinates u (D,). A coordinate on its bound
    (`model.at_bound`) is held there: it has no variance and no covariance (Imfit's pegged
    parameters)."""
    pegged = model.at_bound(u)
    free = ~(pegged[:, None] | pegged[None, :])
    identity = jnp.eye(u.shape[-1], dtype=jacobian.dtype)
    normal = jnp.where(free, jacobian.T @ jacobian, identity)
    covariance_u = jnp.where(free, jnp.linalg.inv(normal), 0.0)
    to_physical = jax.jacfwd(model.physical)(u)
    return to_physical @ covariance_u @ to_physical.T


def cramer_rao(galaxies: Sersic, sigma, psfs, shape, pixel_scale, zero_point, mask=None):
    """(batch, 7) Cramer-Rao standard deviations of (magnitude, r_eff, n, q, pa, x0, y0) for
    a batch of `galaxies` observed on images of `shape` with noise `sigma` (batch, ny, nx)
    and `psfs` (batched, as for `refine`)."""
    grid = PixelGrid(shape, pixel_scale)
    u = to_unconstrained(galaxies, zero_point)
    sigma = jnp.broadcast_to(jnp.asarray(sigma, u.dtype), (u.shape[0], *shape))
    usable = jnp.isfinite(sigma) & (sigma > 0)
    if mask is not None:
        usable = usable & mask
    inverse_sigma = jnp.where(usable, 1.0 / jnp.where(usable, sigma, 1.0), 0.0)

    def one(u, inverse_sigma, psf):
        def scaled_model(u):
            return (render(from_unconstrained(u, zero_point), grid, psf) * inverse_sigma).ravel()

        return jnp.sqrt(jnp.diagonal(physical_covariance(jax.jacfwd(scaled_model)(u), u)))

    return jax.jit(jax.vmap(one))(u, inverse_sigma, psfs)
