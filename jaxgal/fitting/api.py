"""`jaxgal.fit`: one entry point for the CNN, refinement, and the two together.

    table = jaxgal.fit(images, psf_images, noise, method="cnn+refine", zero_point=30.0,
                       pixel_scale=0.2)

Methods: "cnn" (the shipped GaLNet-2 of `preset`, cutouts of the preset's shape and pixel
scale), "refine" (least squares from the images' moments), "cnn+refine" (least squares
from the CNN's answer). Returns an astropy Table, one row per image in input order:
`index`, the parameters named and in the units of `jaxgal.Sersic` (magnitude, flux,
r_eff, n, q, pa, x0, y0) each with `_err`, and for refinement `chi2`, `dof`,
`reduced_chi2`, `converged`; `n_masked` counts pixels left out (masked, not finite, zero
weight) and `flags` is a bit mask: 1 not converged, 2 pixels left out.
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

METHODS = ("cnn", "cnn+refine", "refine")
FLAG_NOT_CONVERGED = 1
FLAG_PIXELS_LEFT_OUT = 2


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
):
    """Fit Sersic profiles to `images` (batch, ny, nx) or one (ny, nx), sky-subtracted, in
    counts. `psf_images`: (k, k) for all or (batch, k, k), odd k, normalised here; the
    network needs them, refinement uses them when given. `noise`: sigma per pixel (a map or
    a number), else `weight` (1 / sigma^2), else the GALFIT model from `gain`, `read_noise`
    and the subtracted `sky` (`jaxgal.fitting.noise_model`). `mask`: True where a pixel
    counts. `zero_point` and `pixel_scale` default to the `preset`'s. `start` overrides
    the starting point of "refine"; `network` the preset's shipped GaLNet-2.
    """
    from jaxgal.simulate.presets import get_preset

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    survey = get_preset(preset)
    zero_point = survey.zero_point if zero_point is None else float(zero_point)
    pixel_scale = survey.pixel_scale if pixel_scale is None else float(pixel_scale)
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"images must be (batch, ny, nx) or (ny, nx), got {images.shape}")
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
    return _output(columns, as_table)


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
