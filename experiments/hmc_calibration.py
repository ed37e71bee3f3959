"""Calibration of jaxgal's HMC posteriors on KiDS-like simulations, with refinement's Laplace
intervals beside them, and the sampler's cost in effective samples per second per galaxy.

    python experiments/hmc_calibration.py --galaxies 200 --out experiments/results/hmc_calibration

Galaxies are drawn from the KiDS preset's `SersicPrior` (magnitude 17-21.5, r_eff 0.2-4",
n 0.5-6.2, q 0.2-1, centre within half a pixel), each with its own Moffat PSF and depth,
rendered by `jaxgal.render` on 64 x 64 stamps, with Gaussian noise of the known variance
sky^2 + image / gain (the likelihood the sampler assumes). Each galaxy is refined from its
moments (`refine`) and sampled by NUTS from the optimum (`sample_posterior`) with the same
prior as the simulation (`--prior sersic`, so the 68 % intervals must contain the truths
68 % of the time, within the binomial error) or a flat one (`--prior flat`), in coordinates
bounded by the prior's supports (`SERSIC.within_prior`; `--walls` samples in unbounded ones,
where the prior's hard edges are walls of zero density that trajectories diverge on). Writes
report.json (coverage per parameter for HMC and Laplace, r-hat, ESS, divergences, timings)
and a corner plot of the first galaxy. Resumable: each batch's results are saved (atomically)
in OUT/batches/ as it finishes, and a rerun with the same options skips the saved batches.
A tiny run: --galaxies 4 --warmup 30 --samples 30;
the run of the closing note (2-core CPU): --galaxies 200 --size 24 --warmup 150 --samples 150
--chains 2 --batch 25.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgal.fitting import PHYSICAL, refine
from jaxgal.fitting.diagnostics import convergence, corner_plot
from jaxgal.fitting.hmc import posterior_intervals, sample_posterior
from jaxgal.fitting.models import SERSIC
from jaxgal.fitting.moments import moments_start
from jaxgal.grid import PixelGrid
from jaxgal.render import render
from jaxgal.render.psf_image import draw_psf
from jaxgal.simulate.noise import noise_variance
from jaxgal.simulate.presets import get_preset


def simulate(key, preset, count):
    galaxy_key, psf_key, depth_key, noise_key = jax.random.split(key, 4)
    galaxies, labels = preset.galaxy.sample(
        galaxy_key, count, preset.pixel_scale, preset.zero_point
    )
    psfs = preset.psf.sample(psf_key, count)
    kernels = jax.vmap(lambda p: draw_psf(p, preset.psf_size, preset.pixel_scale))(psfs)
    grid = PixelGrid(preset.shape, preset.pixel_scale)
    clean = jax.jit(jax.vmap(lambda g, p: render(g, grid, p)))(galaxies, psfs)
    depth = jax.random.uniform(depth_key, (count,), minval=preset.depth[0], maxval=preset.depth[1])
    sky = preset.sky_sigma(depth)
    sigma = jnp.sqrt(noise_variance(clean, sky[:, None, None], preset.gain))
    images = clean + sigma * jax.random.normal(noise_key, clean.shape)
    truth = np.stack([np.asarray(labels[name]) for name in PHYSICAL], axis=-1)
    return images, sigma, psfs, kernels, truth


def coverage(truth, lower, upper, median):
    inside = np.empty(truth.shape, bool)
    for index in range(truth.shape[1]):
        value = truth[:, index]
        if index == 4:  # pa on the interval's branch
            value = median[:, 4] + (value - median[:, 4] + 90.0) % 180.0 - 90.0
        inside[:, index] = (lower[:, index] <= value) & (value <= upper[:, index])
    return inside


def _write_atomically(path: Path, content: bytes):
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50, help="galaxies sampled at once")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--prior", choices=("sersic", "flat"), default="sersic")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument(
        "--walls",
        action="store_true",
        help="sample in unbounded coordinates, with the prior's hard edges as walls of zero "
        "density (the default bounds them by the prior's supports, `within_prior`)",
    )
    parser.add_argument("--size", type=int, default=None, help="stamp side [the preset's, 64]")
    parser.add_argument("--out", default="experiments/results/hmc_calibration")
    args = parser.parse_args()
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    preset = get_preset("kids")
    if args.size is not None:  # smaller stamps: the same likelihood, cheaper on a CPU
        preset = dataclasses.replace(preset, shape=(args.size, args.size))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)
    simulation_key, sampling_key = jax.random.split(key)
    images, sigma, psfs, kernels, truth = simulate(simulation_key, preset, args.galaxies)
    prior = preset.galaxy.distributions(preset.pixel_scale) if args.prior == "sersic" else None
    model = SERSIC if args.walls else SERSIC.within_prior(prior)

    batches = out / "batches"
    batches.mkdir(exist_ok=True)
    options = json.dumps({k: v for k, v in vars(args).items() if k != "out"}, sort_keys=True)
    saved_options = batches / "options.json"
    if saved_options.exists() and saved_options.read_text() != options:
        raise SystemExit(f"{batches} holds batches of other options; delete it to start again")
    _write_atomically(saved_options, options.encode())

    for begin in range(0, args.galaxies, args.batch):
        part = slice(begin, min(begin + args.batch, args.galaxies))
        saved = batches / f"batch-{begin:06d}.npz"
        if saved.exists():
            print(f"galaxies {part.start}-{part.stop}: done before")
            continue
        batch_psfs = jax.tree_util.tree_map(lambda leaf, part=part: leaf[part], psfs)
        start = time.perf_counter()
        refined = jax.block_until_ready(
            refine(
                images[part],
                sigma[part],
                batch_psfs,
                moments_start(np.asarray(images[part]), preset.pixel_scale),
                preset.pixel_scale,
                preset.zero_point,
                model=model,
            )
        )
        refine_seconds = time.perf_counter() - start
        start = time.perf_counter()
        posterior = jax.block_until_ready(
            sample_posterior(
                images[part],
                sigma[part],
                batch_psfs,
                refined,
                preset.pixel_scale,
                preset.zero_point,
                jax.random.fold_in(sampling_key, begin),
                prior=prior,
                num_warmup=args.warmup,
                num_samples=args.samples,
                num_chains=args.chains,
                model=model,
            )
        )
        hmc_seconds = time.perf_counter() - start
        intervals = posterior_intervals(posterior.samples)
        values = np.asarray(refined.parameters)
        errors = np.asarray(refined.errors)
        summary = convergence(posterior, model=model)
        record = dict(
            hmc_inside=coverage(
                truth[part], intervals["lower"], intervals["upper"], intervals["median"]
            ),
            laplace_inside=coverage(truth[part], values - errors, values + errors, values),
            leapfrog_steps=np.asarray(posterior.leapfrog_steps).sum(axis=1),
            timing=np.array([part.stop - part.start, refine_seconds, hmc_seconds]),
            first_samples=np.asarray(posterior.samples[0]),
            **summary,
        )
        buffer = io.BytesIO()
        np.savez(buffer, **record)
        _write_atomically(saved, buffer.getvalue())
        print(
            f"galaxies {part.start}-{part.stop}: refine {refine_seconds:.1f} s (with compile), "
            f"HMC {hmc_seconds:.1f} s (with compile)"
        )

    records = []
    for path in sorted(batches.glob("batch-*.npz")):
        with np.load(path) as record:
            records.append({name: record[name] for name in record.files})
    hmc_inside = np.concatenate([r["hmc_inside"] for r in records])
    laplace_inside = np.concatenate([r["laplace_inside"] for r in records])
    names = ("rhat_max", "ess_min", "divergences", "leapfrog_steps")
    merged = {name: np.concatenate([r[name] for r in records]) for name in names}
    timings = [tuple(r["timing"]) for r in records]
    first = records[0]["first_samples"]
    count = args.galaxies
    binomial = float(np.sqrt(0.68 * 0.32 / count))
    # timings of batches after the first exclude compilation
    steady = timings[1:] or timings
    hmc_rate = sum(t[2] for t in steady) / sum(t[0] for t in steady)
    report = {
        "command": "python experiments/hmc_calibration.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not False),
        "device": str(jax.devices()[0]),
        "galaxies": count,
        "binomial_sigma_of_a_coverage": binomial,
        "hmc_coverage_68": dict(zip(PHYSICAL, hmc_inside.mean(axis=0).round(4).tolist())),
        "laplace_coverage_68": dict(zip(PHYSICAL, laplace_inside.mean(axis=0).round(4).tolist())),
        "rhat_max_median": float(np.nanmedian(merged["rhat_max"])),
        "share_rhat_above_1.05": float(np.mean(merged["rhat_max"] > 1.05)),
        "share_with_divergences": float(np.mean(merged["divergences"] > 0)),
        "ess_min_median": float(np.median(merged["ess_min"])),
        "hmc_seconds_per_galaxy": hmc_rate,
        "ess_min_per_second_per_galaxy": float(np.median(merged["ess_min"]) / hmc_rate),
        "leapfrog_steps_per_draw_mean": float(
            np.mean(merged["leapfrog_steps"]) / (args.chains * args.samples)
        ),
    }
    _write_atomically(out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    corner_plot(first, truths=truth[0], path=out / "corner_first_galaxy.png")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
