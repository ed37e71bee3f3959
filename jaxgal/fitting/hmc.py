"""HMC posteriors of Sersic parameters: numpyro's NUTS on every galaxy (and chain) at once.

The posterior of one galaxy, in the sampler's coordinates

    z = (magnitude, ln r_eff, logit of n, v1, v2, x0, y0),  v = |v| (cos 2pa, sin 2pa),
    q = exp(-|v|^2),

is  log p(z | image) = log L(image | z) + log prior(physical(z)) + log |det d physical / dz|:
a Gaussian likelihood of the pixels (sigma map, mask), the prior written in the physical
parameters (magnitude, r_eff, n, q, pa, x0, y0) as numpyro distributions, and the Jacobian of
the map from z to them. z is refinement's u (`jaxgal.fitting.coordinates`) with its shape
w = -(ln q / 2)(cos 2pa, sin 2pa) replaced by v = w sqrt(2 / |w|) (so w = |v| v / 2): a
prior uniform in q and pa, whose density in w is ~ 1 / |w| (infinite at round galaxies), is
the smooth Gaussian exp(-|v|^2) in v, and q -> 1 is v -> 0, an ordinary interior point
(the image is C1 in v there, its gradient continuous). Every z is a renderable galaxy, and
a refined fit hands over to the sampler by that one change of the shape coordinates.

Sampling: for each galaxy, the Laplace approximation at the starting point (the refined
optimum), covariance C = (J^T J + prior curvature)^-1 (J the Jacobian of the noise-scaled
residuals in z; see `laplace_whitening`), whitens the coordinates:
NUTS runs on zeta with z = z_start + chol(C) zeta, so every galaxy looks like a standard
normal to the sampler, at any brightness and in float32 too. numpyro's functional HMC
(`numpyro.infer.hmc.hmc(potential_fn_gen=..., algo="NUTS")`) is vmapped over chains and
galaxies: each chain adapts its own step size and dense mass matrix, chains start at
z_start + chol(C) N(0, 1), and warm-up and sampling are one `lax.scan` in one jit.
A vmapped NUTS step costs the deepest tree in the batch, so `max_tree_depth` is modest.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int
from numpyro.infer.hmc import hmc

from jaxgal.fitting._threads import default_threads, run_jobs
from jaxgal.fitting.coordinates import PHYSICAL
from jaxgal.fitting.models import SERSIC
from jaxgal.fitting.noise_model import usable_pixels
from jaxgal.fitting.refine import fit_render
from jaxgal.grid import PixelGrid
from jaxgal.light.psf import PixelPSF

SAMPLING = SERSIC.sampling


# --- the sampler's coordinates ------------------------------------------------------------


def sampling_from_unconstrained(u: Float[Array, "... D"], model=SERSIC) -> Float[Array, "... D"]:
    """z of refinement's coordinates u: each shape pair w becomes v = w sqrt(2 / |w|)."""
    return model.to_sampling(u)


def unconstrained_from_sampling(z: Float[Array, "... D"], model=SERSIC) -> Float[Array, "... D"]:
    """Refinement's u of the sampler's z: w = |v| v / 2 (smooth, finite gradient at v = 0)."""
    return model.from_sampling(z)


def sampling_physical(z: Float[Array, "... D"], model=SERSIC) -> Float[Array, "... P"]:
    """The physical parameters of z (one Sersic: magnitude, r_eff, n, q, pa, x0, y0); pa
    in degrees in [0, 180)."""
    return model.physical(model.from_sampling(z))


def log_jacobian(z: Float[Array, "... D"], model=SERSIC) -> Float[Array, "..."]:
    """log |det d(free physical parameters) / dz|, analytic.

    r_eff = e^{ln r_eff} gives ln r_eff; n = n_min + (n_max - n_min) sigmoid(t) gives
    ln(n_max - n_min) + ln sigmoid(t) + ln sigmoid(-t); in polar coordinates of v
    (rho, phi), q = exp(-rho^2) and pa = (90 / pi) phi degrees give dq dpa =
    (180 / pi) q rho drho dphi = (180 / pi) q dv1 dv2, so ln(180 / pi) - |v|^2; a bounded
    parameter is n's case on its bounds. (Beyond r_eff = e^15 arcsec or q = e^-40, where
    the coordinates clip, it is not exact.)
    """
    return model.log_jacobian(z)


# --- the posterior --------------------------------------------------------------------------


def log_prior(
    parameters: Float[Array, " P"], prior: dict | None, names=PHYSICAL
) -> Float[Array, ""]:
    """log prior density of physical `parameters` named `names` (one Sersic's by default:
    magnitude, r_eff, n, q, pa, x0, y0).

    `prior` maps names to numpyro distributions (e.g.
    `SersicPrior().distributions(pixel_scale)`); a name left out is flat in magnitude, in
    ln r_eff, n, q, pa, x0 or y0 (within what `Sersic` renders, or its bounds); None leaves
    all flat. A fixed parameter's prior is a constant. A
    value outside a distribution's support has density 0 (log -inf): NUTS rejects it, and
    a posterior that presses on a hard bound shows divergences.
    """
    prior = {} if prior is None else prior
    total = jnp.zeros((), parameters.dtype)
    for index, name in enumerate(names):
        value = parameters[index]
        if name not in prior:
            if name == "r_eff" or name.endswith("_r_eff"):
                total = total - jnp.log(value)
            continue
        distribution = prior[name]
        inside = distribution.support(value)
        # evaluate inside the support only (no warnings, no NaN gradients), then mask
        safe = jnp.where(inside, value, distribution.mean)
        total = total + jnp.where(inside, distribution.log_prob(safe), -jnp.inf)
    return total


def log_posterior(
    z, image, inverse_sigma, psf, grid: PixelGrid, zero_point, prior, forward, model=SERSIC
):
    """Unnormalised log posterior density of one galaxy in the sampler's coordinates z.

    `inverse_sigma` is 1 / sigma on usable pixels and 0 on the rest; `forward(profiles,
    grid, psf)` the model image of the `model`'s profiles (`fit_render` by default)."""
    # a trajectory gone non-finite (a divergence) is rejected, never rendered: rendering
    # would raise for the whole batch
    finite = jnp.all(jnp.isfinite(z))
    z = jnp.where(finite, z, 0.0)
    parameters = sampling_physical(z, model)
    model_image = forward(model.profiles(parameters, zero_point), grid, psf)
    residuals = (model_image - image) * inverse_sigma
    value = (
        -0.5 * jnp.sum(residuals * residuals)
        + log_prior(parameters, prior, model.names)
        + model.log_jacobian(z)
    )
    return jnp.where(finite & ~jnp.isnan(value), value, -jnp.inf)


def laplace_whitening(z, image, inverse_sigma, psf, grid, zero_point, prior, forward, model=SERSIC):
    """chol(H^-1) (D, D): H = J^T J (J the Jacobian of the noise-scaled residuals at z: the
    Gauss-Newton curvature of the likelihood) + the diagonal curvature of the prior and
    Jacobian terms where positive (a prior narrower than the data, the shape's pull to
    q = 1) + 1 (so that H is invertible where neither says anything, with a scale of at most
    one unit of a coordinate: 1 magnitude, a factor e in r_eff, 1 arcsec, a logit's width;
    a coordinate the data pin down has H >> 1, and NUTS adapts its mass matrix anyway)."""

    def residuals(z):
        profiles = model.profiles(sampling_physical(z, model), zero_point)
        return ((forward(profiles, grid, psf) - image) * inverse_sigma).reshape(-1)

    def prior_terms(z):
        return log_prior(sampling_physical(z, model), prior, model.names) + model.log_jacobian(z)

    jacobian = jax.jacfwd(residuals)(z)
    prior_curvature = jnp.clip(-jnp.diagonal(jax.hessian(prior_terms)(z)), 0.0, None)
    prior_curvature = jnp.where(jnp.isfinite(prior_curvature), prior_curvature, 0.0)
    identity = jnp.eye(z.shape[-1], dtype=z.dtype)
    precision = jacobian.T @ jacobian + jnp.diag(prior_curvature) + identity
    factor = jnp.linalg.cholesky(jnp.linalg.inv(precision))
    return jnp.where(jnp.all(jnp.isfinite(factor)), factor, identity)


# --- sampling many galaxies at once ---------------------------------------------------------


class Posterior(NamedTuple):
    """Per galaxy: `samples` (batch, chains, draws, P) of the model's physical parameters
    (one Sersic: `PHYSICAL`, magnitude, r_eff, n, q, pa, x0, y0), the same draws in the
    sampler's coordinates `coordinates` (D of them; one Sersic: `SAMPLING`; smooth, for
    r-hat and ESS), `divergences` after warm-up (batch,), `leapfrog_steps`
    (batch, chains): the gradient evaluations of the sampling phase, and the adapted
    `step_size` (batch, chains) in whitened coordinates."""

    samples: Float[Array, "batch chains draws P"]
    coordinates: Float[Array, "batch chains draws D"]
    divergences: Int[Array, " batch"]
    leapfrog_steps: Int[Array, "batch chains"]
    step_size: Float[Array, "batch chains"]


def sample_posterior(
    images: Float[Array, "batch ny nx"],
    sigma,
    psfs,
    start,
    pixel_scale,
    zero_point,
    key,
    *,
    mask: Bool[Array, "batch ny nx"] | None = None,
    prior: dict | None = None,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    max_tree_depth: int = 7,
    target_accept_prob: float = 0.8,
    dense_mass: bool = True,
    forward: Callable = fit_render,
    model=SERSIC,
    threads: int | None = None,
) -> Posterior:
    """NUTS posterior samples of the parameters of every galaxy of a batch, at once.

    `images` (counts), `sigma` (per-pixel noise, counts) and `mask` (True where a pixel
    counts) as for `refine`; NaN/inf pixels or sigma <= 0 are left out. `psfs`: a batched
    PSF, a (batch, k, k) kernel array, or None. `model`: what is fitted (one Sersic by
    default; `jaxgal.fitting.models`). `start`: refinement's result (`Refined`) for that
    model, or its unconstrained coordinates u (batch, D). `key`: a `jax.random` key, split over the
    galaxies by their index, or one key per galaxy (batch,) so that a galaxy's draws do
    not depend on the rest of the batch. `prior`: see `log_prior`. `forward(galaxy, grid,
    psf) -> image`: the forward model (`fit_render`: `render` with refinement's bandwidth;
    pass a stable function, it is static under jit). `num_warmup` steps adapt each chain's
    step size and (dense) mass matrix; then `num_samples` draws per chain. `threads`: on a
    CPU (the default there: one per core) each chain runs on its own, in threads; with 1, all
    chains of all galaxies run as one vectorised program (the default on an accelerator).
    The draws do not depend on it.
    """
    images = jnp.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"sample_posterior takes images (batch, ny, nx), got {images.shape}")
    count = images.shape[0]
    starts = model.canonical(jnp.asarray(getattr(start, "coordinates", start), images.dtype))
    if starts.shape != (count, model.size):
        raise ValueError(
            f"start must hold {count} galaxies' coordinates (batch, {model.size}) of "
            f"{model.coordinates}, got {starts.shape}"
        )
    if num_chains < 1 or num_samples < 1 or num_warmup < 0:
        raise ValueError(
            "num_chains and num_samples must be >= 1 and num_warmup >= 0, got "
            f"{num_chains}, {num_samples}, {num_warmup}"
        )
    keys = galaxy_keys(key, count)
    sigma = jnp.broadcast_to(jnp.asarray(sigma, images.dtype), images.shape)
    _, usable_images, inverse_sigma = usable_pixels(images, sigma, mask)
    if psfs is not None and not hasattr(psfs, "transfer"):
        psfs = PixelPSF(jnp.asarray(psfs, images.dtype))
    arguments = (usable_images, inverse_sigma, psfs, model.to_sampling(starts), keys)
    constants = (jnp.asarray(pixel_scale, images.dtype), jnp.asarray(zero_point, images.dtype))
    options = dict(
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        max_tree_depth=max_tree_depth,
        target_accept_prob=target_accept_prob,
        dense_mass=dense_mass,
        forward=forward,
        model=model,
    )
    if threads is None:
        threads = default_threads()
    if threads == 1:  # one vectorised run of every galaxy's chains (an accelerator's way)
        return _sample_batch(*arguments, *constants, prior, 0, chain_count=num_chains, **options)

    # A chain at a time, in threads: a vectorised NUTS step waits for the longest trajectory
    # of the chains it holds, and XLA runs one chain's arrays on about one core of a CPU.
    def one_chain(job):
        galaxy, chain = job
        part = jax.tree.map(lambda leaf: leaf[galaxy : galaxy + 1], arguments)
        return _sample_batch(*part, *constants, prior, chain, chain_count=1, **options)

    jobs = [(galaxy, chain) for galaxy in range(count) for chain in range(num_chains)]
    runs = run_jobs(one_chain, jobs, threads)
    # each run holds one galaxy's one chain: (1, 1, ...), and divergences (1,)
    joined = jax.tree.map(
        lambda *leaves: jnp.concatenate(leaves).reshape((count, num_chains) + leaves[0].shape[2:]),
        *runs,
    )
    return joined._replace(divergences=jnp.sum(joined.divergences, axis=1))


def galaxy_keys(key, count: int):
    """One typed key per galaxy: a single key (typed, or raw uint32 (2,)) is folded with each
    galaxy's index; a batch of keys (count,) or raw (count, 2) is used as it is."""
    if not jax.dtypes.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    if key.ndim == 0:
        return jax.vmap(lambda index: jax.random.fold_in(key, index))(jnp.arange(count))
    if key.shape != (count,):
        raise ValueError(f"key must be one key or one per galaxy ({count}), got {key.shape}")
    return key


@partial(
    jax.jit,
    static_argnames=(
        "num_warmup",
        "num_samples",
        "num_chains",
        "chain_count",
        "max_tree_depth",
        "target_accept_prob",
        "dense_mass",
        "forward",
        "model",
    ),
)
def _sample_batch(
    images,
    inverse_sigma,
    psfs,
    starts,
    keys,
    pixel_scale,
    zero_point,
    prior,
    first_chain,
    *,
    chain_count,
    num_warmup,
    num_samples,
    num_chains,
    max_tree_depth,
    target_accept_prob,
    dense_mass,
    forward,
    model,
):
    grid = PixelGrid(images.shape[1:], pixel_scale)

    def potential_fn_gen(image, weights, psf, centre, whitening):
        def potential(zeta):
            z = centre + whitening @ zeta
            return -log_posterior(z, image, weights, psf, grid, zero_point, prior, forward, model)

        return potential

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")

    def one_chain(key, data):
        start_key, init_key = jax.random.split(key)
        zeta0 = jax.random.normal(start_key, (model.size,), starts.dtype)
        state = init_kernel(
            zeta0,
            num_warmup,
            dense_mass=dense_mass,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            model_args=data,
            rng_key=init_key,
        )

        def step(state, _):
            state = sample_kernel(state, model_args=data)
            return state, (state.z, state.diverging, state.num_steps)

        # one scan for warm-up and draws: numpyro's NUTS is traced (and compiled) once
        state, (zetas, diverging, steps) = jax.lax.scan(
            step, state, None, length=num_warmup + num_samples
        )
        zetas, diverging, steps = (x[num_warmup:] for x in (zetas, diverging, steps))
        return zetas, jnp.sum(diverging), jnp.sum(steps), state.adapt_state.step_size

    def one_galaxy(image, weights, psf, start, key):
        start = jnp.where(jnp.isfinite(start), start, 0.0)
        whitening = laplace_whitening(
            start, image, weights, psf, grid, zero_point, prior, forward, model
        )
        data = (image, weights, psf, start, whitening)
        # chains first_chain .. first_chain + chain_count - 1 of num_chains: a chain's draws
        # are the same whether it runs alone or with the others
        chain_keys = jax.random.split(key, num_chains)
        chain_keys = jax.lax.dynamic_slice_in_dim(chain_keys, first_chain, chain_count)
        zetas, divergences, steps, step_size = jax.vmap(one_chain, in_axes=(0, None))(
            chain_keys, data
        )
        z = start + jnp.einsum("ij,cdj->cdi", whitening, zetas)
        return z, jnp.sum(divergences), steps, step_size

    z, divergences, steps, step_size = jax.vmap(one_galaxy)(
        images, inverse_sigma, psfs, starts, keys
    )
    return Posterior(sampling_physical(z, model), z, divergences, steps, step_size)


def posterior_intervals(samples: Float[np.ndarray, "batch chains draws P"], periodic=(4,)) -> dict:
    """Per galaxy and parameter: `median`, `lower` (16 %) and `upper` (84 %) percentiles of
    `samples` over chains and draws (batch, P). The position angles (`periodic`: indices,
    one Sersic's pa by default; a model's `periodic`) have period 180: their draws are
    unwrapped around their circular mean before the percentiles, so a posterior straddling
    0/180 degrees gets an honest interval; the median is mapped back to [0, 180), the
    bounds stay continuous with it (the lower one may be < 0, the upper one >= 180)."""
    samples = np.asarray(samples, dtype=np.float64)
    flat = samples.reshape(samples.shape[0], -1, samples.shape[-1]).copy()
    for index in periodic:
        angle = np.deg2rad(2.0 * flat[..., index])
        centre = 0.5 * np.rad2deg(np.arctan2(np.sin(angle).mean(1), np.cos(angle).mean(1)))
        flat[..., index] = (
            centre[:, None] + (flat[..., index] - centre[:, None] + 90.0) % 180.0 - 90.0
        )
    lower, median, upper = np.percentile(flat, [16.0, 50.0, 84.0], axis=1)
    for index in periodic:
        shift = np.floor(median[:, index] / 180.0) * 180.0
        for array in (lower, median, upper):
            array[:, index] -= shift
    return {"median": median, "lower": lower, "upper": upper}
