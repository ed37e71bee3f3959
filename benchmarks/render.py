"""Rendering throughput: jaxgal (jit + vmap) against GalSim, measured in the same run.

64 x 64 stamps at 0.2 arcsec (KiDS-like), every galaxy with its own Moffat PSF (FWHM
0.5-1.1 arcsec, beta 2.5-4.8) and its own Sersic parameters drawn across the supported
range, at the accuracy the tests hold (1e-3 of the peak pixel). GalSim draws the same
kind of galaxies with `drawImage(method='auto')` and its default (already more accurate
than 1e-3) settings in two cases: a handful of n values, whose Hankel tables it caches
(its fast case), and every galaxy with its own n (it builds a new table each time).

    python benchmarks/render.py            # full run, writes benchmarks/render.json
    python benchmarks/render.py --quick    # a short run, for the demo

The JSON records the device, the JAX version and every figure; the ratios are per
galaxy, with jaxgal on all the machine's cores and GalSim on one (as it runs).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from report import machine, write_result

import jaxgal

SIDE = 64
PIXEL_SCALE = 0.2


def draw_population(rng, count, n_values=None):
    n = rng.choice(n_values, count) if n_values is not None else rng.uniform(0.5, 6.0, count)
    return dict(
        flux=rng.uniform(50.0, 5000.0, count),
        r_eff=np.exp(rng.uniform(np.log(0.1), np.log(3.0), count)),
        n=n,
        q=rng.uniform(0.1, 1.0, count),
        pa=rng.uniform(0.0, 180.0, count),
        x0=rng.uniform(-0.5, 0.5, count) * PIXEL_SCALE,
        y0=rng.uniform(-0.5, 0.5, count) * PIXEL_SCALE,
        fwhm=rng.uniform(0.5, 1.1, count),
        beta=rng.uniform(2.5, 4.8, count),
    )


def time_jaxgal(population, batch, repeats):
    grid = jaxgal.PixelGrid((SIDE, SIDE), PIXEL_SCALE)
    as32 = {key: jnp.asarray(value[:batch], jnp.float32) for key, value in population.items()}
    galaxies = jaxgal.Sersic(
        as32["flux"], as32["r_eff"], as32["n"], as32["q"], as32["pa"], as32["x0"], as32["y0"]
    )
    psfs = jaxgal.Moffat(as32["fwhm"], as32["beta"])
    draw = jax.jit(jax.vmap(lambda galaxy, psf: jaxgal.render(galaxy, grid, psf)))
    start = time.perf_counter()
    jax.block_until_ready(draw(galaxies, psfs))
    compile_seconds = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(draw(galaxies, psfs))
        best = min(best, time.perf_counter() - start)
    return batch / best, compile_seconds


def time_galsim(population, count):
    import galsim

    start = time.perf_counter()
    for i in range(count):
        galaxy = (
            galsim.Sersic(
                n=population["n"][i],
                half_light_radius=population["r_eff"][i],
                flux=population["flux"][i],
            )
            .shear(q=population["q"][i], beta=population["pa"][i] * galsim.degrees)
            .shift(population["x0"][i], population["y0"][i])
        )
        psf = galsim.Moffat(beta=population["beta"][i], fwhm=population["fwhm"][i])
        galsim.Convolve(galaxy, psf).drawImage(nx=SIDE, ny=SIDE, scale=PIXEL_SCALE)
    return count / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (the demo's)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args(argv)
    batch = args.batch or (64 if args.quick else 512)
    repeats = 2 if args.quick else 5
    galsim_count = 20 if args.quick else 100

    rng = np.random.default_rng(2026)
    own_n = draw_population(rng, max(batch, galsim_count))
    cached_n = draw_population(rng, galsim_count, n_values=[0.5, 1.0, 2.5, 4.0])
    jaxgal_rate, compile_seconds = time_jaxgal(own_n, batch, repeats)
    try:
        time_galsim(cached_n, 4)  # build GalSim's caches for the handful of n values
        galsim_cached = time_galsim(cached_n, galsim_count)
        galsim_own_n = time_galsim(own_n, max(galsim_count // 4, 5))
    except ImportError:
        galsim_cached = galsim_own_n = float("nan")

    result = dict(
        stamp=[SIDE, SIDE],
        pixel_scale=PIXEL_SCALE,
        psf="Moffat, one per galaxy",
        dtype="float32",
        batch=batch,
        jaxgal_galaxies_per_second=jaxgal_rate,
        jaxgal_compile_seconds=compile_seconds,
        galsim_cached_n_galaxies_per_second=galsim_cached,
        galsim_own_n_galaxies_per_second=galsim_own_n,
        ratio_vs_galsim_cached_n=jaxgal_rate / galsim_cached,
        ratio_vs_galsim_own_n=jaxgal_rate / galsim_own_n,
        **machine(),
        quick=args.quick,
    )
    print("render benchmark: 64x64 Moffat-convolved Sersic stamps, float32")
    print(f"  device                      {result['device']} ({os.cpu_count()} cores)")
    print(f"  jaxgal (jit + vmap)         {jaxgal_rate:10.1f} galaxies/s")
    print(f"  GalSim, 4 cached n values   {galsim_cached:10.1f} galaxies/s")
    print(f"  GalSim, each its own n      {galsim_own_n:10.1f} galaxies/s")
    print(f"  ratio vs GalSim cached n    {result['ratio_vs_galsim_cached_n']:10.1f} x")
    print(f"  ratio vs GalSim own n       {result['ratio_vs_galsim_own_n']:10.1f} x")
    if not args.quick:
        write_result(result, args.output)
    return result


if __name__ == "__main__":
    main()
