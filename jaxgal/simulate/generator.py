"""The training-set generator: a key -> a batch of noisy cutouts, their PSF stamps and labels.

Every galaxy is drawn from the preset's `SersicPrior`, rendered by `jaxgal.render` with its
own PSF (a Moffat from the preset's `MoffatPrior`, or a real PSF from a `PSFBank`), given
Poisson and sky noise (Gaussian at a depth drawn from the preset's range, or real sky from
a `NoiseBank`). A batch is a function of its key alone, so a training run that makes the
batch of step s from `jax.random.fold_in(key, s)` sees the same images when resumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxgal.grid import PixelGrid
from jaxgal.render import render
from jaxgal.render.psf_image import draw_psf
from jaxgal.simulate.noise import NoiseBank, PSFBank, add_noise, noise_variance, optimal_snr
from jaxgal.simulate.presets import SurveyPreset


class Batch(NamedTuple):
    """`images` (batch, ny, nx) in counts at the preset's zero point; `psf_images`
    (batch, psf_size, psf_size), each summing to 1; `labels`: the drawn parameters
    (magnitude, r_eff, n, q, pa, x0, y0 as in `SersicPrior`) and, per galaxy, the sky noise
    `sky_sigma` (counts per pixel), the matched-filter `snr` of the noiseless image and,
    for Moffat PSFs, their `psf_fwhm`, `psf_beta`, `psf_g1`, `psf_g2`."""

    images: Float[Array, "batch ny nx"]
    psf_images: Float[Array, "batch psf psf"]
    labels: dict[str, Float[Array, " batch"]]


def simulate_batch(
    key,
    preset: SurveyPreset,
    batch_size: int,
    noise_bank: NoiseBank | None = None,
    psf_bank: PSFBank | None = None,
) -> Batch:
    """One batch of `batch_size` simulated cutouts for `preset` (jit it, or use
    `make_simulator`, which does)."""
    galaxy_key, psf_key, depth_key, noise_key = jax.random.split(key, 4)
    galaxies, labels = preset.galaxy.sample(
        galaxy_key, batch_size, preset.pixel_scale, preset.zero_point
    )
    grid = PixelGrid(preset.shape, preset.pixel_scale)
    if psf_bank is None:
        psfs = preset.psf.sample(psf_key, batch_size)
        psf_images = jax.vmap(lambda p: draw_psf(p, preset.psf_size, preset.pixel_scale))(psfs)
        labels = {
            **labels,
            "psf_fwhm": psfs.fwhm,
            "psf_beta": psfs.beta,
            "psf_g1": psfs.g1,
            "psf_g2": psfs.g2,
        }
    else:
        psfs, psf_images = jax.vmap(lambda k: psf_bank.draw(k, preset.psf_size))(
            jax.random.split(psf_key, batch_size)
        )
    clean = jax.vmap(lambda g, p: render(g, grid, p))(galaxies, psfs)
    depth = jax.random.uniform(
        depth_key, (batch_size,), minval=preset.depth[0], maxval=preset.depth[1]
    )
    sky_sigma = preset.sky_sigma(depth)
    noise_keys = jax.random.split(noise_key, batch_size)
    if noise_bank is None:
        images = jax.vmap(lambda k, image, s: add_noise(k, image, s, preset.gain))(
            noise_keys, clean, sky_sigma
        )
    else:

        def with_real_sky(k, image):
            sky_key, poisson_key = jax.random.split(k)
            sky = noise_bank.draw(sky_key, preset.shape)
            return add_noise(poisson_key, image, 0.0, preset.gain, sky=sky), jnp.std(sky)

        images, sky_sigma = jax.vmap(with_real_sky)(noise_keys, clean)
    variance = noise_variance(clean, sky_sigma[:, None, None], preset.gain)
    labels = {**labels, "sky_sigma": sky_sigma, "snr": optimal_snr(clean, variance)}
    return Batch(images, psf_images, labels)


def make_simulator(
    preset: SurveyPreset,
    batch_size: int,
    noise_bank: NoiseBank | None = None,
    psf_bank: PSFBank | None = None,
):
    """A jitted `key -> Batch` for `preset`, on the default device."""

    @jax.jit
    def simulate(key, noise_bank, psf_bank):
        return simulate_batch(key, preset, batch_size, noise_bank, psf_bank)

    return lambda key: simulate(key, noise_bank, psf_bank)


def batch_stream(simulator, key, start_step: int = 0) -> Iterator[tuple[int, Batch]]:
    """(step, batch) for step = start_step, start_step + 1, ...: the batch of a step is
    `simulator(jax.random.fold_in(key, step))`, whatever step the stream starts from."""
    step = start_step
    while True:
        yield step, simulator(jax.random.fold_in(key, step))
        step += 1
