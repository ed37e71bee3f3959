"""Refinement: the maximum-likelihood Sersic of every galaxy of a batch at once.

For one galaxy the residuals r = mask (model(u) - image) / sigma, u the unconstrained
coordinates of the model (`jaxgal.fitting.models`), are minimised in least squares by
Levenberg-Marquardt (`jaxgal.fitting.least_squares`; residuals and Jacobian in one
forward-mode autodiff pass through `render`); `refine` vmaps that over a chunk of the batch
inside one jit. Each galaxy gets its own status (never raised): a galaxy whose solver did
not converge, or whose result is not finite, is flagged `converged = False`, never
silently returned as good.

Uncertainties are the Laplace (Gauss-Newton) approximation at the optimum: the covariance
of u is (J^T J)^-1, J the Jacobian of the residuals, carried to the physical parameters by
the Jacobian of `physical` (the delta method).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from jaxgal.fitting._threads import run_jobs
from jaxgal.fitting.coordinates import PHYSICAL
from jaxgal.fitting.fisher import physical_covariance
from jaxgal.fitting.least_squares import levenberg_marquardt
from jaxgal.fitting.models import SERSIC, SersicModel, sersic_values
from jaxgal.fitting.noise_model import usable_pixels
from jaxgal.grid import PixelGrid
from jaxgal.light.psf import PixelPSF
from jaxgal.light.sersic import Sersic
from jaxgal.render import render

# Stop when a step moves every coordinate by less than ATOL of its standard error and
# changes chi^2 / 2 by less than ATOL + RTOL of itself, or when the Gauss-Newton step from
# the best point is shorter than ATOL standard errors (`levenberg_marquardt`): far below
# what the data can tell (an error of 0.05 sigma adds 0.25 % to the variance). A tighter
# ATOL buys nothing in float32, whose rounding of chi^2 and of the Jacobian leaves the
# solver hunting for steps of ~0.01 sigma: 16 KiDS galaxies from GaLNet's start took 6.7
# evaluations each (up to 17) at 0.01, 4.1 at 0.05, for parameters within 0.04 sigma of
# each other; with the step measured in the joint metric (correlations included), 24
# galaxies of compare_methods took 3.7 each (up to 12; 4.5, up to 29, per coordinate).
RTOL = 1e-5
ATOL = 5e-2
# The core's spectrum is kept to |k| <= 2.5 pi / pixel for every PSF in fitting: for a
# `PixelPSF` the default render goes to 6.5 (to follow the side lobes of GalSim's Quintic
# interpolant), 5x the cost, for changes below 2e-3 of the peak pixel (q >= 0.05, PSF FWHM
# >= 2.3 pixels), smaller than the pixelised PSF's own error against the PSF it samples.
FIT_BANDWIDTH = 2.5


def fit_render(profiles: Sersic | list[Sersic], grid: PixelGrid, psf) -> Float[Array, "ny nx"]:
    """`render` as the fits use it: the core's spectrum to `FIT_BANDWIDTH` for every PSF."""
    return render(profiles, grid, psf, bandwidth=FIT_BANDWIDTH)


class Refined(NamedTuple):
    """Per galaxy: `parameters` (batch, P) as the model's `names` (for one Sersic
    `PHYSICAL`: magnitude, r_eff, n, q, pa, x0, y0), their Laplace `errors` (batch, P) and
    `covariance` (batch, P, P) (zero for fixed parameters), `chi2`, degrees of freedom
    `dof`, `reduced_chi2`, `converged`, `steps` taken, and the unconstrained optimum
    `coordinates` (batch, D), D the model's free coordinates."""

    parameters: Float[Array, "batch P"]
    errors: Float[Array, "batch P"]
    covariance: Float[Array, "batch P P"]
    chi2: Float[Array, " batch"]
    dof: Float[Array, " batch"]
    reduced_chi2: Float[Array, " batch"]
    converged: Bool[Array, " batch"]
    steps: Float[Array, " batch"]
    coordinates: Float[Array, "batch D"]

    def galaxies(self, zero_point, model=SERSIC) -> Sersic | list[Sersic]:
        """The fitted `Sersic` (batched); a list of components for a multi-component model."""
        profiles = model.profiles(self.parameters, zero_point)
        return profiles[0] if len(profiles) == 1 else profiles

    def as_dict(self, names=PHYSICAL) -> dict[str, Array]:
        out = {}
        for i, name in enumerate(names):
            out[name] = self.parameters[:, i]
            out[name + "_err"] = self.errors[:, i]
        return {
            **out,
            "chi2": self.chi2,
            "reduced_chi2": self.reduced_chi2,
            "converged": self.converged,
        }


def _residual_function(grid: PixelGrid, zero_point, bandwidth: float, model=SERSIC):
    def residuals(u, data):
        image, inverse_sigma, psf = data
        # a solver step gone non-finite must flag this galaxy, not raise for the batch
        finite = jnp.all(jnp.isfinite(u))
        profiles = model.profiles(model.physical(jnp.where(finite, u, 0.0)), zero_point)
        model_image = render(profiles, grid, psf, bandwidth=bandwidth)
        r = ((model_image - image) * inverse_sigma).reshape(-1)
        return jnp.where(finite, r, jnp.nan)

    return residuals


def refine_one(
    image: Float[Array, "ny nx"],
    sigma: Float[Array, "ny nx"],
    psf,
    start: Float[Array, " D"],
    grid: PixelGrid,
    zero_point,
    mask: Bool[Array, "ny nx"] | None = None,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    max_steps: int = 100,
    bandwidth: float = FIT_BANDWIDTH,
    model=SERSIC,
) -> Refined:
    """Refine one galaxy from unconstrained `start` (the `model`'s coordinates; see `refine`
    for the arguments)."""
    # pixels that are masked, not finite, or have no positive finite sigma do not count
    usable, image, inverse_sigma = usable_pixels(image, sigma, mask)
    residuals = _residual_function(grid, zero_point, bandwidth, model)
    data = (image, inverse_sigma, psf)

    def evaluate(u):
        jacobian, r = jax.jacfwd(lambda u: (residuals(u, data),) * 2, has_aux=True)(u)
        return r, jacobian

    solution = levenberg_marquardt(evaluate, start, rtol=rtol, atol=atol, max_steps=max_steps)
    u = model.canonical(solution.u)
    chi2 = 2.0 * solution.cost
    dof = jnp.sum(usable) - u.shape[-1]
    covariance = physical_covariance(solution.jacobian, u, model)
    errors = jnp.sqrt(jnp.diagonal(covariance))
    parameters = model.physical(u)
    finite = jnp.all(jnp.isfinite(parameters)) & jnp.all(jnp.isfinite(errors)) & jnp.isfinite(chi2)
    converged = solution.converged & finite
    return Refined(
        parameters,
        errors,
        covariance,
        chi2,
        dof.astype(chi2.dtype),
        chi2 / dof,
        converged,
        solution.steps,
        u,
    )


def refine(
    images: Float[Array, "batch ny nx"],
    sigma: Float[Array, "batch ny nx"],
    psfs,
    start,
    pixel_scale,
    zero_point,
    mask: Bool[Array, "batch ny nx"] | None = None,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    max_steps: int = 100,
    bandwidth: float = FIT_BANDWIDTH,
    chunk_size: int | None = None,
    threads: int | None = None,
    model=SERSIC,
) -> Refined:
    """Maximum-likelihood parameters of a batch of galaxies, all at once.

    `images` (counts), `sigma` (per-pixel noise, counts) and `mask` (True where a pixel
    counts) share the images' shape, any shape; `psfs` a batched PSF (`Moffat`, `Gaussian`
    or `PixelPSF` whose leaves have the batch axis; a (batch, k, k) array is taken as
    `PixelPSF` kernels) or None; `start` a batched `Sersic` (from a CNN, a user or a
    moments guess); `pixel_scale` in arcsec; `zero_point` for the magnitudes. `atol`,
    `rtol`: the solver stops when a step moves each coordinate by less than `atol` times
    its standard error (conditional, from the Jacobian at the start) and changes chi^2 / 2
    by less than `atol + rtol` of itself, or when the minimum is within `atol` standard
    errors by the Gauss-Newton step (`levenberg_marquardt`). `bandwidth`: of the core's
    spectrum, as in `render` (`FIT_BANDWIDTH` by default, for every PSF). `chunk_size`:
    galaxies solved together by one vectorised solver, which runs until its slowest one
    converges (default: 1 on a CPU, 256 on an accelerator); the chunks run in turn,
    compiled once for a shape of image whatever the number of galaxies. `threads`: chunks
    solved at once (default: the CPU's cores on a CPU, 1 on an accelerator); the results
    do not depend on it.
    """
    images = jnp.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"refine takes a batch of images (batch, ny, nx), got {images.shape}")
    sigma = jnp.broadcast_to(jnp.asarray(sigma, images.dtype), images.shape)
    if psfs is not None and not hasattr(psfs, "transfer"):
        psfs = PixelPSF(jnp.asarray(psfs, images.dtype))
    if isinstance(start, Sersic):
        if not isinstance(model, SersicModel):
            raise ValueError(f"a Sersic start is for a SersicModel; give {model.names} values")
        start = sersic_values(start, zero_point)
    start = jnp.asarray(start, images.dtype)
    if start.shape != (images.shape[0], len(model.names)):
        raise ValueError(
            f"start must hold {images.shape[0]} galaxies' {len(model.names)} parameters "
            f"{model.names}, got shape {start.shape}"
        )
    starts = model.unconstrained(model.with_constraints(start))

    if mask is None:
        mask = jnp.ones(images.shape, bool)
    count = images.shape[0]
    chunk = _chunk_size(chunk_size, count)
    arguments = (images, sigma, psfs, starts, jnp.asarray(mask, bool))
    options = dict(rtol=rtol, atol=atol, max_steps=max_steps, bandwidth=bandwidth, model=model)
    pixel_scale = jnp.asarray(pixel_scale, images.dtype)
    zero_point = jnp.asarray(zero_point, images.dtype)

    # Chunks of one size, the last padded with copies of the last galaxy: one compilation
    # serves any number of galaxies; on a CPU, chunks run at once in threads.
    # Chunks are cut on the host: an indexing op dispatched per array and chunk costs ~0.5 ms
    # of Python, as much as a galaxy's fit in a 2-core thread.
    host = jax.tree.map(np.asarray, arguments)

    def solve(begin):
        rows = np.minimum(np.arange(begin, begin + chunk), count - 1)
        part = jax.tree.map(lambda leaf: leaf[rows], host)
        return _refine_chunk(*part, pixel_scale, zero_point, **options)

    results = run_jobs(solve, range(0, count, chunk), threads)
    merged = jax.tree.map(lambda *parts: jnp.concatenate(parts)[:count], *results)
    return Refined(*merged)


def _chunk_size(chunk_size, count):
    if chunk_size is None:
        # On a CPU a vectorised solver runs until its slowest galaxy converges (1.5x slower
        # for 16 KiDS galaxies at once), so galaxies go one by one, a thread per core; an
        # accelerator needs many galaxies at once.
        chunk_size = 1 if jax.default_backend() == "cpu" else 256
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    return int(min(chunk_size, count))


@partial(jax.jit, static_argnames=("rtol", "atol", "max_steps", "bandwidth", "model"))
def _refine_chunk(
    images,
    sigma,
    psfs,
    starts,
    mask,
    pixel_scale,
    zero_point,
    *,
    rtol,
    atol,
    max_steps,
    bandwidth,
    model,
):
    grid = PixelGrid(images.shape[1:], pixel_scale)

    def one(image, noise, psf, u0, pixels_mask):
        return refine_one(
            image,
            noise,
            psf,
            u0,
            grid,
            zero_point,
            pixels_mask,
            rtol=rtol,
            atol=atol,
            max_steps=max_steps,
            bandwidth=bandwidth,
            model=model,
        )

    return jax.vmap(one)(images, sigma, psfs, starts, mask)
