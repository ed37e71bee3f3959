"""PSF-convolved, pixel-integrated images of a Sersic profile.

The image is sampled at the pixel centres of (S * K), S the profile and K the kernel of
the PSF (the PSF convolved with the pixel, or an effective PSF; see `jaxgal.light.psf`),
by FFT on a periodic box that extends `margin` pixels beyond the stamp, so light from
just outside the stamp is scattered in and nothing wraps around onto it. S is split in two
by a smooth (C-infinity) taper w of the circularised radius R:

- the core, S w(R / r1), with w = 1 inside r1 = `CORE_RADIUS_IN_CELLS` h / sqrt(q) and 0
  outside `CORE_RATIO` r1 (h = pixel / oversample): it holds the cusp (the whole galaxy
  when it is small) and, for a thin galaxy, the sharp ridge along its major axis. Its
  Fourier transform is exact: a Hankel transform in the circularised frame, tabulated per
  galaxy by one matrix product (`jaxgal.render.core_transform`). It enters the pixel
  grid's spectrum with its aliases k + 2 pi m / pixel summed, up to |k| = `bandwidth`
  pi / pixel, beyond which the PSF has no power left.
- the halo, S (1 - w), sampled on a lattice `oversample` times finer than the pixels. It
  is smooth on the scale of that lattice (the taper is at least two cells wide along the
  minor axis), so the sum over nodes is a trapezoid rule for the convolution integral and
  converges faster than any power of h. Its spectrum (the lattice's DFT times the
  kernel's transfer function, with the kernel's aliases on the lattice for a pixelised
  PSF) is folded onto the pixel grid.

Accuracy with the defaults (oversample 2, a margin of 20 pixels, bandwidth 2.5 pi / pixel
for the analytic PSFs and 6.5 for a pixelised one), tested against GalSim and scipy over
0.3 <= n <= 8, 0.05 <= q <= 1, r_eff from 0.1 pixel to the stamp size and PSF FWHM down
to 2 pixels: largest pixel error below 1e-3 of the peak pixel (see
experiments/accuracy_sweep.json). The kernel must be smooth on the scale of the lattice:
a PSF FWHM of at least ~2 pixels. The core reaches `CORE_RATIO` r1 / sqrt(q) (60 pixels
at q = 0.05) along the major axis; the box (stamp + 2 margins) must hold it without
wrapping onto the stamp, which a margin of 16 pixels does not (errors of 4e-2).

Speed: the halo costs one real FFT of the lattice, the core one matrix product and a
table look-up per frequency of the pixel grid's aliases. XLA on the CPU is slow with
complex element-wise work and recomputes fused producers for every slice that consumes
them, which shaped the code below (see benchmarks/render.py for the figures).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxgal.grid import PixelGrid
from jaxgal.light.sersic import Sersic, safe_sqrt
from jaxgal.light.taper import smooth_taper
from jaxgal.render.core_spectrum import core_spectrum
from jaxgal.render.core_transform import CORE_RATIO

CORE_RADIUS_IN_CELLS = 2.0
Q_MIN = 0.05


def render_convolved(
    profile: Sersic,
    grid: PixelGrid,
    psf,
    *,
    oversample: int = 2,
    margin: int = 20,
    bandwidth: float = 2.5,
) -> Float[Array, "ny nx"]:
    """Pixel values of `profile` convolved with `psf` (see the module docstring)."""
    ny, nx = grid.shape
    pixel = grid.pixel_scale
    cell = pixel / oversample
    box_ny, box_nx = ny + 2 * margin, nx + 2 * margin
    fine_ny, fine_nx = box_ny * oversample, box_nx * oversample
    x_origin = grid.x_centres()[0] - margin * pixel
    y_origin = grid.y_centres()[0] - margin * pixel
    x_fine = x_origin + cell * jnp.arange(fine_nx, dtype=pixel.dtype)
    y_fine = y_origin + cell * jnp.arange(fine_ny, dtype=pixel.dtype)

    r1 = CORE_RADIUS_IN_CELLS * cell / jnp.sqrt(profile.q)
    u, v = profile.circularised_coordinates(x_fine[None, :], y_fine[:, None])
    radius = safe_sqrt(u * u + v * v)
    core_weight = smooth_taper((radius / r1 - 1.0) / (CORE_RATIO - 1.0))
    halo = profile.radial_profile(radius) * (1.0 - core_weight) * cell * cell

    kx = 2.0 * jnp.pi * jnp.fft.rfftfreq(fine_nx, 1.0).astype(pixel.dtype) / cell
    ky = 2.0 * jnp.pi * jnp.fft.fftfreq(fine_ny, 1.0).astype(pixel.dtype) / cell
    transfer = psf.transfer(kx, ky, pixel, sampling=cell)
    coarse = fold_spectrum(jnp.fft.rfft2(halo) * transfer, oversample, fine_nx)
    # the largest t = kappa r1 the core's table must hold: kappa <= |k| / sqrt(q)
    t_max = bandwidth * np.pi * CORE_RADIUS_IN_CELLS / (oversample * Q_MIN)
    coarse = coarse + core_spectrum(
        profile, psf, (box_ny, box_nx), pixel, (x_origin, y_origin), r1, bandwidth, t_max
    )
    image = jnp.fft.irfft2(coarse, s=(box_ny, box_nx))
    return image[margin : margin + ny, margin : margin + nx]


def fold_spectrum(spectrum, factor, n_x):
    """The half spectrum (rfft2 layout) of every `factor`-th sample of a real image.

    Sampling every factor-th node sums the spectrum's aliases: coarse bin j holds the fine
    bins j + a N / factor. Bins past the stored half are the conjugates of bins at -k.
    Static slices only (XLA on the CPU gathers slowly).
    """
    n_y = spectrum.shape[0]
    coarse_y, coarse_x = n_y // factor, n_x // factor
    half = coarse_x // 2 + 1
    rows = spectrum.reshape(factor, coarse_y, spectrum.shape[1]).sum(axis=0)
    # the value at (-ky, kx): row -i (mod coarse_y) of the row-folded spectrum
    mirrored_rows = jnp.conj(jnp.roll(rows[::-1], 1, axis=0))
    folded = rows[:, :half]
    for alias in range(1, factor):
        first = alias * coarse_x  # fine column of coarse column 0 in this alias
        # coarse columns j with first + j <= n_x // 2 are stored; the rest are mirrored
        stored = max(0, min(half, n_x // 2 - first + 1))
        parts = []
        if stored:
            parts.append(rows[:, first : first + stored])
        if stored < half:
            # fine column first + j -> conjugate of column n_x - first - j
            start, stop = n_x - first - stored, n_x - first - half
            step = slice(start, stop, -1) if stop >= 0 else slice(start, None, -1)
            parts.append(mirrored_rows[:, step])
        folded = folded + (parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1))
    return folded
