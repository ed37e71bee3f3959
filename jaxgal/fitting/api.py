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
left out, 4 HMC suspect, 8 a parameter on its bound (a user's bound, or n's range 0.3-8:
held there, its `_err` 0, as Imfit does). Refinement's `_err` are the Laplace errors at
the optimum, which for Gaussian noise are the Cramer-Rao bound at the fitted parameters:
the Fisher matrix of the forward model (autodiff Jacobian over the noise map),
`jaxgal.fitting.fisher`.

`model`: what is fitted (`jaxgal.fitting.models`): one Sersic by default, any of whose
parameters can be fixed or bounded (`SersicModel(fixed={"n": 4.0})`), or `BulgeDisc()`, a
Sersic bulge plus an exponential disc with their own size, q and pa and one centre (unless
`shared_centre=False`), fitted by "refine", "cnn+refine" and the HMC methods from two
starts, the CNN's (or the moments') one-Sersic answer split into a bulge and a disc
(`BulgeDisc.start`) and the same split of a one-Sersic fit from it, the better fit kept for
each galaxy. Its columns are its parameters (bulge_*, disc_*, x0, y0), each magnitude's
flux, and the total `magnitude` and bulge-to-total flux ratio `bt` with their errors
(propagated through the covariance, or from the draws).

For the HMC methods each parameter's column is its posterior median, `_err` half the width
of the 16-84 % interval, `_lo` and `_hi` its ends, `_refined` and `_refined_err` the
refined value and its Laplace error; `rhat_max`, `ess_min` (bulk) and `divergences` per
galaxy (`jaxgal.fitting.diagnostics.convergence`) set flag 4 when r-hat > 1.05, any draw
diverged, or the sampler returned non-finite values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgal.fitting.models import SERSIC, BulgeDisc, SersicModel, sersic_values
from jaxgal.fitting.moments import moments_start
from jaxgal.fitting.noise_model import noise_sigma, usable_pixels
from jaxgal.fitting.refine import refine
from jaxgal.light.psf import PixelPSF
from jaxgal.light.sersic import Sersic
from jaxgal.magnitudes import magnitude_to_flux
from jaxgal.render.psf_image import normalise_psf_stamps, stack_psf_stamps

METHODS = ("cnn", "cnn+refine", "refine", "hmc", "cnn+refine+hmc")
FLAG_NOT_CONVERGED = 1
FLAG_PIXELS_LEFT_OUT = 2
FLAG_HMC_SUSPECT = 4
FLAG_AT_BOUND = 8
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
    start=None,
    model=None,
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
    counts. `zero_point` and `pixel_scale` default to the `preset`'s. `model`: one Sersic
    (`SersicModel()`, the default) or `BulgeDisc()`, with fixed or bounded parameters.
    `start` overrides the starting point of "refine": a batched `Sersic` guess, or (for a
    multi-component model) its physical values (batch, len(model.names)); `network` the
    preset's shipped GaLNet-2.

    HMC methods: `key` (a `jax.random` key or an int seed; required, there is no default
    key), `num_warmup`, `num_samples` and `num_chains` per galaxy, `prior` (numpyro
    distributions by parameter name, see `jaxgal.fitting.hmc.log_prior`; flat by default;
    a prior on an interval bounds that parameter, in refinement too: `model.within_prior`).
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
    model = SERSIC if model is None else model
    if not isinstance(model, SersicModel | BulgeDisc):
        raise TypeError(f"model must be a SersicModel or a BulgeDisc, got {type(model).__name__}")
    if method == "cnn" and model != SERSIC:
        raise ValueError(
            "method 'cnn' gives the shipped network's free one-Sersic answer; for a model "
            f"with constraints or components ({model}) use 'cnn+refine'"
        )
    if method.endswith("hmc"):
        # the prior's supports bound the coordinates (refinement's and the sampler's)
        model = model.within_prior(prior)
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
    psfs = None if kernels is None else PixelPSF(jnp.asarray(kernels))
    jax_mask = None if mask is None else jnp.asarray(mask, bool)

    def refine_from(begin, fit_model):
        return refine(
            jnp.asarray(images),
            sigma,
            psfs,
            begin,
            pixel_scale,
            zero_point,
            jax_mask,
            max_steps=max_steps,
            model=fit_model,
        )

    if cnn is not None:
        guess = Sersic(
            magnitude_to_flux(jnp.asarray(cnn["magnitude"]), zero_point),
            jnp.asarray(cnn["r_eff"]),
            jnp.clip(jnp.asarray(cnn["n"]), 0.35, 7.9),
            jnp.clip(jnp.asarray(cnn["q"]), 0.05, 1.0),
            jnp.asarray(cnn["pa"]),
            jnp.asarray(cnn["x0"]),
            jnp.asarray(cnn["y0"]),
        )
    elif start is not None:
        guess = start
    else:
        guess = moments_start(images, pixel_scale)
    if isinstance(guess, Sersic) and isinstance(model, BulgeDisc):
        result = _refine_bulge_disc(refine_from, sersic_values(guess, zero_point), model)
    else:
        begin = guess
        if isinstance(guess, Sersic):
            begin = model.start(sersic_values(guess, zero_point))
        result = refine_from(jnp.asarray(begin), model)
    values = {name: np.asarray(value) for name, value in result.as_dict(model.names).items()}
    columns.update(values)
    columns.update(_fluxes(values, model, zero_point))
    if isinstance(model, BulgeDisc):
        columns.update(_bulge_disc_totals(np.asarray(result.parameters), result.covariance, model))
    columns["dof"] = np.asarray(result.dof)
    usable, _, _ = usable_pixels(jnp.asarray(images), sigma, jax_mask)
    columns["n_masked"] = np.asarray(~usable).sum(axis=(1, 2))
    at_bound = np.any(np.asarray(model.at_bound(result.coordinates)), axis=-1)
    columns["flags"] = (
        np.where(columns["converged"], 0, FLAG_NOT_CONVERGED)
        | np.where(columns["n_masked"] > 0, FLAG_PIXELS_LEFT_OUT, 0)
        | np.where(at_bound, FLAG_AT_BOUND, 0)
    )
    if not method.endswith("hmc"):
        return _output(columns, as_table, model)
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
        model,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
    )
    columns.update(_posterior_columns(posterior, columns, zero_point, model))
    output = _output(columns, as_table, model)
    return (output, posterior) if return_posterior else output


def _sample(
    images, sigma, psfs, refined, pixel_scale, zero_point, mask, key, prior, model, **options
):
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
        model=model,
        **options,
    )


def _fluxes(values: dict, model, zero_point) -> dict:
    """flux and flux_err of every magnitude of the model (bulge_flux for bulge_magnitude)."""
    out = {}
    for name in model.names:
        if name.endswith("magnitude"):
            stem = name[: -len("magnitude")]
            flux = np.asarray(magnitude_to_flux(values[name], zero_point))
            out[stem + "flux"] = flux
            if name + "_err" in values:
                out[stem + "flux_err"] = flux * 0.4 * np.log(10.0) * values[name + "_err"]
    return out


def _refine_bulge_disc(refine_from, guess, model: BulgeDisc):
    """A bulge + disc refined from two starts, the better kept per galaxy: the split of
    `guess` (one Sersic's values), and the split of a one-Sersic fit from `guess`. The fit
    places the light well, but a one-Sersic fit of a bulge and a thin disc can run to a
    large n and r_eff, from whose split the search finds a worse minimum (or none)."""
    direct = refine_from(model.start(guess), model)
    single = refine_from(guess, SERSIC)
    good = single.converged[:, None] & jnp.all(jnp.isfinite(single.parameters), -1)[:, None]
    refitted = refine_from(model.start(jnp.where(good, single.parameters, guess)), model)
    # converged first, then the lower chi^2
    better = (refitted.converged & ~direct.converged) | (
        (refitted.converged == direct.converged) & (refitted.chi2 < direct.chi2)
    )
    return jax.tree.map(
        lambda a, b: jnp.where(better.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
        refitted,
        direct,
    )


def _totals(parameters, model: BulgeDisc):
    """Total magnitude and bulge-to-total flux ratio of bulge + disc parameters (..., P)
    (numpy or jax arrays)."""
    numbers = np if isinstance(parameters, np.ndarray) else jnp
    bulge = parameters[..., model.names.index("bulge_magnitude")]
    disc = parameters[..., model.names.index("disc_magnitude")]
    # the disc's flux in units of the bulge's
    ratio = 10.0 ** (-0.4 * (disc - bulge))
    return bulge - 2.5 * numbers.log10(1.0 + ratio), 1.0 / (1.0 + ratio)


def _bulge_disc_totals(parameters, covariance, model: BulgeDisc) -> dict:
    """`magnitude` (total) and `bt` with errors through the covariance (the delta method)."""
    import jax

    def totals(p):
        total, bt = _totals(p, model)
        return jnp.stack([total, bt])

    gradients = jax.vmap(jax.jacfwd(totals))(jnp.asarray(parameters))
    variances = jnp.einsum("bip,bpq,biq->bi", gradients, covariance, gradients)
    total, bt = _totals(parameters, model)
    errors = np.sqrt(np.asarray(variances))
    return {"magnitude": total, "magnitude_err": errors[:, 0], "bt": bt, "bt_err": errors[:, 1]}


def _posterior_columns(posterior, columns: dict, zero_point, model) -> dict:
    """The HMC columns: medians as the main values, the refined ones kept as `_refined`."""
    from jaxgal.fitting.diagnostics import convergence
    from jaxgal.fitting.hmc import posterior_intervals

    samples = np.asarray(posterior.samples, dtype=np.float64)
    names = list(model.names)
    if isinstance(model, BulgeDisc):
        total, bt = _totals(samples, model)
        samples = np.concatenate([samples, total[..., None], bt[..., None]], axis=-1)
        names += ["magnitude", "bt"]
    intervals = posterior_intervals(samples, model.periodic)
    out = {}
    for index, name in enumerate(names):
        lower, upper = intervals["lower"][:, index], intervals["upper"][:, index]
        out[name + "_refined"] = columns[name]
        out[name + "_refined_err"] = columns[name + "_err"]
        out[name] = intervals["median"][:, index]
        out[name + "_err"] = 0.5 * (upper - lower)
        out[name + "_lo"], out[name + "_hi"] = lower, upper
    for name in model.names:
        if not name.endswith("magnitude"):
            continue
        stem = name[: -len("magnitude")]
        flux = stem + "flux"
        out[flux + "_refined"], out[flux + "_refined_err"] = columns[flux], columns[flux + "_err"]
        out[flux] = np.asarray(magnitude_to_flux(out[name], zero_point))
        # the flux interval is the magnitude interval's image: faint end is the high magnitude
        out[flux + "_lo"] = np.asarray(magnitude_to_flux(out[name + "_hi"], zero_point))
        out[flux + "_hi"] = np.asarray(magnitude_to_flux(out[name + "_lo"], zero_point))
        out[flux + "_err"] = 0.5 * (out[flux + "_hi"] - out[flux + "_lo"])
    health = convergence(posterior, model)
    out.update(health)
    finite = np.all(np.isfinite(np.asarray(posterior.samples)), axis=(1, 2, 3))
    suspect = (health["rhat_max"] > RHAT_LIMIT) | (health["divergences"] > 0) | ~finite
    out["flags"] = columns["flags"] | np.where(suspect, FLAG_HMC_SUSPECT, 0)
    return out


def _output(columns: dict, as_table: bool, model=SERSIC):
    order = ["index"]
    for name in model.names:
        order.append(name)
        if name.endswith("magnitude"):
            order.append(name[: -len("magnitude")] + "flux")
    order += ["magnitude", "bt"]
    ordered = {}
    for name in order:
        if name in columns and name not in ordered:
            ordered[name] = columns[name]
            if name + "_err" in columns:
                ordered[name + "_err"] = columns[name + "_err"]
    for name, value in columns.items():
        ordered.setdefault(name, value)
    if not as_table:
        return ordered
    from astropy.table import Table

    return Table(ordered)
