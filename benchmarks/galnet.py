"""GaLNet inference throughput, against a classical fit of the same cutouts (GalSim models
fitted by scipy's least squares, as GALFIT-like fitters do), measured in the same run.

    python benchmarks/galnet.py            # writes benchmarks/galnet.json (galnet_<gpu>.json)
    python benchmarks/galnet.py --quick

The network: the shipped KiDS GaLNet-2 (an untrained one of the same architecture if the
weights are missing), 64 x 64 cutouts + 25 x 25 PSF stamps, jitted forward pass on batches,
after compilation. Floors: 500 galaxies/s on a 2-core CPU, 1e5 on an H100/H200. The peer:
scipy.optimize.least_squares on 7 Sersic parameters, each model drawn by GalSim convolved
with the known Moffat PSF, started from the prior's centre, on a few KiDS cutouts.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from report import default_output, machine, on_accelerator, write_result

from jaxgal.networks.pretrained import WEIGHTS_DIR, pretrained
from jaxgal.networks.train import TrainConfig, build_model
from jaxgal.simulate import KIDS, make_simulator


def network_rate(model, batch, repeats):
    simulate = make_simulator(KIDS, batch)
    data = simulate(jax.random.key(0))
    forward = nnx.jit(lambda m, images, psfs: m(images, psfs))
    start = time.perf_counter()
    jax.block_until_ready(forward(model, data.images, data.psf_images))
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        out = forward(model, data.images, data.psf_images)
    jax.block_until_ready(out)
    return repeats * batch / (time.perf_counter() - start), compile_seconds


def classical_fit_seconds(count):
    """Seconds per galaxy of a GalSim + scipy least-squares Sersic fit (or nan)."""
    try:
        import galsim
        from peers import galsim_scipy_fit
    except ImportError:
        return float("nan"), []
    batch = make_simulator(KIDS, count)(jax.random.key(7))
    seconds, evaluations = [], []
    for i in range(count):
        image = np.asarray(batch.images[i], float)
        labels = {k: float(v[i]) for k, v in batch.labels.items()}
        sigma = np.sqrt(labels["sky_sigma"] ** 2 + np.maximum(image, 0) / KIDS.gain)
        psf = galsim.Moffat(beta=labels["psf_beta"], fwhm=labels["psf_fwhm"]).shear(
            g1=labels["psf_g1"], g2=labels["psf_g2"]
        )
        start = dict(flux=max(image.sum(), 1.0), r_eff=0.9, n=2.5, q=0.6, pa=90.0, x0=0.0, y0=0.0)
        fit = galsim_scipy_fit(image, sigma, psf, start, KIDS.pixel_scale)
        seconds.append(fit["seconds"])
        evaluations.append(fit["evaluations"])
    return float(np.mean(seconds)), evaluations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--fits", type=int, default=None, help="classical fits to time")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    on_gpu = on_accelerator()
    batch = args.batch or (8192 if on_gpu else 256)
    repeats = 3 if args.quick else 20
    shipped = (WEIGHTS_DIR / "galnet2_kids.npz").exists()
    model = pretrained("kids", "galnet2") if shipped else build_model(TrainConfig())
    galnet, compile_seconds = network_rate(model, batch, repeats)
    fit_seconds, evaluations = classical_fit_seconds(args.fits or (1 if args.quick else 3))
    result = dict(
        network="GaLNet-2 (kids)" + ("" if shipped else ", untrained weights"),
        batch=batch,
        galnet_galaxies_per_second=galnet,
        galnet_compile_seconds=compile_seconds,
        classical_fit_seconds_per_galaxy=fit_seconds,
        classical_fit_evaluations=evaluations,
        speedup_vs_classical_fit=galnet * fit_seconds,
        floor_galaxies_per_second=1e5 if on_gpu else 500.0,
        paper_galaxies_per_second={"cpu": 25.0, "gpu_rtx2070": 250.0},
        **machine(),
        dtype=str(jnp.result_type(float)),
        quick=args.quick,
    )
    print(f"GaLNet inference benchmark on {result['device']} ({os.cpu_count()} cores)")
    print(f"  {result['network']:28s} {galnet:12.1f} galaxies/s (batch {batch})")
    print(
        f"  GalSim + scipy fit           {1 / fit_seconds:12.3f} galaxies/s "
        f"({fit_seconds:.2f} s a galaxy, {evaluations} model evaluations)"
    )
    print(f"  speed-up                     {result['speedup_vs_classical_fit']:12.0f} x")
    if not args.quick:
        write_result(result, args.output or default_output(__file__, "galnet"))
    return result


if __name__ == "__main__":
    main()
