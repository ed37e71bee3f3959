"""`jaxgal.fit`: one entry point for the CNN, refinement, HMC, and their combinations.

    table = jaxgal.fit(images, psf_images, noise, method="cnn+refine", zero_point=30.0,
                       pixel_scale=0.2)

Methods: "cnn" (the shipped GaLNet-2 of `preset`, cutouts of the preset's shape and pixel
scale), "refine" (least squares from the images' moments), "cnn+refine" (least squares
from the CNN's answer), "hmc" (refinement from the moments, then NUTS from the optimum,
`jaxgal.fitting.hmc`) and "cnn+refine+hmc" (CNN, refinement, NUTS). Returns an astropy
Table, one row per image in input order: `index`, the parameters named and in the units
of `jaxgal.Sersic` (magnitude, flux, r_eff, n, q, pa, x0, y0) each with `_err`, and for
refinement `chi2`, `dof`, `reduced_chi2`, `converged`; `n_masked` counts pixels left out
(masked, not finite, zero weight) and `flags` is a bit mask: 1 not converged, 2 pixels
left out, 4 HMC suspect. Refinement's `_err` are the Laplace errors at the optimum, which
for Gaussian noise are the Cramer-Rao bound at the fitted parameters: the Fisher matrix of
the forward model (autodiff Jacobian over the noise map), `jaxgal.fitting.fisher`.

For the HMC methods each parameter's column is its posterior median, `_err` half the width
of the 16-84 % interval, `_lo` and `_hi` its ends, `_refined` and `_refined_err` the
refined value and its Laplace error; `rhat_max`, `ess_min` (bulk) and `divergences` per
galaxy (`jaxgal.fitting.diagnostics.convergence`) set flag 4 when r-hat > 1.05, any draw
diverged, or the sampler returned non-finite values.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxgal.fitting.moments import moments_start
from jaxgal.fitting.noise_model import noise_sigma
from jaxgal.fitting.refine import refine
from jaxgal.light.psf import PixelPSF
from jaxgal.light.sersic import Sersic
from jaxgal.magnitudes import magnitude_to_flux
from jaxgal.render.psf_image import normalise_psf_stamps, stack_psf_stamps

METHODS = ("cnn", "cnn+refine", "refine", "hmc", "cnn+refine+hmc")
FLAG_NOT_CONVERGED = 1
FLAG_PIXELS_LEFT_OUT = 2
FLAG_HMC_SUSPECT = 4
RHAT_LIMIT = 1.05


def fit(
    images,
    psf_images=None,
    noise=None,
    *,
    method: str = "cnn+refine",
    zero_point: float | None = None,
    pixel_scale: float | None = None,
    preset: str = "kids",
    weight=None,
    mask=None,
    gain: float | None = None,
    read_noise: float = 0.0,
    sky: float = 0.0,
    start: Sersic | None = None,
    network=None,
    max_steps: int = 100,
    as_table: bool = True,
    key=None,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    prior: dict | None = None,
    return_posterior: bool = False,
):
    """Fit Sersic profiles to `images` (batch, ny, nx) or one (ny, nx), sky-subtracted, in
    counts. `psf_images`: (k, k) for all or (batch, k, k), odd k, normalised here; the
    network needs them, refinement uses them when given. `noise`: sigma per pixel (a map or
    a number), else `weight` (1 / sigma^2), else the GALFIT model from `gain`, `read_noise`
    and the subtracted `sky` (`jaxgal.fitting.noise_model`). `mask`: True where a pixel
    counts. `zero_point` and `pixel_scale` default to the `preset`'s. `start` overrides
    the starting point of "refine"; `network` the preset's shipped GaLNet-2.

    HMC methods: `key` (a `jax.random` key or an int seed; required, there is no default
    key), `num_warmup`, `num_samples` and `num_chains` per galaxy, `prior` (numpyro
    distributions by parameter name, see `jaxgal.fitting.hmc.log_prior`; flat by default).
    With `return_posterior` the result is (table, `Posterior`), whose samples hold every
    draw.
    """
    from jaxgal.simulate.presets import get_preset

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method.endswith("hmc") and key is None:
        raise ValueError(
            f"method {method!r} needs key= (a jax.random key or an int seed) for its draws"
        )
    survey = get_preset(preset)
    zero_point = survey.zero_point if zero_point is None else float(zero_point)
    pixel_scale = survey.pixel_scale if pixel_scale is None else float(pixel_scale)
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"images must be (batch, ny, nx) or (ny, nx), got {images.shape}")
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape[-2:] != images.shape[-2:]:
            raise ValueError(f"mask of shape {mask.shape} for images of {images.shape}")
        mask = np.broadcast_to(mask, images.shape)
    count = images.shape[0]
    kernels = None
    if psf_images is not None:
        kernels = stack_psf_stamps(psf_images, count)
        kernels = normalise_psf_stamps(np.where(np.isfinite(kernels), kernels, 0.0))

    columns: dict[str, np.ndarray] = {"index": np.arange(count)}
    cnn = None
    if method.startswith("cnn"):
        if kernels is None:
            raise ValueError(f"method {method!r} needs psf_images (GaLNet-2 reads the PSF)")
        if not np.isclose(pixel_scale, survey.pixel_scale):
            raise ValueError(
                f"the {preset} GaLNet is for {survey.pixel_scale} arcsec pixels, the images "
                f"have {pixel_scale}; use method='refine' or another preset"
            )
        if network is None:
            from jaxgal.networks.pretrained import pretrained

            network = pretrained(preset, "galnet2")
        finite_images = np.where(np.isfinite(images), images, 0.0)
        cnn = network.predict(finite_images, kernels, zero_point=zero_point)

    if method == "cnn":
        columns.update({name: np.asarray(value) for name, value in cnn.items()})
        left_out = ~np.isfinite(images) if mask is None else ~np.isfinite(images) | ~mask
        columns["n_masked"] = left_out.sum(axis=(1, 2))
        columns["flags"] = np.where(columns["n_masked"] > 0, FLAG_PIXELS_LEFT_OUT, 0)
        return _output(columns, as_table)

    sigma = noise_sigma(
        images, sigma=noise, weight=weight, gain=gain, read_noise=read_noise, sky=sky
    )
    if cnn is not None:
        begin = Sersic(
            magnitude_to_flux(jnp.asarray(cnn["magnitude"]), zero_point),
            jnp.asarray(cnn["r_eff"]),
            jnp.clip(jnp.asarray(cnn["n"]), 0.35, 7.9),
            jnp.clip(jnp.asarray(cnn["q"]), 0.05, 1.0),
            jnp.asarray(cnn["pa"]),
            jnp.asarray(cnn["x0"]),
            jnp.asarray(cnn["y0"]),
        )
    else:
        begin = start if start is not None else moments_start(images, pixel_scale)
    psfs = None if kernels is None else PixelPSF(jnp.asarray(kernels))
    result = refine(
        jnp.asarray(images),
        sigma,
        psfs,
        begin,
        pixel_scale,
        zero_point,
        None if mask is None else jnp.asarray(mask, bool),
        max_steps=max_steps,
    )
    values = {name: np.asarray(value) for name, value in result.as_dict().items()}
    columns.update(values)
    columns["flux"] = np.asarray(magnitude_to_flux(values["magnitude"], zero_point))
    columns["flux_err"] = columns["flux"] * 0.4 * np.log(10.0) * values["magnitude_err"]
    columns["dof"] = np.asarray(result.dof)
    usable = np.isfinite(images) & np.isfinite(np.asarray(sigma)) & (np.asarray(sigma) > 0)
    if mask is not None:
        usable &= np.asarray(mask, bool)
    columns["n_masked"] = (~usable).sum(axis=(1, 2))
    columns["flags"] = np.where(columns["converged"], 0, FLAG_NOT_CONVERGED) | np.where(
        columns["n_masked"] > 0, FLAG_PIXELS_LEFT_OUT, 0
    )
    if not method.endswith("hmc"):
        return _output(columns, as_table)
    posterior = _sample(
        images,
        sigma,
        psfs,
        result,
        pixel_scale,
        zero_point,
        mask,
        key,
        prior,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
    )
    columns.update(_posterior_columns(posterior, columns, zero_point))
    output = _output(columns, as_table)
    return (output, posterior) if return_posterior else output


def _sample(images, sigma, psfs, refined, pixel_scale, zero_point, mask, key, prior, **options):
    import jax

    from jaxgal.fitting.hmc import sample_posterior

    if isinstance(key, int | np.integer):
        key = jax.random.key(int(key))
    return sample_posterior(
        jnp.asarray(images),
        sigma,
        psfs,
        refined,
        pixel_scale,
        zero_point,
        key,
        mask=None if mask is None else jnp.asarray(mask, bool),
        prior=prior,
        **options,
    )


def _posterior_columns(posterior, columns: dict, zero_point) -> dict:
    """The HMC columns: medians as the main values, the refined ones kept as `_refined`."""
    from jaxgal.fitting.coordinates import PHYSICAL
    from jaxgal.fitting.diagnostics import convergence
    from jaxgal.fitting.hmc import posterior_intervals

    intervals = posterior_intervals(posterior.samples)
    out = {}
    for index, name in enumerate(PHYSICAL):
        lower, upper = intervals["lower"][:, index], intervals["upper"][:, index]
        out[name + "_refined"] = columns[name]
        out[name + "_refined_err"] = columns[name + "_err"]
        out[name] = intervals["median"][:, index]
        out[name + "_err"] = 0.5 * (upper - lower)
        out[name + "_lo"], out[name + "_hi"] = lower, upper
    out["flux_refined"], out["flux_refined_err"] = columns["flux"], columns["flux_err"]
    out["flux"] = np.asarray(magnitude_to_flux(out["magnitude"], zero_point))
    # the flux interval is the magnitude interval's image: faint end is the high magnitude
    out["flux_lo"] = np.asarray(magnitude_to_flux(out["magnitude_hi"], zero_point))
    out["flux_hi"] = np.asarray(magnitude_to_flux(out["magnitude_lo"], zero_point))
    out["flux_err"] = 0.5 * (out["flux_hi"] - out["flux_lo"])
    health = convergence(posterior)
    out.update(health)
    finite = np.all(np.isfinite(np.asarray(posterior.samples)), axis=(1, 2, 3))
    suspect = (health["rhat_max"] > RHAT_LIMIT) | (health["divergences"] > 0) | ~finite
    out["flags"] = columns["flags"] | np.where(suspect, FLAG_HMC_SUSPECT, 0)
    return out


ORDER = ("index", "magnitude", "flux", "r_eff", "n", "q", "pa", "x0", "y0")


def _output(columns: dict, as_table: bool):
    names = [n for n in ORDER if n in columns]
    ordered = {}
    for name in names:
        ordered[name] = columns[name]
        if name + "_err" in columns:
            ordered[name + "_err"] = columns[name + "_err"]
    for name, value in columns.items():
        ordered.setdefault(name, value)
    if not as_table:
        return ordered
    from astropy.table import Table

    return Table(ordered)
