"""An independent reference for lensed images: lenstronomy's ray tracing (EPL at gamma = 2,
the SIE with analytic derivatives, and SHEAR with its origin set), an exact-b_n Sersic
(scipy) evaluated on a fine regular sub-grid of every pixel (finer still around its cusp),
a Gaussian PSF convolved on that sub-grid (scipy); the lens light likewise, and by GalSim
where GalSim can draw it. Nothing here comes from jaxgal.

The sub-grid's midpoint rule is the reference's own error: the same image with finer
sampling measures it (benchmarks/lensing.py reports it).
"""

from __future__ import annotations

import galsim
import numpy as np
import scipy.signal as signal
import scipy.special as special
from lenstronomy.LensModel.lens_model import LensModel

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def lens_parameters(system, index=None) -> dict:
    """Plain floats of a jaxgal `LensSystem` (SIE + ExternalShear, one Sersic source and lens
    light), of lens `index` of a batched one."""

    def value(leaf):
        array = np.asarray(leaf, dtype=np.float64)
        return float(array if index is None else array[index])

    sie, shear = system.mass
    source, light = system.source[0], system.lens_light[0]
    out = {}
    for prefix, module, names in (
        ("sie_", sie, ("theta_e", "q", "pa", "x0", "y0")),
        ("shear_", shear, ("gamma1", "gamma2", "x0", "y0")),
        ("source_", source, ("flux", "r_eff", "n", "q", "pa", "x0", "y0")),
        ("light_", light, ("flux", "r_eff", "n", "q", "pa", "x0", "y0")),
    ):
        for name in names:
            out[prefix + name] = value(getattr(module, name))
    return out


def sie_epl_keywords(theta_e, q, pa, x0, y0) -> dict:
    """lenstronomy's EPL keywords (gamma = 2) of an SIE, per CONVENTIONS.md."""
    ellipticity = (1.0 - q) / (1.0 + q)
    angle = np.deg2rad(2.0 * pa)
    return dict(
        theta_E=theta_e,
        gamma=2.0,
        e1=ellipticity * np.cos(angle),
        e2=ellipticity * np.sin(angle),
        center_x=x0,
        center_y=y0,
    )


def lenstronomy_kwargs(p: dict):
    epl = sie_epl_keywords(*(p["sie_" + k] for k in ("theta_e", "q", "pa", "x0", "y0")))
    shear = dict(
        gamma1=p["shear_gamma1"], gamma2=p["shear_gamma2"], ra_0=p["shear_x0"], dec_0=p["shear_y0"]
    )
    return LensModel(["EPL", "SHEAR"]), [epl, shear]


def sersic_brightness(beta_x, beta_y, flux, r_eff, n, q, pa, x0, y0):
    """The conventions' Sersic with the exact b_n (scipy's gammaincinv)."""
    b = special.gammaincinv(2.0 * n, 0.5)
    central = flux * b ** (2.0 * n) / (2.0 * np.pi * n * r_eff**2 * special.gamma(2.0 * n))
    cos, sin = np.cos(np.deg2rad(pa)), np.sin(np.deg2rad(pa))
    dx, dy = beta_x - x0, beta_y - y0
    major = dx * cos + dy * sin
    minor = -dx * sin + dy * cos
    radius = np.sqrt(q * major * major + minor * minor / q)
    return central * np.exp(-b * (radius / r_eff) ** (1.0 / n))


def lensed_source(p: dict, shape, pixel_scale, psf_fwhm, **sampling):
    """The lensed source in each pixel (see `fine_image` for the sampling), the rays traced
    by lenstronomy."""
    model, kwargs = lenstronomy_kwargs(p)
    source = [p["source_" + k] for k in ("flux", "r_eff", "n", "q", "pa", "x0", "y0")]

    def brightness(x, y):
        beta_x, beta_y = model.ray_shooting(x.ravel(), y.ravel(), kwargs)
        return sersic_brightness(beta_x, beta_y, *source).reshape(x.shape)

    return fine_image(brightness, shape, pixel_scale, psf_fwhm, **sampling)


def fine_image(
    brightness,
    shape,
    pixel_scale,
    psf_fwhm,
    subsamples=16,
    margin=6,
    cusp_cells=400,
    cusp_subsamples=16,
):
    """`brightness(x, y)` (flux / arcsec^2) in each pixel, convolved with a Gaussian PSF of
    `psf_fwhm` arcsec (None: pixel-integrated only): the midpoint rule on `subsamples`^2
    sub-cells of every pixel of the stamp and a `margin` of pixels around it (on
    `cusp_subsamples`^2 points in each of the `cusp_cells` brightest sub-cells, where a
    cusp is), the PSF sampled at the sub-cells' centres (normalised), the sub-cells summed
    into pixels."""
    ny, nx = shape
    margin = margin if psf_fwhm is not None else 0
    cell = pixel_scale / subsamples
    fine_ny, fine_nx = (ny + 2 * margin) * subsamples, (nx + 2 * margin) * subsamples
    x = (np.arange(fine_nx) + 0.5) * cell - (nx / 2 + margin) * pixel_scale
    y = (np.arange(fine_ny) + 0.5) * cell - (ny / 2 + margin) * pixel_scale
    image = np.empty((fine_ny, fine_nx))
    for row in range(0, fine_ny, 256):  # in slabs: memory
        rows = slice(row, min(row + 256, fine_ny))
        grid_x, grid_y = np.meshgrid(x, y[rows])
        image[rows] = brightness(grid_x, grid_y)
    if cusp_cells:
        flat = np.argsort(image, axis=None)[-cusp_cells:]
        rows, columns = np.unravel_index(flat, image.shape)
        offsets = ((np.arange(cusp_subsamples) + 0.5) / cusp_subsamples - 0.5) * cell
        sub_x = x[columns][:, None, None] + offsets[None, None, :]
        sub_y = y[rows][:, None, None] + offsets[None, :, None]
        sub_x, sub_y = np.broadcast_arrays(sub_x, sub_y)
        image[rows, columns] = brightness(sub_x, sub_y).mean(axis=(1, 2))
    image *= cell * cell
    if psf_fwhm is not None:
        sigma = psf_fwhm / FWHM_PER_SIGMA
        half = int(np.ceil(6.0 * sigma / cell))
        offsets = np.arange(-half, half + 1) * cell
        kernel = np.exp(-0.5 * (offsets[:, None] ** 2 + offsets[None, :] ** 2) / sigma**2)
        image = signal.fftconvolve(image, kernel / kernel.sum(), mode="same")
    pixels = image.reshape(fine_ny // subsamples, subsamples, fine_nx // subsamples, subsamples)
    pixels = pixels.sum(axis=(1, 3))
    return pixels[margin : margin + ny, margin : margin + nx]


def lens_light(p: dict, shape, pixel_scale, psf_fwhm, **sampling):
    """The lens light (not lensed) in each pixel, sampled as `fine_image` does: GalSim cannot
    draw the population's n > 6.2, nor its n = 8, r_eff = 4 arcsec profiles without FFTs of
    tens of GB; `galsim_lens_light` draws the others."""
    light = [p["light_" + k] for k in ("flux", "r_eff", "n", "q", "pa", "x0", "y0")]
    return fine_image(
        lambda x, y: sersic_brightness(x, y, *light), shape, pixel_scale, psf_fwhm, **sampling
    )


def galsim_lens_light(p: dict, shape, pixel_scale, psf_fwhm):
    """GalSim's lens light, convolved with the Gaussian PSF and the pixel (n <= 6.2)."""
    profile = galsim.Sersic(
        n=p["light_n"], half_light_radius=p["light_r_eff"], flux=p["light_flux"]
    ).shear(q=p["light_q"], beta=p["light_pa"] * galsim.degrees)
    profile = galsim.Convolve(
        profile.shift(p["light_x0"], p["light_y0"]), galsim.Gaussian(fwhm=psf_fwhm)
    )
    params = galsim.GSParams(maximum_fft_size=32768, folding_threshold=1e-4, kvalue_accuracy=1e-6)
    profile = profile.withGSParams(params)
    ny, nx = shape
    return profile.drawImage(nx=nx, ny=ny, scale=pixel_scale).array
