"""Lensed images per second, jaxgal against lenstronomy, in one run, at comparable accuracy.

Both draw 100 x 100 images (0.05 arcsec pixels, a Gaussian PSF of FWHM 0.1 arcsec) of lenses
of the seed's population (`jaxgal.simulate.lens_population`): an SIE + external shear, a
Sersic lens light and a Sersic source, PSF-convolved and pixel-integrated.

- jaxgal: `render` of a batch, jitted and vmapped, in float32 (the default) and float64.
- lenstronomy: `ImageModel` (EPL at gamma = 2 + SHEAR, SERSIC_ELLIPSE light), regular
  supersampling with the PSF convolved on the supersampled grid, one image at a time.

Accuracy: jaxgal's largest pixel error against the independent reference of
tests/lensing_reference.py (lenstronomy's ray tracing and an exact-b_n Sersic on a fine
sub-grid), of the lensed source's peak and of the image's peak. lenstronomy's Sersic uses
an approximate b_n, so its images differ from the reference by more than its sampling error:
its accuracy is its own sampling error, its image at `supersampling` against one at
`--reference-supersampling` (finer), and `supersampling` is chosen by `--supersampling`
(default: the smallest of 2, 4, 8, 16 that meets jaxgal's error on the lensed source).

    python benchmarks/lensing.py [--count 8] [--batch 16] [--out benchmarks/lensing]

writes lensing.md and lensing.json. Floors: jaxgal at least 10x lenstronomy on a 2-core CPU;
on a GPU at least 1e5 images a second.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import lensing_reference as reference  # noqa: E402

import jaxgal  # noqa: E402
from jaxgal._files import write_text_atomically  # noqa: E402
from jaxgal.simulate.lens_population import LensPopulation  # noqa: E402

SHAPE, PIXEL_SCALE, PSF_FWHM, ZERO_POINT = (100, 100), 0.05, 0.1, 30.0
FLOOR_CPU, FLOOR_GPU = 10.0, 1e5


def draw(count: int, seed: int, dtype):
    systems = LensPopulation().sample(jax.random.key(seed), ZERO_POINT, (count,))
    return jax.tree.map(lambda leaf: leaf.astype(dtype), systems)


def jaxgal_rate(count: int, batch: int, dtype, seed: int) -> dict:
    """Images a second of jitted, vmapped `render` (compiled first, then timed)."""
    grid = jaxgal.PixelGrid(SHAPE, np.asarray(PIXEL_SCALE, dtype))
    psf = jaxgal.Gaussian(np.asarray(PSF_FWHM, dtype))
    render = jax.jit(jax.vmap(lambda system: jaxgal.render(system, grid, psf)))
    systems = draw(batch, seed, dtype)
    clock = time.perf_counter()
    render(systems).block_until_ready()
    compile_seconds = time.perf_counter() - clock
    rounds = max(1, count // batch)
    clock = time.perf_counter()
    for _ in range(rounds):
        images = render(systems)
    images.block_until_ready()
    seconds = time.perf_counter() - clock
    return dict(
        images_per_second=rounds * batch / seconds,
        compile_seconds=compile_seconds,
        images=rounds * batch,
        dtype=np.dtype(dtype).name,
        batch=batch,
    )


def jaxgal_accuracy(count: int, seed: int) -> dict:
    """Largest pixel errors of float64 jaxgal against the reference, over `count` lenses."""
    grid = jaxgal.PixelGrid(SHAPE, PIXEL_SCALE)
    psf = jaxgal.Gaussian(PSF_FWHM)
    parts = jax.jit(lambda system: jaxgal.render_lens(system, grid, psf))
    systems = draw(count, seed, np.float64)
    source_errors, total_errors = [], []
    for index in range(count):
        system = jax.tree.map(lambda leaf, index=index: leaf[index], systems)
        p = reference.lens_parameters(system)
        light, source = (np.asarray(part) for part in parts(system))
        sampling = dict(subsamples=24, cusp_cells=1000, cusp_subsamples=32)
        expected_source = reference.lensed_source(p, SHAPE, PIXEL_SCALE, PSF_FWHM, **sampling)
        expected = expected_source + reference.lens_light(p, SHAPE, PIXEL_SCALE, PSF_FWHM)
        source_errors.append(np.abs(source - expected_source).max() / expected_source.max())
        total_errors.append(np.abs(light + source - expected).max() / expected.max())
    return dict(
        source_error_max=float(np.max(source_errors)),
        image_error_max=float(np.max(total_errors)),
        source_errors=[float(e) for e in source_errors],
        image_errors=[float(e) for e in total_errors],
    )


def lenstronomy_model(supersampling: int):
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    ny, nx = SHAPE
    data = ImageData(
        image_data=np.zeros(SHAPE),
        ra_at_xy_0=-(nx - 1) / 2 * PIXEL_SCALE,
        dec_at_xy_0=-(ny - 1) / 2 * PIXEL_SCALE,
        transform_pix2angle=np.eye(2) * PIXEL_SCALE,
    )
    psf = PSF(psf_type="GAUSSIAN", fwhm=PSF_FWHM, pixel_size=PIXEL_SCALE, truncation=6)
    return ImageModel(
        data,
        psf,
        lens_model_class=LensModel(["EPL", "SHEAR"]),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        lens_light_model_class=LightModel(["SERSIC_ELLIPSE"]),
        kwargs_numerics=dict(supersampling_factor=supersampling, supersampling_convolution=True),
    )


def lenstronomy_kwargs(p: dict):
    _, lens = reference.lenstronomy_kwargs(p)

    def light(prefix):
        factor = (1.0 - p[prefix + "q"]) / (1.0 + p[prefix + "q"])
        angle = np.deg2rad(2.0 * p[prefix + "pa"])
        return [
            dict(
                amp=p[prefix + "flux"],  # a surface brightness: the speed does not care
                R_sersic=p[prefix + "r_eff"],
                n_sersic=p[prefix + "n"],
                e1=factor * np.cos(angle),
                e2=factor * np.sin(angle),
                center_x=p[prefix + "x0"],
                center_y=p[prefix + "y0"],
            )
        ]

    return lens, light("source_"), light("light_")


def lenstronomy_images(parameters: list[dict], supersampling: int):
    model = lenstronomy_model(supersampling)
    images = []
    clock = time.perf_counter()
    for p in parameters:
        lens, source, light = lenstronomy_kwargs(p)
        images.append(model.image(lens, source, light))
    return np.array(images), time.perf_counter() - clock


def lenstronomy_own_error(images, finer_images) -> float:
    """Largest pixel error of lenstronomy's lensed images against its own finer sampling,
    of each image's peak."""
    errors = [np.abs(a - b).max() / np.abs(b).max() for a, b in zip(images, finer_images)]
    return float(np.max(errors))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=8, help="lenses for lenstronomy")
    parser.add_argument("--batch", type=int, default=16, help="jaxgal's batch")
    parser.add_argument("--accuracy-count", type=int, default=3)
    parser.add_argument("--supersampling", type=int, default=None)
    parser.add_argument("--reference-supersampling", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("lensing"))
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    on_gpu = device.platform == "gpu"

    print("jaxgal accuracy against the reference ...", flush=True)
    accuracy = jaxgal_accuracy(args.accuracy_count, args.seed)
    print(f"  lensed source {accuracy['source_error_max']:.2e} of its peak, "
          f"image {accuracy['image_error_max']:.2e} of its peak", flush=True)  # fmt: skip

    systems = draw(args.count, args.seed, np.float64)
    parameters = [
        reference.lens_parameters(jax.tree.map(lambda leaf, i=i: leaf[i], systems))
        for i in range(args.count)
    ]
    finer, _ = lenstronomy_images(parameters[:2], args.reference_supersampling)
    choices = [args.supersampling] if args.supersampling else [2, 4, 8, 16]
    for supersampling in choices:
        images, _ = lenstronomy_images(parameters[:2], supersampling)
        own_error = lenstronomy_own_error(images, finer)
        print(f"lenstronomy supersampling {supersampling}: own error {own_error:.2e}", flush=True)
        if own_error <= accuracy["image_error_max"]:
            break
    _, seconds = lenstronomy_images(parameters, supersampling)
    lenstronomy = dict(
        images_per_second=args.count / seconds,
        supersampling=supersampling,
        own_error=own_error,
        images=args.count,
    )
    print(f"lenstronomy: {lenstronomy['images_per_second']:.2f} images/s", flush=True)

    rates = {}
    for dtype in (np.float32, np.float64):
        count = max(args.batch, 4 * args.batch if not on_gpu else 64 * args.batch)
        name = np.dtype(dtype).name
        rates[name] = jaxgal_rate(count, args.batch, dtype, args.seed)
        print(f"jaxgal {name}: {rates[name]['images_per_second']:.1f} images/s", flush=True)

    ratios = {
        k: v["images_per_second"] / lenstronomy["images_per_second"] for k, v in rates.items()
    }
    result = dict(
        device=str(device),
        platform=platform.platform(),
        shape=SHAPE,
        pixel_scale=PIXEL_SCALE,
        psf_fwhm=PSF_FWHM,
        jaxgal=rates,
        jaxgal_accuracy=accuracy,
        lenstronomy=lenstronomy,
        speedup=ratios,
        floor=FLOOR_GPU if on_gpu else FLOOR_CPU,
        command="python benchmarks/lensing.py " + " ".join(argv if argv else sys.argv[1:]),
    )
    lines = [
        f"# Lensed images per second ({device})",
        "",
        "| code | images / s | accuracy (largest pixel error) |",
        "|---|---|---|",
    ]
    for name, rate in rates.items():
        lines.append(
            f"| jaxgal {name} (batch {rate['batch']}) | {rate['images_per_second']:.1f} | "
            f"source {accuracy['source_error_max']:.1e} of its peak, image "
            f"{accuracy['image_error_max']:.1e} of its peak (float64, vs the reference) |"
        )
    lines.append(
        f"| lenstronomy (supersampling {supersampling}) | "
        f"{lenstronomy['images_per_second']:.2f} | {own_error:.1e} of the peak (vs its own "
        f"supersampling {args.reference_supersampling}) |"
    )
    lines += [
        "",
        "jaxgal / lenstronomy: "
        + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items())
        + f" (floor {result['floor']:g}"
        + (" images/s on a GPU)" if on_gpu else "x on a CPU)"),
        "",
        f"`{result['command']}`",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_text_atomically(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
