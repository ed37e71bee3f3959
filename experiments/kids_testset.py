"""An independent KiDS-like test set for GaLNet, rendered by GalSim (not by jaxgal).

    python experiments/kids_testset.py --count 4000 --out out/kids_testset.npz

As issue 3 fixes it: 64 x 64 cutouts of 0.2 arcsec pixels, zero point 30; magnitudes
17-21.5, r_eff 0.2-4 arcsec log-uniform (GalSim's half_light_radius, sheared at constant
area, i.e. circularised), n 0.5-6.2, q 0.2-1, any pa, centre within half a pixel of the
stamp's centre; Moffat PSFs of FWHM 0.5-1.0 arcsec and beta 2.5-4.5, each given as a 25 x 25
kernel (GalSim's drawImage, normalised to sum 1); sky noise Gaussian at a 5-sigma depth of
23.8 mag in a 2 arcsec aperture (KiDS DR4's 25.0, 1.2 mag shallower) plus the source's
Poisson noise in electrons (gain 18 e- per count, as the KiDS preset). Each galaxy's
matched-filter S/N, sqrt(sum clean^2 / variance), is stored with its truths. The file is
deterministic in `--seed` and is not committed: regenerate it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import galsim
import numpy as np

PIXEL_SCALE = 0.2
SIDE = 64
PSF_SIDE = 25
ZERO_POINT = 30.0
DEPTH = 25.0 - 1.2  # 5 sigma, 2 arcsec diameter aperture
GAIN = 18.0


def sky_sigma() -> float:
    limiting_flux = 10 ** (-0.4 * (DEPTH - ZERO_POINT))
    pixels_in_aperture = np.pi * 1.0**2 / PIXEL_SCALE**2
    return limiting_flux / 5.0 / np.sqrt(pixels_in_aperture)


def draw_truths(rng, count):
    half = 0.5 * PIXEL_SCALE
    return {
        "magnitude": rng.uniform(17.0, 21.5, count),
        "r_eff": np.exp(rng.uniform(np.log(0.2), np.log(4.0), count)),
        "n": rng.uniform(0.5, 6.2, count),
        "q": rng.uniform(0.2, 1.0, count),
        "pa": rng.uniform(0.0, 180.0, count),
        "x0": rng.uniform(-half, half, count),
        "y0": rng.uniform(-half, half, count),
        "psf_fwhm": rng.uniform(0.5, 1.0, count),
        "psf_beta": rng.uniform(2.5, 4.5, count),
    }


def render(truth, i, rng):
    flux = 10 ** (-0.4 * (truth["magnitude"][i] - ZERO_POINT))
    galaxy = (
        galsim.Sersic(n=truth["n"][i], half_light_radius=truth["r_eff"][i], flux=flux)
        .shear(q=truth["q"][i], beta=truth["pa"][i] * galsim.degrees)
        .shift(truth["x0"][i], truth["y0"][i])
    )
    psf = galsim.Moffat(beta=truth["psf_beta"][i], fwhm=truth["psf_fwhm"][i])
    clean = galsim.Convolve(galaxy, psf).drawImage(nx=SIDE, ny=SIDE, scale=PIXEL_SCALE).array
    kernel = psf.drawImage(nx=PSF_SIDE, ny=PSF_SIDE, scale=PIXEL_SCALE).array
    clean = clean.astype(np.float64)
    electrons = np.maximum(clean, 0.0) * GAIN
    poisson = (rng.poisson(electrons) - electrons) / GAIN
    sigma = sky_sigma()
    image = clean + poisson + rng.normal(0.0, sigma, clean.shape)
    variance = sigma**2 + np.maximum(clean, 0.0) / GAIN
    snr = np.sqrt(np.sum(clean**2 / variance))
    return image.astype(np.float32), (kernel / kernel.sum()).astype(np.float32), snr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--out", default="out/kids_testset.npz")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    truth = draw_truths(rng, args.count)
    images = np.empty((args.count, SIDE, SIDE), np.float32)
    kernels = np.empty((args.count, PSF_SIDE, PSF_SIDE), np.float32)
    snr = np.empty(args.count)
    start = time.perf_counter()
    for i in range(args.count):
        images[i], kernels[i], snr[i] = render(truth, i, rng)
        if (i + 1) % 500 == 0:
            print(f"{i + 1}/{args.count} galaxies, {time.perf_counter() - start:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(
        temporary,
        images=images,
        psf_images=kernels,
        snr=snr,
        zero_point=ZERO_POINT,
        sky_sigma=sky_sigma(),
        **truth,
    )
    os.replace(temporary, out)
    print(f"wrote {out}: {args.count} galaxies, {np.mean(snr >= 20):.0%} with S/N >= 20")


if __name__ == "__main__":
    main()
