"""`jaxgal simulate`: a simulated test set written to FITS, ready for `jaxgal fit`.

    write_simulated_set(get_preset("kids"), count=100, seed=0, directory="sim/")

writes, atomically each, `cutouts.fits` (the noisy cutouts in counts, a cube with PIXSCALE
and MAGZERO keywords), `psfs.fits` (the effective PSF stamp of each cutout, summing to 1),
`sigma.fits` (the noise sigma of each pixel: the simulator's sky sigma and the source's
Poisson noise, sqrt(sky_sigma^2 + max(model, 0) / gain), from the noiseless model) and
`truth.fits` (a table: `index`, the drawn parameters named and in the units of `Sersic`
with `flux`, the PSF's parameters, `sky_sigma` and the matched-filter `snr`).

Batch b of the set is drawn from `jax.random.fold_in(jax.random.key(seed), b)`, so a set is
a function of (preset, seed, batch size) and a longer set begins with a shorter one.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgal.grid import PixelGrid
from jaxgal.io.catalog import atomic_path, write_table_atomically
from jaxgal.light.psf import Moffat
from jaxgal.light.sersic import Sersic
from jaxgal.magnitudes import magnitude_to_flux
from jaxgal.render import render
from jaxgal.simulate.generator import simulate_batch
from jaxgal.simulate.noise import noise_variance
from jaxgal.simulate.presets import SurveyPreset

FILES = ("cutouts.fits", "psfs.fits", "sigma.fits", "truth.fits")
TRUTH_ORDER = ("index", "magnitude", "flux", "r_eff", "n", "q", "pa", "x0", "y0")


@partial(jax.jit, static_argnames=("preset", "batch_size"))
def simulate_with_sigma(key, preset: SurveyPreset, batch_size: int):
    """A simulator batch and the per-pixel noise sigma it was drawn with.

    The noiseless images are rendered again from the labels (the same galaxies and Moffat
    PSFs the generator drew) to give the Poisson term exactly as `add_noise` used it."""
    batch = simulate_batch(key, preset, batch_size)
    labels = batch.labels
    galaxies = Sersic(
        magnitude_to_flux(labels["magnitude"], preset.zero_point),
        labels["r_eff"],
        labels["n"],
        labels["q"],
        labels["pa"],
        labels["x0"],
        labels["y0"],
    )
    psfs = Moffat(labels["psf_fwhm"], labels["psf_beta"], labels["psf_g1"], labels["psf_g2"])
    grid = PixelGrid(preset.shape, preset.pixel_scale)
    clean = jax.vmap(lambda galaxy, psf: render(galaxy, grid, psf))(galaxies, psfs)
    variance = noise_variance(clean, labels["sky_sigma"][:, None, None], preset.gain)
    return batch, jnp.sqrt(variance)


def simulate_set(preset: SurveyPreset, count: int, seed: int, batch_size: int = 256):
    """`count` simulated cutouts: (images, psf_images, sigma, truth Table)."""
    from astropy.table import Table

    if count < 1 or batch_size < 1:
        raise ValueError(f"count and batch size must be >= 1, got {count}, {batch_size}")
    batch_size = min(batch_size, count)
    key = jax.random.key(seed)
    images, psf_images, sigmas, labels = [], [], [], []
    for batch_index in range(-(-count // batch_size)):
        batch, sigma = simulate_with_sigma(jax.random.fold_in(key, batch_index), preset, batch_size)
        images.append(np.asarray(batch.images))
        psf_images.append(np.asarray(batch.psf_images))
        sigmas.append(np.asarray(sigma))
        labels.append({name: np.asarray(value) for name, value in batch.labels.items()})
    columns = {name: np.concatenate([b[name] for b in labels])[:count] for name in labels[0]}
    columns["index"] = np.arange(count)
    columns["flux"] = np.asarray(magnitude_to_flux(columns["magnitude"], preset.zero_point))
    ordered = {name: columns[name] for name in TRUTH_ORDER}
    ordered.update({name: value for name, value in sorted(columns.items()) if name not in ordered})
    truth = Table(ordered)
    truth.meta.update(_keywords(preset, seed))
    return (
        np.concatenate(images)[:count],
        np.concatenate(psf_images)[:count],
        np.concatenate(sigmas)[:count],
        truth,
    )


def _keywords(preset: SurveyPreset, seed: int) -> dict:
    return {
        "PIXSCALE": preset.pixel_scale,
        "MAGZERO": preset.zero_point,
        "GAIN": preset.gain,
        "PRESET": preset.name,
        "SEED": seed,
    }


def _write_cube(path: Path, cube: np.ndarray, keywords: dict, bunit: str):
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.asarray(cube, np.float32))
    for name, value in keywords.items():
        hdu.header[name] = value
    hdu.header["BUNIT"] = bunit
    with atomic_path(path) as temporary:
        hdu.writeto(temporary, overwrite=True)


def write_simulated_set(
    preset: SurveyPreset, count: int, seed: int, directory, *, batch_size: int = 256
) -> dict[str, Path]:
    """Simulate `count` cutouts and write the four files of the set to `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    images, psf_images, sigma, truth = simulate_set(preset, count, seed, batch_size)
    keywords = _keywords(preset, seed)
    paths = {name.removesuffix(".fits"): directory / name for name in FILES}
    _write_cube(paths["cutouts"], images, keywords, "count")
    _write_cube(paths["psfs"], psf_images, keywords, "fraction of the PSF's light")
    _write_cube(paths["sigma"], sigma, keywords, "count")
    write_table_atomically(truth, paths["truth"])
    return paths
