"""Refinement against the physical limit, and its speed, on the GalSim test set.

    python experiments/refine_efficiency.py --count 200

Takes the first `--count` galaxies with S/N >= 20 of the KiDS-like GalSim test set
(experiments/kids_testset.py; generated if missing), fits them with `jaxgal.fit(...,
method="cnn+refine")` given their PSF kernels and their true noise map (sky and the
source's Poisson noise), and compares the errors with each galaxy's Cramer-Rao bound
(`jaxgal.fitting.fisher`, at the truth). Issue 4's bar: the NMAD of error / bound at most
1.3 for magnitude, r_eff, n and q. Writes experiments/results/refine_efficiency.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxgal
from jaxgal.fitting.fisher import cramer_rao
from jaxgal.light.psf import PixelPSF
from jaxgal.networks.evaluate import nmad

NAMES = ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testset", default="out/kids_testset.npz")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--out", default="experiments/results/refine_efficiency.json")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    if not Path(args.testset).exists():
        from kids_testset import main as make_testset

        make_testset(["--out", args.testset])
    data = np.load(args.testset)
    chosen = np.flatnonzero(data["snr"] >= 20)[: args.count]
    images = data["images"][chosen].astype(np.float64)
    kernels = np.clip(data["psf_images"][chosen].astype(np.float64), 0.0, None)
    zero_point, sky = float(data["zero_point"]), float(data["sky_sigma"])
    truth = {name: data[name][chosen] for name in NAMES}
    flux = 10 ** (-0.4 * (truth["magnitude"] - zero_point))
    galaxies = jaxgal.Sersic(
        flux, truth["r_eff"], truth["n"], truth["q"], truth["pa"], truth["x0"], truth["y0"]
    )
    psfs = PixelPSF(jnp.asarray(kernels / kernels.sum(axis=(1, 2), keepdims=True)))
    gain = 18.0  # the test set's
    clean = jax.jit(jax.vmap(lambda g, p: jaxgal.render(g, jaxgal.PixelGrid((64, 64), 0.2), p)))(
        galaxies, psfs
    )
    sigma = np.sqrt(sky**2 + np.maximum(np.asarray(clean), 0.0) / gain)

    jaxgal.fit(images[:2], kernels[:2], sigma[:2], method="cnn+refine", zero_point=zero_point)
    start = time.perf_counter()
    table = jaxgal.fit(images, kernels, sigma, method="cnn+refine", zero_point=zero_point)
    seconds = (time.perf_counter() - start) / len(chosen)
    bound = np.asarray(cramer_rao(galaxies, sigma, psfs, (64, 64), 0.2, zero_point))
    report = {
        "count": int(len(chosen)),
        "seconds_per_galaxy": seconds,
        "converged_fraction": float(np.mean(table["converged"])),
    }
    ok = np.asarray(table["converged"], bool)
    for i, name in enumerate(NAMES[:4]):
        error = np.asarray(table[name])[ok] - truth[name][ok]
        in_bounds = error / bound[ok, i]
        laplace = np.asarray(table[name + "_err"])[ok]
        report[name] = {
            "nmad_error_over_bound": nmad(in_bounds),
            "median_error_over_bound": float(np.median(in_bounds)),
            "median_laplace_over_bound": float(np.median(laplace / bound[ok, i])),
            "within_1_laplace_sigma": float(np.mean(np.abs(error) < laplace)),
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
